"""The node simulator's settings: GPU node pools, pod timings, the metric, heartbeats; parsed from flags.

    kubellm-nodesim --kubeconfig member.kubeconfig --node-prefix member-a- \\
        --pool count=2,gpus=8,product=NVIDIA-A100-SXM4-80GB,memory=81920 \\
        --ready-delay 2 --image-failure-pattern ':broken$' --queue-length 0 \\
        --metrics-port 9443 --tls-cert-file metrics.crt --tls-private-key-file metrics.key \\
        --metrics-ca-file metrics-ca.crt
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field

DEFAULT_PRODUCT = "NVIDIA-A100-SXM4-80GB"
METRIC = "vllm_num_requests_waiting"
QUEUE_ANNOTATION = "sim.kubellm.io/queue-length"
READY_DELAY_ANNOTATION = "sim.kubellm.io/ready-delay-seconds"


@dataclass(frozen=True)
class NodePool:
    """`count` identical GPU nodes."""

    count: int = 1
    gpus: int = 8
    product: str = DEFAULT_PRODUCT
    memory_mib: int = 81920
    """Memory of one GPU, MiB (label nvidia.com/gpu.memory, as GPU feature discovery writes it)."""
    cpu: str = "64"
    memory: str = "512Gi"
    pods: int = 110

    @classmethod
    def parse(cls, text: str) -> NodePool:
        """`count=2,gpus=8,product=NVIDIA-A100-SXM4-80GB,memory=81920[,cpu=64,ram=512Gi,pods=110]`."""
        values: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key not in ("count", "gpus", "product", "memory", "cpu", "ram", "pods"):
                raise ValueError(f"bad pool item {part!r}: use count=, gpus=, product=, memory=, cpu=, ram=, pods=")
            values[key] = value
        try:
            pool = cls(count=int(values.get("count", cls.count)), gpus=int(values.get("gpus", cls.gpus)),
                       product=values.get("product", cls.product),
                       memory_mib=int(values.get("memory", cls.memory_mib)), cpu=values.get("cpu", cls.cpu),
                       memory=values.get("ram", cls.memory), pods=int(values.get("pods", cls.pods)))
        except ValueError as exc:
            raise ValueError(f"bad pool {text!r}: {exc}") from exc
        if pool.count < 0 or pool.gpus < 0 or pool.memory_mib < 0 or pool.pods < 1:
            raise ValueError(f"bad pool {text!r}: counts must not be negative")
        if not re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", pool.product):
            raise ValueError(f"bad pool {text!r}: the product must be a label value, e.g. {DEFAULT_PRODUCT}")
        return pool

    def format(self) -> str:
        return (f"count={self.count},gpus={self.gpus},product={self.product},memory={self.memory_mib},"
                f"cpu={self.cpu},ram={self.memory},pods={self.pods}")


@dataclass(frozen=True)
class MetricsOptions:
    """The external metrics API server (off when `port` is 0)."""

    port: int = 0
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    """The CA that signed the serving certificate: the APIService's caBundle."""
    service_namespace: str = "kube-system"
    service_name: str = "kubellm-nodesim-metrics"
    """The ExternalName Service the APIService names; the certificate must be valid for
    `<service_name>.<service_namespace>.svc`."""


@dataclass(frozen=True)
class Options:
    kubeconfig: str = ""
    node_prefix: str = "gpu-"
    pools: tuple[NodePool, ...] = (NodePool(),)
    ready_delay: float = 2.0
    """Seconds from Running to Ready (the model loading), at least the readiness probe's initialDelaySeconds
    times `probe_delay_scale`; a pod's `sim.kubellm.io/ready-delay-seconds` annotation overrides it."""
    probe_delay_scale: float = 1.0
    image_failure_pattern: str = ""
    """Images matching this regular expression fail to pull (ErrImagePull, then ImagePullBackOff)."""
    image_backoff: float = 2.0
    """Seconds from ErrImagePull to ImagePullBackOff."""
    queue_length: int = 0
    """The metric's value for a pod without the `sim.kubellm.io/queue-length` annotation."""
    lease_interval: float = 10.0
    lease_duration: int = 40
    status_interval: float = 60.0
    """How often the NodeStatus heartbeat (the Ready condition's lastHeartbeatTime) is written."""
    workers: int = 4
    metrics: MetricsOptions = field(default_factory=MetricsOptions)
    log_level: str = "info"

    def node_names(self) -> list[str]:
        return [f"{self.node_prefix}{i}" for i in range(sum(p.count for p in self.pools))]

    def failing_image(self) -> re.Pattern[str] | None:
        return re.compile(self.image_failure_pattern) if self.image_failure_pattern else None


