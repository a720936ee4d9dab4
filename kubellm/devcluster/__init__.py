"""Dev clusters: real Kubernetes control planes on loopback for tests, benchmarks and the local demo.

- `ControlPlane` (`controlplane`): etcd + kube-apiserver (aggregator, front proxy, RBAC), optionally
  kube-controller-manager and kube-scheduler, on ports kept across `stop()`/`start()`.
- `MemberCluster` (`member`): a member GPU cluster: a control plane with kube-controller-manager and
  kube-scheduler, the node simulator (`kubellm.nodesim`) for the kubelet and the GPUs, the RuntimeClass
  `nvidia`, and KubeLLM's ServiceAccount with the RBAC of `deploy/member/`; `cluster()` is the `Cluster`
  object that registers it with KubeLLM.
- `python -m kubellm.devcluster demo` (`demo`): the local demo: KubeLLM, two members, the controller manager.

The binaries come from `$KUBEBUILDER_ASSETS` or `.cache/kubebuilder-assets` (hack/install-deps.sh); a
missing one raises `BinariesMissing`. Nothing here imports pytest: test layers add their skips.
"""

from kubellm.devcluster.binaries import BinariesMissing, assets_dir, find_binaries, find_binary
from kubellm.devcluster.controlplane import ControllerManagerOptions, ControlPlane, KubectlFailed, write_kubeconfig
from kubellm.devcluster.member import MEMBER_CONTROLLERS, MemberCluster, MemberOptions
from kubellm.devcluster.process import Process, StartupError, wait_until
from kubellm.nodesim.options import NodePool

__all__ = [
    "MEMBER_CONTROLLERS",
    "BinariesMissing",
    "ControlPlane",
    "ControllerManagerOptions",
    "KubectlFailed",
    "MemberCluster",
    "MemberOptions",
    "NodePool",
    "Process",
    "StartupError",
    "assets_dir",
    "find_binaries",
    "find_binary",
    "wait_until",
    "write_kubeconfig",
]
