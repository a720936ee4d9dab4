"""cluster.kubellm.io/v1alpha1: Cluster, a member GPU cluster."""

from kubellm.apis.cluster.v1alpha1.types import (
    GROUP,
    VERSION,
    Cluster,
    ClusterCredentials,
    ClusterSpec,
    ClusterStatus,
    GPUInventory,
    Taint,
)
from kubellm.apis.cluster.v1alpha1.validation import (
    validate_cluster,
    validate_cluster_status_update,
    validate_cluster_update,
)
from kubellm.apis.scheme import ResourceInfo

RESOURCES: list[ResourceInfo] = [
    ResourceInfo(
        group=GROUP,
        version=VERSION,
        kind="Cluster",
        plural="clusters",
        singular="cluster",
        namespaced=False,
        model=Cluster,
        has_status=True,
        validate=validate_cluster,
        validate_update=validate_cluster_update,
        validate_status_update=validate_cluster_status_update,
        secrets_subresource="credentials",
    ),
]

__all__ = [
    "GROUP",
    "RESOURCES",
    "VERSION",
    "Cluster",
    "ClusterCredentials",
    "ClusterSpec",
    "ClusterStatus",
    "GPUInventory",
    "Taint",
    "validate_cluster",
    "validate_cluster_update",
]
