"""A member GPU cluster for tests, benchmarks and the demo: a real control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler) plus the node simulator (`cmd/kubellm-nodesim`) playing kubelet
and GPUs, the RuntimeClass `nvidia`, and KubeLLM's ServiceAccount with the RBAC of `deploy/member/` and a
long-lived token.

    with MemberCluster(Path("/tmp/member-a"), MemberOptions(name="member-a")) as member:
        member.kubeconfig                       # admin kubeconfig file
        member.cluster(region="eu-west")        # the Cluster object that registers it with KubeLLM
        member.stop(); member.start()           # the whole cluster down, then back on the same ports
"""

from __future__ import annotations

import base64
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubellm.apis.cluster.v1alpha1 import Cluster, ClusterCredentials, ClusterSpec
from kubellm.apis.meta.v1 import ObjectMeta
from kubellm.client import Config, DynamicClient
from kubellm.client.codec import encode_set
from kubellm.devcluster import manifests
from kubellm.devcluster.binaries import ROOT
from kubellm.devcluster.controlplane import ControllerManagerOptions, ControlPlane, Response
from kubellm.devcluster.process import Process, wait_until
from kubellm.nodesim import options as simopts
from kubellm.nodesim import rbac as simrbac
from kubellm.nodesim.metrics import APISERVICE_NAME
from kubellm.server.certs import Pair, ensure_ca, issue_serving_certificate

MEMBER_CONTROLLERS = (
    "deployment-controller", "replicaset-controller", "horizontal-pod-autoscaler-controller", "namespace-controller",
    "garbage-collector-controller", "node-lifecycle-controller", "taint-eviction-controller",
    "pod-garbage-collector-controller", "serviceaccount-controller", "serviceaccount-token-controller",
    "endpointslice-controller", "root-ca-certificate-publisher-controller", "clusterrole-aggregation-controller",
    "persistentvolume-binder-controller", "persistentvolumeclaim-protection-controller",
)
"""kube-controller-manager's controllers on a member: what Deployments, HPAs, namespace deletion, garbage
collection, node health, ServiceAccount tokens and volume claims need (each a real controller), and nothing else."""
NODESIM_USER = "kubellm-nodesim"


@dataclass(frozen=True)
class MemberOptions:
    name: str = "member"
    pools: tuple[simopts.NodePool, ...] = (simopts.NodePool(count=2),)
    """GPU nodes: count, GPUs per node, product (e.g. NVIDIA-A100-SXM4-80GB), memory per GPU (MiB)."""
    image_failure_pattern: str = ""
    ready_delay: float = 2.0
    probe_delay_scale: float = 1.0
    image_backoff: float = 2.0
    queue_length: int = 0
    runtime_class: bool = True
    """Create the RuntimeClass `nvidia` (without it, pods that ask for it are rejected)."""
    hpa_sync_period: str = "5s"
    node_monitor_grace_period: str = ""
    """kube-controller-manager's --node-monitor-grace-period ("" keeps Kubernetes' default)."""
    node_monitor_period: str = ""
    lease_interval: float = 10.0
    node_status_interval: float = 60.0
    controllers: tuple[str, ...] = MEMBER_CONTROLLERS
    extra_controller_manager_args: tuple[str, ...] = field(default_factory=tuple)

    def node_names(self) -> list[str]:
        return self.simulator(Path(), 0).node_names()

    def simulator(self, kubeconfig: Path, metrics_port: int, pki: Path | None = None) -> simopts.Options:
        pki = pki or Path()
        return simopts.Options(
            kubeconfig=str(kubeconfig), node_prefix=f"{self.name}-gpu-", pools=self.pools,
            ready_delay=self.ready_delay, probe_delay_scale=self.probe_delay_scale,
            image_failure_pattern=self.image_failure_pattern, image_backoff=self.image_backoff,
            queue_length=self.queue_length, lease_interval=self.lease_interval,
            status_interval=self.node_status_interval,
            metrics=simopts.MetricsOptions(port=metrics_port, cert_file=str(pki / "nodesim-metrics.crt"),
                                           key_file=str(pki / "nodesim-metrics.key"),
                                           ca_file=str(pki / "nodesim-ca.crt")))