def parse(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="kubellm-nodesim", description=(
        "Plays kubelet and GPUs for a real Kubernetes control plane: GPU nodes with heartbeats, pods that "
        "become Running and Ready (or fail to pull), pod deletions finished, and the external metric "
        f"{METRIC} served as an aggregated API."))
    d = Options()
    p.add_argument("--kubeconfig", default="", help="kubeconfig of the cluster (default: $KUBECONFIG)")
    p.add_argument("--node-prefix", default=d.node_prefix, help="node names are <prefix><index>")
    p.add_argument("--pool", action="append", type=NodePool.parse, default=None,
                   help="a node pool: count=2,gpus=8,product=NVIDIA-A100-SXM4-80GB,memory=81920 (repeatable)")
    p.add_argument("--ready-delay", type=float, default=d.ready_delay, help="seconds from Running to Ready")
    p.add_argument("--probe-delay-scale", type=float, default=d.probe_delay_scale,
                   help="multiplies readiness probes' initialDelaySeconds (0 ignores them)")
    p.add_argument("--image-failure-pattern", default="", help="regex: matching images fail to pull")
    p.add_argument("--image-backoff", type=float, default=d.image_backoff,
                   help="seconds from ErrImagePull to ImagePullBackOff")
    p.add_argument("--queue-length", type=int, default=d.queue_length,
                   help=f"default {METRIC} per pod (annotation {QUEUE_ANNOTATION} overrides)")
    p.add_argument("--lease-interval", type=float, default=d.lease_interval, help="node lease renewal, seconds")
    p.add_argument("--lease-duration", type=int, default=d.lease_duration, help="leaseDurationSeconds")
    p.add_argument("--status-interval", type=float, default=d.status_interval,
                   help="NodeStatus heartbeat, seconds")
    p.add_argument("--workers", type=int, default=d.workers, help="pods reconciled concurrently")
    p.add_argument("--metrics-port", type=int, default=0, help="external metrics API port (0: not served)")
    p.add_argument("--tls-cert-file", default="", help="serving certificate of the metrics API")
    p.add_argument("--tls-private-key-file", default="")
    p.add_argument("--metrics-ca-file", default="", help="CA of the serving certificate (the APIService caBundle)")
    p.add_argument("--metrics-service-namespace", default=MetricsOptions.service_namespace)
    p.add_argument("--metrics-service-name", default=MetricsOptions.service_name)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    a = p.parse_args(argv)
    if a.metrics_port and not (a.tls_cert_file and a.tls_private_key_file and a.metrics_ca_file):
        p.error("--metrics-port needs --tls-cert-file, --tls-private-key-file and --metrics-ca-file")
    if a.image_failure_pattern:
        try:
            re.compile(a.image_failure_pattern)
        except re.error as exc:
            p.error(f"--image-failure-pattern: {exc}")
    if min(a.ready_delay, a.probe_delay_scale, a.image_backoff) < 0 or a.lease_interval <= 0 \
            or a.status_interval <= 0 or a.workers < 1:
        p.error("delays must not be negative; intervals and workers must be positive")
    return Options(
        kubeconfig=a.kubeconfig, node_prefix=a.node_prefix, pools=tuple(a.pool or (NodePool(),)),
        ready_delay=a.ready_delay, probe_delay_scale=a.probe_delay_scale,
        image_failure_pattern=a.image_failure_pattern, image_backoff=a.image_backoff, queue_length=a.queue_length,
        lease_interval=a.lease_interval, lease_duration=a.lease_duration, status_interval=a.status_interval,
        workers=a.workers, log_level=a.log_level,
        metrics=MetricsOptions(port=a.metrics_port, cert_file=a.tls_cert_file, key_file=a.tls_private_key_file,
                               ca_file=a.metrics_ca_file, service_namespace=a.metrics_service_namespace,
                               service_name=a.metrics_service_name))


def to_args(o: Options) -> list[str]:
    """The flags that `parse` turns back into `o` (the launcher starts the simulator with them)."""
    args = ["--node-prefix", o.node_prefix, *(a for pool in o.pools for a in ("--pool", pool.format())),
            "--ready-delay", str(o.ready_delay), "--probe-delay-scale", str(o.probe_delay_scale),
            "--image-backoff", str(o.image_backoff), "--queue-length", str(o.queue_length),
            "--lease-interval", str(o.lease_interval), "--lease-duration", str(o.lease_duration),
            "--status-interval", str(o.status_interval), "--workers", str(o.workers), "--log-level", o.log_level]
    if o.kubeconfig:
        args += ["--kubeconfig", o.kubeconfig]
    if o.image_failure_pattern:
        args += ["--image-failure-pattern", o.image_failure_pattern]
    m = o.metrics
    if m.port:
        args += ["--metrics-port", str(m.port), "--tls-cert-file", m.cert_file, "--tls-private-key-file", m.key_file,
                 "--metrics-ca-file", m.ca_file, "--metrics-service-namespace", m.service_namespace,
                 "--metrics-service-name", m.service_name]
    return args
