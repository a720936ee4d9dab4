"""autoscaling/v1 Scale, the body of a scale subresource (kube's `k8s.io/api/autoscaling/v1.Scale`)."""

from __future__ import annotations

from pydantic import Field

from kubellm.apis.base import APIModel
from kubellm.apis.meta.v1 import ObjectMeta, TypedModel

SCALE_API_VERSION = "autoscaling/v1"


class ScaleSpec(APIModel):
    """The desired number of replicas."""

    replicas: int = Field(default=0, description="Desired number of replicas.")


class ScaleStatus(APIModel):
    """The observed number of replicas and the label selector of the pods."""

    replicas: int = Field(default=0, description="Observed number of replicas.")
    selector: str = Field(default="", description="Label selector of the replicas, as a string.")


class Scale(TypedModel):
    """The scale of a resource: desired and observed replicas."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ScaleSpec = Field(default_factory=ScaleSpec)
    status: ScaleStatus | None = None
