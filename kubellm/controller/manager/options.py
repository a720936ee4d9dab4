"""kubellm-controller-manager options → complete() → validate() → frozen Config (the API server's flow).

Flags follow kube-controller-manager and controller-runtime where they have the setting; durations are Go
syntax (`15s`, `1m30s`, `500ms`) or plain seconds.
"""

from __future__ import annotations

import argparse
import importlib
import re
import socket
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from kubellm.client.config import Config as ClientConfig
from kubellm.controller.cluster.reconciler import ClusterOptions
from kubellm.controller.llmservice.resources import HFCache, LLMSettings
from kubellm.controller.manager.controllers import default_registry
from kubellm.controller.manager.registry import ControllerRegistry, ControllerSpec
from kubellm.controller.manager.settings import ControllerSettings
from kubellm.controller.ragservice.resources import RAGSettings
from kubellm.controller.runtime.leaderelection import LeaderElectionConfig

USER_AGENT = "kubellm-controller-manager/0.1.0"
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str) -> float:
    """A Go duration (`1m30s`, `500ms`) or plain seconds."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("an empty duration")
    if re.fullmatch(r"\d+(\.\d*)?", text):
        return float(text)
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 15s, 1m30s, 500ms)")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total


def boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def load_extra_controllers(reference: str) -> list[ControllerSpec]:
    """`module:attribute`, where the attribute is a ControllerRegistry or a sequence of ControllerSpecs."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"--extra-controllers {reference!r}: give module:attribute")
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"--extra-controllers {reference!r}: {exc}") from None
    specs = list(value) if isinstance(value, ControllerRegistry | list | tuple) else None
    if specs is None or not all(isinstance(s, ControllerSpec) for s in specs):
        raise ValueError(f"--extra-controllers {reference!r}: not a ControllerRegistry or a list of ControllerSpec")
    return specs


