"""Types of cluster.kubellm.io/v1alpha1: Cluster, a member GPU cluster.

This module also holds two meta/v1 shapes that the other groups share (`Condition`, `LabelSelector`);
they belong in `kubellm.apis.meta.v1` and can move there without changing their JSON.

Every field has a default so that decoding never fails on a missing or dropped value; requiredness,
enums and ranges are checked in `validation.py`.
"""

from __future__ import annotations

from pydantic import Field

from kubellm.apis.base import APIModel
from kubellm.apis.meta.v1.types import ObjectMeta, TypedModel

GROUP = "cluster.kubellm.io"
VERSION = "v1alpha1"


# --- meta/v1 shapes shared by the groups (metav1.LabelSelector, metav1.Condition) -----------------


class LabelSelectorRequirement(APIModel):
    key: str = ""
    operator: str = ""  # In, NotIn, Exists, DoesNotExist
    values: list[str] = Field(default_factory=list)


class LabelSelector(APIModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)


class Condition(APIModel):
    type: str = ""
    status: str = ""  # True, False, Unknown
    observed_generation: int = 0
    last_transition_time: str | None = None  # RFC3339
    reason: str = ""
    message: str = ""


# --- Cluster ---------------------------------------------------------------------------------------


class ClusterCredentials(APIModel):
    """How the server authenticates to the member cluster. Write-only: never returned to clients."""

    token: str = ""
    client_certificate: str = ""  # base64 of a PEM certificate, as client-certificate-data
    client_key: str = ""  # base64 of a PEM private key, as client-key-data


class Taint(APIModel):
    key: str = ""
    value: str = ""
    effect: str = ""  # NoSchedule, PreferNoSchedule, NoExecute


class ClusterSpec(APIModel):
    api_endpoint: str = ""  # https URL of the member's kube-apiserver
    ca_bundle: str = ""  # base64 of PEM CA certificates; empty means the system roots
    insecure_skip_tls_verify: bool = Field(default=False, alias="insecureSkipTLSVerify")
    credentials: ClusterCredentials | None = None
    region: str = ""
    zone: str = ""
    provider: str = ""
    taints: list[Taint] = Field(default_factory=list)
    unschedulable: bool = False


class GPUInventory(APIModel):
    model: str = ""  # e.g. "NVIDIA A100-SXM4-80GB"
    count: int = 0
    allocatable: int = 0


class ClusterStatus(APIModel):
    conditions: list[Condition] = Field(default_factory=list)
    kubernetes_version: str = ""
    node_count: int = 0
    gpus: list[GPUInventory] = Field(default_factory=list)
    last_probe_time: str | None = None  # RFC3339


class Cluster(TypedModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ClusterSpec = Field(default_factory=ClusterSpec)
    status: ClusterStatus | None = None