class MemberCluster:
    def __init__(self, state_dir: Path, options: MemberOptions | None = None) -> None:
        self.options = options or MemberOptions()
        self.dir = Path(state_dir)
        o = self.options
        self.control_plane = ControlPlane(self.dir, o.name, scheduler=True, controller_manager=ControllerManagerOptions(
            controllers=o.controllers, hpa_sync_period=o.hpa_sync_period,
            node_monitor_grace_period=o.node_monitor_grace_period, node_monitor_period=o.node_monitor_period,
            extra_args=o.extra_controller_manager_args))
        self.kubeconfig = self.control_plane.kubeconfig
        self.start_seconds = 0.0
        self._token = ""

    # -- lifecycle

    @property
    def name(self) -> str:
        return self.options.name

    @property
    def url(self) -> str:
        return self.control_plane.url

    def __enter__(self) -> MemberCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, timeout: float = 120) -> None:
        """Start everything and wait until the nodes are Ready, the token issued and the metrics API
        Available (`StartupError` otherwise, with the log tails). Again after `stop()`: the same cluster."""
        began = time.monotonic()
        self.control_plane.start(timeout, on_apiserver_ready=self._bootstrap)
        deadline = began + timeout
        procs = tuple(self.control_plane.processes)
        wait_until(self._nodes_ready, deadline - time.monotonic(), f"{self.name}: nodes Ready", processes=procs)
        wait_until(self._read_token, deadline - time.monotonic(), f"{self.name}: the kubellm token",
                   processes=procs)
        wait_until(self._metrics_available, deadline - time.monotonic(), f"{self.name}: {APISERVICE_NAME} Available",
                   processes=procs)
        self.start_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Every process down (the simulator first); data and ports are kept for `start()`."""
        self.control_plane.stop()

    def _bootstrap(self, deadline: float) -> None:
        """Once kube-apiserver serves: the objects of deploy/member, the RuntimeClass, the simulator's RBAC,
        then the simulator itself."""
        cp = self.control_plane
        objects = [*manifests.member_objects(), *simrbac.objects(NODESIM_USER)]
        if self.options.runtime_class:
            objects.append(manifests.runtime_class())
        with DynamicClient(Config.from_kubeconfig(cp.kubeconfig)) as client:
            manifests.apply(client, objects)
        self._start_simulator()

    def _start_simulator(self) -> Process:
        cp = self.control_plane
        pki = self.dir / "pki"
        ca, serving = Pair(pki / "nodesim-ca.crt", pki / "nodesim-ca.key"), Pair(
            pki / "nodesim-metrics.crt", pki / "nodesim-metrics.key")
        sim = self.options.simulator(cp.user(NODESIM_USER)[1], cp.port("nodesim-metrics"), pki)
        ensure_ca(f"{self.name}-nodesim-ca", ca)
        issue_serving_certificate(ca, serving, "kubellm-nodesim-metrics", [
            f"{sim.metrics.service_name}.{sim.metrics.service_namespace}.svc", "localhost", "127.0.0.1"])
        cp.save_ports()
        return cp.spawn("kubellm-nodesim", [sys.executable, str(ROOT / "cmd" / "kubellm-nodesim"),
                                            *simopts.to_args(sim)])

    # -- readiness

    def _nodes_ready(self) -> bool | None:
        r = self.control_plane.request("GET", "/api/v1/nodes", timeout=5)
        ready = {n["metadata"]["name"] for n in (r.body or {}).get("items", [])
                 if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))}
        return True if set(self.options.node_names()) <= ready else None

    def _read_token(self) -> bool | None:
        r = self.secret(manifests.TOKEN_SECRET)
        token = ((r.body or {}).get("data") or {}).get("token") if r.status == 200 else None
        if not token:
            return None
        self._token = base64.b64decode(token).decode()
        return True

    def _metrics_available(self) -> bool | None:
        r = self.control_plane.request("GET", f"/apis/apiregistration.k8s.io/v1/apiservices/{APISERVICE_NAME}",
                                       timeout=5)
        conds = {c["type"]: c["status"] for c in ((r.body or {}).get("status") or {}).get("conditions", [])}
        return True if conds.get("Available") == "True" else None

    def secret(self, name: str) -> Response:
        return self.control_plane.request("GET", f"/api/v1/namespaces/{manifests.NAMESPACE}/secrets/{name}",
                                          timeout=5)

    # -- what KubeLLM needs

    @property
    def token(self) -> str:
        """The long-lived token of KubeLLM's ServiceAccount on this cluster."""
        if not self._token and not self._read_token():
            raise RuntimeError(f"{self.name}: the {manifests.TOKEN_SECRET} Secret has no token yet")
        return self._token

    def ca_pem(self) -> bytes:
        return self.control_plane.ca.cert.read_bytes()

    def cluster(self, name: str | None = None, *, region: str = "", zone: str = "", provider: str = "",
                labels: dict[str, str] | None = None) -> Cluster:
        """The `Cluster` (cluster.kubellm.io/v1alpha1) that registers this member with KubeLLM: its
        endpoint, its CA and KubeLLM's token."""
        return Cluster(
            api_version="cluster.kubellm.io/v1alpha1", kind="Cluster",
            metadata=ObjectMeta(name=name or self.name, labels=labels or None),
            spec=ClusterSpec(api_endpoint=self.url, ca_bundle=base64.b64encode(self.ca_pem()).decode(),
                             credentials=ClusterCredentials(token=self.token), region=region, zone=zone,
                             provider=provider))

    def cluster_manifest(self, name: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return encode_set(self.cluster(name, **kwargs))

    def write_files(self, **cluster_kwargs: Any) -> tuple[Path, Path]:
        """`<state>/cluster.yaml` (the Cluster, with its token: mode 0600) and `<state>/kubellm.kubeconfig`
        (KubeLLM's identity on this member, for kubectl)."""
        manifest = self.dir / "cluster.yaml"
        manifest.write_text(yaml.safe_dump(self.cluster_manifest(**cluster_kwargs), sort_keys=False))
        manifest.chmod(0o600)
        kubeconfig = self.dir / "kubellm.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": self.name,
            "clusters": [{"name": self.name, "cluster": {"server": self.url,
                                                         "certificate-authority": str(self.control_plane.ca.cert)}}],
            "users": [{"name": f"kubellm@{self.name}", "user": {"token": self.token}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": f"kubellm@{self.name}"}}]}))
        kubeconfig.chmod(0o600)
        return manifest, kubeconfig

    # -- tools

    def kubectl(self, *args: str, **kwargs: Any) -> Any:
        """Real kubectl as the admin (see `ControlPlane.kubectl`)."""
        return self.control_plane.kubectl(*args, **kwargs)

    def rss_bytes(self) -> dict[str, int]:
        return self.control_plane.rss_bytes()