@dataclass
class Options:
    kubeconfig: str = ""
    kube_api_qps: float = 50.0
    kube_api_burst: int = 100
    leader_elect: bool = True
    leader_election_kubeconfig: str = ""
    leader_election_namespace: str = "kube-system"
    leader_election_id: str = "kubellm-controller-manager"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    events_kubeconfig: str = ""
    controllers: list[str] = field(default_factory=lambda: ["*"])
    concurrent_syncs: dict[str, int] = field(default_factory=dict)
    extra_controllers: list[str] = field(default_factory=list)
    reconcile_timeout: float = 300.0
    cache_sync_timeout: float = 120.0
    shutdown_grace_period: float = 30.0
    bind_address: str = "127.0.0.1"
    health_port: int = 10358
    metrics_port: int = 10359
    log_format: str = "json"
    event_loop: str = "uvloop"
    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    llm: LLMSettings = field(default_factory=LLMSettings)
    rag: RAGSettings = field(default_factory=RAGSettings)
    registry: ControllerRegistry = field(default_factory=default_registry)
    problems_found: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, argv: list[str] | None = None) -> Options:
        p = argparse.ArgumentParser(prog="kubellm-controller-manager",
                                    description="Runs KubeLLM's controllers; one replica leads, the others stand by.")
        p.add_argument("--kubeconfig", default="",
                       help="KubeLLM's API (default: $KUBECONFIG, else in-cluster, else ~/.kube/config)")
        p.add_argument("--kube-api-qps", type=float, default=50.0,
                       help="requests per second to the API (0: no limit); Events have a budget of their own")
        p.add_argument("--kube-api-burst", type=int, default=100)
        p.add_argument("--leader-elect", type=boolean, nargs="?", const=True, default=True,
                       help="elect a leader on a Lease before running controllers (default true)")
        p.add_argument("--leader-election-kubeconfig", default="",
                       help="the cluster holding the Lease (the host cluster when KubeLLM is aggregated); "
                            "default: --kubeconfig")
        p.add_argument("--leader-election-namespace", default="kube-system")
        p.add_argument("--leader-election-id", default="kubellm-controller-manager", help="the Lease's name")
        p.add_argument("--lease-duration", type=duration, default=15.0,
                       help="how long standbys wait after the leader's last renewal before taking over")
        p.add_argument("--renew-deadline", type=duration, default=10.0,
                       help="how long the leader retries renewing before it gives up (and exits)")
        p.add_argument("--retry-period", type=duration, default=2.0, help="between tries to acquire or renew")
        p.add_argument("--events-kubeconfig", default="",
                       help="the cluster Events are written to (the host cluster when KubeLLM is aggregated); "
                            "default: --kubeconfig")
        p.add_argument("--controllers", type=_names, default=["*"],
                       help="controllers to run: '*' (all enabled by default), 'name', '-name' (comma-separated)")
        p.add_argument("--concurrent-syncs", default="",
                       help="workers per controller, e.g. cluster=4,llmservice=2 (default: the controller's own)")
        p.add_argument("--extra-controllers", action="append", default=[],
                       help="also offer the controllers of an importable module, module:attribute (a "
                            "ControllerRegistry or a list of ControllerSpec); for out-of-tree controllers and tests")
        p.add_argument("--reconcile-timeout", type=duration, default=300.0, help="deadline of one reconcile")
        p.add_argument("--cache-sync-timeout", type=duration, default=120.0,
                       help="the informers' caches must fill within this, else the manager exits")
        p.add_argument("--shutdown-grace-period", type=duration, default=30.0,
                       help="on SIGTERM/SIGINT, how long reconciles in flight may take to finish")
        p.add_argument("--bind-address", default="127.0.0.1", help="address of the health and metrics endpoints")
        p.add_argument("--health-port", type=int, default=10358, help="/healthz and /readyz (0: a free port)")
        p.add_argument("--metrics-port", type=int, default=10359,
                       help="/metrics (0: a free port; the health port's value: served there)")
        p.add_argument("--log-format", choices=["json", "console"], default="json")
        p.add_argument("--event-loop", choices=["uvloop", "asyncio"], default="uvloop")
        c = p.add_argument_group("cluster controller")
        c.add_argument("--cluster-probe-interval", type=duration, default=10.0,
                       help="between probes of one member cluster (plus up to 20%% jitter)")
        c.add_argument("--cluster-probe-timeout", type=duration, default=5.0, help="deadline of each probe call")
        c.add_argument("--cluster-stale-after", type=duration, default=0.0,
                       help="without a successful probe this long, Ready turns False (ProbeStale); "
                            "default: twice the probe interval")
        c.add_argument("--cluster-credentials-expiry-warning", type=duration, default=30 * 86400.0,
                       help="CredentialsExpiringSoon turns True this long before the credentials expire")
        m = p.add_argument_group("llmservice controller")
        m.add_argument("--vllm-image", default=LLMSettings().image,
                       help="the vLLM image of LLMServices that name none")
        m.add_argument("--hf-endpoint", default=LLMSettings().hf_endpoint,
                       help="HF_ENDPOINT of LLMServices that name none")
        m.add_argument("--hf-cache-path", default=HFCache().host_path,
                       help="the node directory (hostPath) that caches model weights on the members")
        r = p.add_argument_group("ragservice controller")
        r.add_argument("--rag-image", default=RAGSettings().image, help="the image of RAGServices' chat app")
        a = p.parse_args(argv)
        problems: list[str] = []
        syncs: dict[str, int] = {}
        for item in _names(a.concurrent_syncs):
            name, sep, count = item.partition("=")
            if not sep or not count.strip().isdigit():
                problems.append(f"--concurrent-syncs: {item!r} is not name=count")
                continue
            syncs[name.strip()] = int(count)
        return cls(
            kubeconfig=a.kubeconfig, kube_api_qps=a.kube_api_qps, kube_api_burst=a.kube_api_burst,
            leader_elect=a.leader_elect, leader_election_kubeconfig=a.leader_election_kubeconfig,
            leader_election_namespace=a.leader_election_namespace, leader_election_id=a.leader_election_id,
            lease_duration=a.lease_duration, renew_deadline=a.renew_deadline, retry_period=a.retry_period,
            events_kubeconfig=a.events_kubeconfig, controllers=a.controllers, concurrent_syncs=syncs,
            extra_controllers=a.extra_controllers, reconcile_timeout=a.reconcile_timeout,
            cache_sync_timeout=a.cache_sync_timeout, shutdown_grace_period=a.shutdown_grace_period,
            bind_address=a.bind_address, health_port=a.health_port, metrics_port=a.metrics_port,
            log_format=a.log_format, event_loop=a.event_loop, problems_found=problems,
            cluster=ClusterOptions(probe_interval=a.cluster_probe_interval, probe_timeout=a.cluster_probe_timeout,
                                   stale_after=a.cluster_stale_after or 2 * a.cluster_probe_interval,
                                   expiry_warning=timedelta(seconds=a.cluster_credentials_expiry_warning)),
            llm=LLMSettings(image=a.vllm_image, hf_endpoint=a.hf_endpoint, hf_cache=HFCache(host_path=a.hf_cache_path)),
            rag=RAGSettings(image=a.rag_image))

    def complete(self) -> Options:
        """Load the extra controllers into the registry."""
        for reference in self.extra_controllers:
            try:
                self.registry = self.registry.merged(load_extra_controllers(reference))
            except ValueError as exc:
                self.problems_found.append(str(exc))
        return self

    def validate(self) -> list[str]:
        problems = list(self.problems_found)
        problems += [f"{path}: no such kubeconfig" for path in
                     (self.kubeconfig, self.leader_election_kubeconfig, self.events_kubeconfig)
                     if path and not Path(path).exists()]
        if unknown := self.registry.unknown(self.controllers):
            problems.append(f"--controllers: unknown controllers {unknown}; known: {self.registry.names()}")
        if unknown := sorted(set(self.concurrent_syncs) - set(self.registry.names())):
            problems.append(f"--concurrent-syncs: unknown controllers {unknown}")
        problems += [f"--concurrent-syncs: {name} needs at least one worker"
                     for name, n in self.concurrent_syncs.items() if n < 1]
        if self.leader_elect:
            problems += [f"leader election: {p}" for p in self._election(identity="-").problems()]
        for flag, value in (("reconcile-timeout", self.reconcile_timeout),
                            ("cache-sync-timeout", self.cache_sync_timeout)):
            if value <= 0:
                problems.append(f"--{flag} must be positive")
        if self.shutdown_grace_period < 0:
            problems.append("--shutdown-grace-period must not be negative")
        for flag, port in (("health-port", self.health_port), ("metrics-port", self.metrics_port)):
            if not 0 <= port <= 65535:
                problems.append(f"--{flag} must be between 0 and 65535")
        problems += [f"--cluster-{p}" for p in self.cluster.problems()]
        if self.kube_api_qps < 0 or self.kube_api_burst < 0:
            problems.append("--kube-api-qps and --kube-api-burst must not be negative")
        return problems

    def _election(self, identity: str) -> LeaderElectionConfig:
        return LeaderElectionConfig(self.leader_election_id, self.leader_election_namespace, identity,
                                    self.lease_duration, self.renew_deadline, self.retry_period)

    def _client(self, path: str, identity: str, **overrides: float) -> ClientConfig:
        # the identity in every request's User-Agent: audit logs tell which replica wrote what
        return ClientConfig.load(path or None, None, user_agent=f"{USER_AGENT} ({identity})", **overrides)

    def config(self) -> Config:
        """The frozen configuration; ConfigError when a kubeconfig cannot be loaded."""
        identity = f"{socket.gethostname()}_{uuid.uuid4()}"
        api = self._client(self.kubeconfig, identity, qps=self.kube_api_qps, burst=self.kube_api_burst)
        # leader election has a connection of its own and no client-side rate limit: busy controllers
        # must not delay renewals
        election = self._client(self.leader_election_kubeconfig or self.kubeconfig, identity)
        # Events have a connection and a rate limit of their own (as each of kube-controller-manager's
        # controllers has its own client): telling what happened must not slow down doing it
        events = self._client(self.events_kubeconfig or self.kubeconfig, identity, qps=self.kube_api_qps,
                              burst=self.kube_api_burst)
        return Config(
            api=api, election_api=election, events_api=events,
            leader_election=self._election(identity) if self.leader_elect else None, identity=identity,
            controllers=tuple(self.registry.select(self.controllers)),
            workers={spec.name: self.concurrent_syncs.get(spec.name, spec.workers) for spec in self.registry},
            reconcile_timeout=self.reconcile_timeout, cache_sync_timeout=self.cache_sync_timeout,
            shutdown_grace_period=self.shutdown_grace_period, bind_address=self.bind_address,
            health_port=self.health_port, metrics_port=self.metrics_port, log_format=self.log_format,
            event_loop=self.event_loop, settings=ControllerSettings(cluster=self.cluster, llm=self.llm, rag=self.rag))


@dataclass(frozen=True)
class Config:
    api: ClientConfig
    election_api: ClientConfig
    events_api: ClientConfig
    leader_election: LeaderElectionConfig | None
    """None: no election (`--leader-elect=false`), the controllers run at once."""
    identity: str
    controllers: tuple[ControllerSpec, ...]
    workers: dict[str, int]
    reconcile_timeout: float
    cache_sync_timeout: float
    shutdown_grace_period: float
    bind_address: str
    health_port: int
    metrics_port: int
    log_format: str = "json"
    event_loop: str = "asyncio"
    settings: ControllerSettings = field(default_factory=ControllerSettings)
