"""Types of cluster.kubellm.io/v1alpha1: Cluster, a member GPU cluster.

This module also holds two meta/v1 shapes that the other groups share (`Condition`, `LabelSelector`);
they belong in `kubellm.apis.meta.v1` and can move there without changing their JSON.

Every field has a default so that decoding never fails on a missing or dropped value; requiredness,
enums and ranges are checked in `validation.py`. Docstrings and field descriptions are what
`kubectl explain` shows.
"""

from __future__ import annotations

from pydantic import Field

from kubellm.apis.base import APIModel
from kubellm.apis.listtypes import ATOMIC_MAP, atomic_list, map_list
from kubellm.apis.meta.v1.types import ObjectMeta, TypedModel
from kubellm.apis.secrets import secret_field

GROUP = "cluster.kubellm.io"
VERSION = "v1alpha1"


# --- meta/v1 shapes shared by the groups (metav1.LabelSelector, metav1.Condition) -----------------


class LabelSelectorRequirement(APIModel):
    """A label key, an operator and values: for example `gpu In (a100, h100)`."""

    key: str = Field(default="", description="The label key the requirement applies to.")
    operator: str = Field(
        default="", description="How the key relates to the values: In, NotIn, Exists or DoesNotExist."
    )
    values: list[str] = atomic_list(
        default_factory=list,
        description="Values for In and NotIn (at least one); must be empty for Exists and DoesNotExist.",
    )


class LabelSelector(APIModel):
    """A label query over objects. Both parts must match; an empty selector matches everything."""

    model_config = ATOMIC_MAP  # replaced whole by server-side apply, as in Kubernetes

    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels that must all be present with exactly these values."
    )
    match_expressions: list[LabelSelectorRequirement] = atomic_list(
        default_factory=list, description="Requirements that must all hold."
    )


class Condition(APIModel):
    """One aspect of an object's current state, such as Ready, with the time it last changed."""

    type: str = Field(default="", description='Type of condition in CamelCase, e.g. "Ready"; unique in the list.')
    status: str = Field(default="", description="Status of the condition: True, False or Unknown.")
    observed_generation: int = Field(default=0, description="The metadata.generation the condition was set for.")
    last_transition_time: str | None = Field(default=None, description="When the status last changed (RFC3339).")
    reason: str = Field(default="", description="Machine-readable reason for the last transition, in CamelCase.")
    message: str = Field(default="", description="Human-readable details of the last transition.")


# --- Cluster ---------------------------------------------------------------------------------------


class ClusterCredentials(APIModel):
    """How the server authenticates to the member cluster. Write-only: never returned to clients."""

    token: str = Field(default="", description="Bearer token of a service account in the member cluster.")
    client_certificate: str = Field(
        default="", description="Base64 of a PEM client certificate (as client-certificate-data in a kubeconfig)."
    )
    client_key: str = Field(
        default="", description="Base64 of the PEM private key of clientCertificate (as client-key-data)."
    )


class Taint(APIModel):
    """A taint on a member cluster: LLMServices without a matching toleration are not placed on it."""

    key: str = Field(default="", description="Taint key, a qualified name such as example.com/maintenance.")
    value: str = Field(default="", description="Taint value, a label value.")
    effect: str = Field(default="", description="Effect on placement: NoSchedule, PreferNoSchedule or NoExecute.")


class ClusterSpec(APIModel):
    """How to reach a member cluster, where it is, and whether new workloads may be placed on it."""

    api_endpoint: str = Field(default="", description="HTTPS URL of the member cluster's kube-apiserver.")
    ca_bundle: str = Field(
        default="", description="Base64 of PEM CA certificates to trust; empty means the system roots."
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
    """How many GPUs of one model a member cluster has."""

    model: str = Field(default="", description='GPU model, e.g. "NVIDIA A100-SXM4-80GB"; unique in the list.')
    count: int = Field(default=0, description="Number of GPUs of this model in the cluster.")
    allocatable: int = Field(default=0, description="Number of those GPUs still free for new replicas.")


class ClusterStatus(APIModel):
    """The observed state of a member cluster, from the server's probes."""

    conditions: list[Condition] = map_list(
        "type", default_factory=list, description="Current conditions of the cluster, such as Ready."
    )
    kubernetes_version: str = Field(default="", description="Kubernetes version the member cluster reports.")
    node_count: int = Field(default=0, description="Number of nodes in the cluster.")
    gpus: list[GPUInventory] = map_list("model", default_factory=list, description="GPU inventory by GPU model.")
    last_probe_time: str | None = Field(default=None, description="When the cluster was last probed (RFC3339).")


class Cluster(TypedModel):
    """Cluster is a member Kubernetes cluster with GPUs, on which LLMService replicas are placed."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard object metadata.")
    spec: ClusterSpec = Field(default_factory=ClusterSpec, description="How to reach the cluster and where it is.")
    status: ClusterStatus | None = Field(
        default=None, description="Observed state of the cluster; written by the server through /status."
    )
