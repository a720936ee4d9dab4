"""Types of cluster.kubellm.io/v1alpha1: Cluster, a member GPU cluster.

Every field has a default so that decoding never fails on a missing or dropped value; requiredness,
enums, ranges and forms are declared on the fields (`kubellm.apis.constraints`), and `validation.py`
adds the rules that cannot be declared. Docstrings and field descriptions are what `kubectl explain` shows.
"""

from __future__ import annotations

from pydantic import Field

from kubellm.apis.base import APIModel
from kubellm.apis.constraints import constrained
from kubellm.apis.listtypes import map_list
from kubellm.apis.meta.v1.types import Condition, ObjectMeta, TypedModel
from kubellm.apis.secrets import secret_field

GROUP = "cluster.kubellm.io"
VERSION = "v1alpha1"

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
PRINTABLE_PATTERN = r"^[\x21-\x7e]*$"
PEM_BASE64_MSG = "must be base64-encoded PEM data"


# --- Cluster ---------------------------------------------------------------------------------------


class ClusterCredentials(APIModel):
    """How the server authenticates to the member cluster. Write-only: never returned to clients."""

    token: str = constrained(
        default="", pattern=PRINTABLE_PATTERN,
        messages={"pattern": "must consist of printable ASCII characters without whitespace"},
        description="Bearer token of a service account in the member cluster.",
    )
    client_certificate: str = constrained(
        default="", format="byte", messages={"format": PEM_BASE64_MSG},
        description="Base64 of a PEM client certificate (as client-certificate-data in a kubeconfig).",
    )
    client_key: str = constrained(
        default="", format="byte", messages={"format": PEM_BASE64_MSG},
        description="Base64 of the PEM private key of clientCertificate (as client-key-data).",
    )


class Taint(APIModel):
    """A taint on a member cluster: LLMServices without a matching toleration are not placed on it."""

    key: str = constrained(
        default="", required=True, description="Taint key, a qualified name such as example.com/maintenance."
    )
    value: str = Field(default="", description="Taint value, a label value.")
    effect: str = constrained(
        default="", required=True, enum=TAINT_EFFECTS,
        description="Effect on placement: NoSchedule, PreferNoSchedule or NoExecute.",
    )


class ClusterSpec(APIModel):
    """How to reach a member cluster, where it is, and whether new workloads may be placed on it."""

    api_endpoint: str = constrained(
        default="", required=True, description="HTTPS URL of the member cluster's kube-apiserver."
    )
    ca_bundle: str = constrained(
        default="", format="byte", messages={"format": PEM_BASE64_MSG},
        description="Base64 of PEM CA certificates to trust; empty means the system roots.",
    )
    insecure_skip_tls_verify: bool = Field(
        default=False,
        alias="insecureSkipTLSVerify",
        description="Skip verifying the server certificate (testing only); not allowed with caBundle.",
    )
    credentials: ClusterCredentials | None = secret_field(
        default=None,
        description="How to authenticate; required on create, write-only, and kept when an update omits it "
        "(but required again when apiEndpoint or caBundle changes).",
    )
    region: str = Field(default="", description="Region of the cluster, a label value; used by placement.")
    zone: str = Field(default="", description="Zone of the cluster, a label value; used by placement.")
    provider: str = Field(default="", description="Cloud or hosting provider, a label value.")
    taints: list[Taint] = Field(
        default_factory=list, description="Taints that LLMServices must tolerate to be placed here."
    )
    unschedulable: bool = Field(default=False, description="If true, no new replicas are placed on this cluster.")


class GPUInventory(APIModel):
    """The GPUs of one model in a member cluster, from its nodes' `nvidia.com/gpu` resources and GPU labels."""

    model: str = constrained(
        default="", required=True,
        description='GPU model (the nodes\' nvidia.com/gpu.product label), e.g. "NVIDIA-A100-SXM4-80GB"; unique in '
        "the list.",
    )
    memory_mib: int = constrained(
        default=0, minimum=0, alias="memoryMiB",
        description="Memory of one GPU in MiB (the nvidia.com/gpu.memory label); 0 when unknown.",
    )
    nodes: int = constrained(default=0, minimum=0, description="Number of Ready nodes with GPUs of this model.")
    count: int = constrained(default=0, minimum=0, description="GPUs of this model (the nodes' capacity).")
    allocatable: int = constrained(
        default=0, minimum=0, description="GPUs that pods may request (the nodes' allocatable); at most count."
    )
    available: int = constrained(
        default=0, minimum=0,
        description="Allocatable GPUs that no running or scheduled pod requests: room for new replicas; at most "
        "allocatable.",
    )
    largest_free: int = constrained(
        default=0, minimum=0,
        description="Most available GPUs on one node: the largest replica (in GPUs) that still fits.",
    )


class ClusterStatus(APIModel):
    """The observed state of a member cluster, from the server's probes."""

    conditions: list[Condition] = map_list(
        "type", default_factory=list, description="Current conditions of the cluster, such as Ready."
    )
    kubernetes_version: str = Field(default="", description="Kubernetes version the member cluster reports.")
    node_count: int = constrained(default=0, minimum=0, description="Number of nodes in the cluster.")
    gpus: list[GPUInventory] = map_list("model", default_factory=list, description="GPU inventory by GPU model.")
    last_probe_time: str | None = constrained(
        default=None, format="date-time", description="When the cluster was last probed (RFC3339)."
    )


class Cluster(TypedModel):
    """Cluster is a member Kubernetes cluster with GPUs, on which LLMService replicas are placed."""

    metadata: ObjectMeta = constrained(
        required=True, default_factory=ObjectMeta, description="Standard object metadata."
    )
    spec: ClusterSpec = constrained(
        required=True, default_factory=ClusterSpec, description="How to reach the cluster and where it is."
    )
    status: ClusterStatus | None = Field(
        default=None, description="Observed state of the cluster; written by the server through /status."
    )
