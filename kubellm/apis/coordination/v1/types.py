"""coordination.k8s.io/v1 Lease, which KubeLLM serves when it runs on its own: controllers elect their leader
with it (behind the aggregator, the host cluster's Leases are used)."""

from __future__ import annotations

from pydantic import Field

from kubellm.apis.base import APIModel
from kubellm.apis.constraints import constrained
from kubellm.apis.meta.v1.types import ObjectMeta, TypedModel

GROUP = "coordination.k8s.io"
VERSION = "v1"
OPENAPI_PREFIX = "io.k8s.api.coordination.v1"


class LeaseSpec(APIModel):
    """Who holds a lease, and until when."""

    holder_identity: str | None = Field(default=None, description="Identity of the holder of the lease.")
    lease_duration_seconds: int | None = constrained(
        default=None, minimum=1, description="How long candidates wait after the last renewal to take the lease."
    )
    acquire_time: str | None = Field(default=None, description="When the current holder acquired it (MicroTime).")
    renew_time: str | None = Field(default=None, description="When the current holder last renewed it (MicroTime).")
    lease_transitions: int | None = constrained(default=None, minimum=0,
                                                description="How many times the lease changed hands.")


class Lease(TypedModel):
    """Lease is held by one candidate at a time, for leader election and heartbeats."""

    metadata: ObjectMeta = constrained(default_factory=ObjectMeta, required=True,
                                       description="Standard object metadata.")
    spec: LeaseSpec = Field(default_factory=LeaseSpec, description="The lease's holder and timing.")
