"""API server options → complete() → validate() → frozen Config.

Options come from the command line; `complete()` fills what can be derived (state directory paths,
the embedded etcd), `validate()` reports every problem at once, and `Config` is what `build` uses.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from kubellm.registry.options import DEFAULT_HF_ENDPOINT, DEFAULT_VLLM_IMAGE
from kubellm.server.limits import ServingLimits
from kubellm.server.params import parse_duration

_LIMITS = ServingLimits()
MAX_WORKERS = 64


def available_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: its CPU affinity, capped by its cgroup's CPU quota (a container's CPU
    limit, rounded up) when there is one."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cores


def duration(text: str) -> float:
    """A flag's duration: Go syntax as kube-apiserver's flags (`1m0s`, `500ms`) or plain seconds."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass
class Options:
    state_dir: Path = Path(".state")
    etcd_servers: list[str] = field(default_factory=list)
    etcd_prefix: str = "/registry"
    etcd_cafile: str = ""
    etcd_certfile: str = ""
    etcd_keyfile: str = ""
    etcd_compaction_interval: float = 300.0
    etcd_request_timeout: float = 5.0
    etcd_list_timeout: float = 30.0
    etcd_dial_timeout: float = 2.0
    etcd_healthcheck_timeout: float = 2.0
    etcd_watch_progress_interval: float = 5.0
    embedded_etcd_max_failed_restarts: int = 5
    default_image: str = DEFAULT_VLLM_IMAGE
    default_hf_endpoint: str = DEFAULT_HF_ENDPOINT
    log_format: str = "json"
    bind_address: str = "127.0.0.1"
    secure_port: int = 6443
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    client_ca_file: str = ""
    event_loop: str = "uvloop"
    requestheader_client_ca_file: str = ""
    requestheader_allowed_names: list[str] = field(default_factory=list)
    encryption_provider_config: str = ""
    audit_log_path: str = ""
    audit_policy_file: str = ""
    oidc_issuer_url: str = ""
    oidc_client_id: str = ""
    oidc_username_claim: str = "sub"
    oidc_username_prefix: str | None = None
    oidc_groups_claim: str = ""
    oidc_groups_prefix: str = ""
    oidc_ca_file: str = ""
    authentication_kubeconfig: str = ""
    authorization_kubeconfig: str = ""
    login_max_failures: int = 5
    login_lockout_seconds: int = 300
    login_source_max_failures: int = 20
    serve_host_kinds: str = "auto"
    event_ttl_seconds: int = 3600
    token_ttl_seconds: int = 3600
    console_dir: str = ""
    workers: int = 0
    max_requests_inflight: int = _LIMITS.max_requests_inflight
    max_mutating_requests_inflight: int = _LIMITS.max_mutating_requests_inflight
    max_long_running_requests: int = _LIMITS.max_long_running_requests
    max_open_connections: int = _LIMITS.max_open_connections
    request_timeout: float = _LIMITS.request_timeout
    tls_handshake_timeout: float = _LIMITS.tls_handshake_timeout
    read_header_timeout: float = _LIMITS.read_header_timeout
    read_body_timeout: float = _LIMITS.read_body_timeout
    idle_connection_timeout: float = _LIMITS.idle_connection_timeout

    @classmethod
    def parse(cls, argv: list[str] | None = None) -> Options:
        p = argparse.ArgumentParser(prog="kubellm-apiserver", description="The KubeLLM API server.")
        p.add_argument("--state-dir", type=Path, default=Path(".state"),
                       help="directory for generated state: embedded etcd data, certificates, kubeconfig")
        p.add_argument("--etcd-servers", default="",
                       help="comma-separated etcd client URLs; empty starts an embedded etcd")
        p.add_argument("--etcd-prefix", default="/registry")
        p.add_argument("--etcd-cafile", default="")
        p.add_argument("--etcd-certfile", default="")
        p.add_argument("--etcd-keyfile", default="")
        p.add_argument("--etcd-compaction-interval", type=float, default=300.0,
                       help="seconds between compactions of etcd history (0 disables)")
        p.add_argument("--etcd-request-timeout", type=duration, default=5.0,
                       help="deadline of each etcd call but lists (a 504 Timeout past it); e.g. 5s")
        p.add_argument("--etcd-list-timeout", type=duration, default=30.0,
                       help="deadline of each etcd range over a resource (a page of a list); e.g. 30s")
        p.add_argument("--etcd-dial-timeout", type=duration, default=2.0,
                       help="connecting to one etcd endpoint may take this long before the next is tried")
        p.add_argument("--etcd-healthcheck-timeout", type=duration, default=2.0,
                       help="deadline of the etcd check of /readyz and /healthz")
        p.add_argument("--etcd-watch-progress-interval", type=duration, default=5.0,
                       help="an etcd watch silent this long asks etcd for progress; unanswered within "
                            "--etcd-request-timeout, the watch is re-established from its last revision")
        p.add_argument("--embedded-etcd-max-failed-restarts", type=int, default=5,
                       help="without --etcd-servers: the embedded etcd is restarted whenever it exits (backoff 0.5 s "
                            "to 30 s); after this many failed restarts in a row /livez fails")
        p.add_argument("--default-image", default=DEFAULT_VLLM_IMAGE, help="vLLM image for LLMServices")
        p.add_argument("--default-hf-endpoint", default=DEFAULT_HF_ENDPOINT)
        p.add_argument("--log-format", choices=["json", "console"], default="json")
        p.add_argument("--bind-address", default="127.0.0.1")
        p.add_argument("--secure-port", type=int, default=6443, help="HTTPS port; 0 picks a free one")
        p.add_argument("--tls-cert-file", default="", help="serving certificate; generated when empty")
        p.add_argument("--tls-private-key-file", default="")
        p.add_argument("--client-ca-file", default="", help="CA for client certificates; generated when empty")
        p.add_argument("--event-loop", choices=["uvloop", "asyncio"], default="uvloop",
                       help="event loop implementation (uvloop: faster)")
        p.add_argument("--requestheader-client-ca-file", default="",
                       help="CA of the front proxy (the aggregator); its X-Remote-* headers are trusted only "
                            "from certificates it signed")
        p.add_argument("--requestheader-allowed-names", default="",
                       help="comma-separated common names allowed for the front-proxy certificate (empty: any)")
        p.add_argument("--encryption-provider-config", default="",
                       help="EncryptionConfiguration for secrets at rest; generated in the state directory when empty")
        p.add_argument("--audit-log-path", default="", help="write audit.k8s.io/v1 Events here (JSON lines)")
        p.add_argument("--audit-policy-file", default="",
                       help="audit.k8s.io/v1 Policy; default: Metadata for everything but health and version")
        p.add_argument("--oidc-issuer-url", default="", help="accept ID tokens of this OpenID Connect issuer (https)")
        p.add_argument("--oidc-client-id", default="", help="the audience the ID tokens must carry")
        p.add_argument("--oidc-username-claim", default="sub")
        p.add_argument("--oidc-username-prefix", default=None,
                       help='prefix of OIDC user names (default "<issuer>#" unless the claim is email; "-" for none)')
        p.add_argument("--oidc-groups-claim", default="")
        p.add_argument("--oidc-groups-prefix", default="")
        p.add_argument("--oidc-ca-file", default="", help="CA of the issuer's serving certificate")
        p.add_argument("--authentication-kubeconfig", default="",
                       help="host cluster for delegated TokenReview of bearer tokens this server does not know")
        p.add_argument("--authorization-kubeconfig", default="",
                       help="host cluster for delegated SubjectAccessReview when local RBAC does not allow")
        p.add_argument("--serve-host-kinds", choices=("auto", "true", "false"), default="auto",
                       help="serve Namespaces, Events and Leases (what a host cluster serves); auto: unless "
                            "--authentication-kubeconfig names a host cluster")
        p.add_argument("--event-ttl-seconds", type=int, default=3600, help="how long Events are kept (kube's "
                                                                             "--event-ttl)")
        p.add_argument("--login-max-failures", type=int, default=5,
                       help="failed logins in a row after which a user is locked out")
        p.add_argument("--login-lockout-seconds", type=int, default=300, help="how long a lockout lasts")
        p.add_argument("--login-source-max-failures", type=int, default=20,
                       help="failed logins per source address per minute before that address is throttled")
        p.add_argument("--token-ttl-seconds", type=int, default=3600, help="lifetime of login tokens")
        p.add_argument("--console-dir", default="",
                       help="the built web console served at /console/ (default: console/dist of this checkout)")
        p.add_argument("--workers", type=int, default=0,
                       help="server processes sharing the port, each with its own watch cache (default or 0: the "
                            "cores this process may use, its CPU affinity capped by a cgroup CPU limit); the limits "
                            "of requests and connections are divided among them")
        add_serving_flags(p)
        a = p.parse_args(argv)
        return cls(
            state_dir=a.state_dir,
            etcd_servers=[s.strip() for s in a.etcd_servers.split(",") if s.strip()],
            etcd_prefix=a.etcd_prefix,
            etcd_cafile=a.etcd_cafile,
            etcd_certfile=a.etcd_certfile,
            etcd_keyfile=a.etcd_keyfile,
            etcd_compaction_interval=a.etcd_compaction_interval,
            etcd_request_timeout=a.etcd_request_timeout,
            etcd_list_timeout=a.etcd_list_timeout,
            etcd_dial_timeout=a.etcd_dial_timeout,
            etcd_healthcheck_timeout=a.etcd_healthcheck_timeout,
            etcd_watch_progress_interval=a.etcd_watch_progress_interval,
            embedded_etcd_max_failed_restarts=a.embedded_etcd_max_failed_restarts,
            default_image=a.default_image,
            default_hf_endpoint=a.default_hf_endpoint,
            log_format=a.log_format,
            bind_address=a.bind_address,
            secure_port=a.secure_port,
            tls_cert_file=a.tls_cert_file,
            tls_private_key_file=a.tls_private_key_file,
            client_ca_file=a.client_ca_file,
            event_loop=a.event_loop,
            requestheader_client_ca_file=a.requestheader_client_ca_file,
            requestheader_allowed_names=[n.strip() for n in a.requestheader_allowed_names.split(",") if n.strip()],
            encryption_provider_config=a.encryption_provider_config,
            audit_log_path=a.audit_log_path,
            audit_policy_file=a.audit_policy_file,
            oidc_issuer_url=a.oidc_issuer_url,
            oidc_client_id=a.oidc_client_id,
            oidc_username_claim=a.oidc_username_claim,
            oidc_username_prefix=a.oidc_username_prefix,
            oidc_groups_claim=a.oidc_groups_claim,
            oidc_groups_prefix=a.oidc_groups_prefix,
            oidc_ca_file=a.oidc_ca_file,
            authentication_kubeconfig=a.authentication_kubeconfig,
            authorization_kubeconfig=a.authorization_kubeconfig,
            login_max_failures=a.login_max_failures,
            login_lockout_seconds=a.login_lockout_seconds,
            login_source_max_failures=a.login_source_max_failures,
            serve_host_kinds=a.serve_host_kinds,
            event_ttl_seconds=a.event_ttl_seconds,
            token_ttl_seconds=a.token_ttl_seconds,
            console_dir=a.console_dir,
            workers=a.workers,
            max_requests_inflight=a.max_requests_inflight,
            max_mutating_requests_inflight=a.max_mutating_requests_inflight,
            max_long_running_requests=a.max_long_running_requests,
            max_open_connections=a.max_open_connections,
            request_timeout=a.request_timeout,
            tls_handshake_timeout=a.tls_handshake_timeout,
            read_header_timeout=a.read_header_timeout,
            read_body_timeout=a.read_body_timeout,
            idle_connection_timeout=a.idle_connection_timeout,
        )

    def complete(self) -> Options:
        self.state_dir = self.state_dir.resolve()
        if not self.etcd_prefix.startswith("/"):
            self.etcd_prefix = "/" + self.etcd_prefix
        if self.workers == 0:
            self.workers = min(available_cores(), MAX_WORKERS)
        return self

    def validate(self) -> list[str]:
        problems: list[str] = []
        for url in self.etcd_servers:
            if not url.startswith(("http://", "https://")):
                problems.append(f"--etcd-servers: {url!r} must be an http:// or https:// URL")
        if self.etcd_compaction_interval < 0:
            problems.append("--etcd-compaction-interval must not be negative")
        problems += [f"--{flag} must be a positive duration" for flag, value in (
            ("etcd-request-timeout", self.etcd_request_timeout), ("etcd-list-timeout", self.etcd_list_timeout),
            ("etcd-dial-timeout", self.etcd_dial_timeout), ("etcd-healthcheck-timeout", self.etcd_healthcheck_timeout),
            ("etcd-watch-progress-interval", self.etcd_watch_progress_interval)) if not value > 0]
        if self.embedded_etcd_max_failed_restarts < 1:
            problems.append("--embedded-etcd-max-failed-restarts must be at least 1")
        if bool(self.etcd_certfile) != bool(self.etcd_keyfile):
            problems.append("--etcd-certfile and --etcd-keyfile must be given together")
        if bool(self.tls_cert_file) != bool(self.tls_private_key_file):
            problems.append("--tls-cert-file and --tls-private-key-file must be given together")
        if self.oidc_issuer_url and (not self.oidc_issuer_url.startswith("https://") or not self.oidc_client_id):
            problems.append("--oidc-issuer-url must be an https:// URL and needs --oidc-client-id")
        if self.login_max_failures < 1 or self.login_lockout_seconds < 0:
            problems.append("--login-max-failures must be at least 1 and --login-lockout-seconds not negative")
        if self.event_ttl_seconds < 1:
            problems.append("--event-ttl-seconds must be at least 1")
        if self.login_source_max_failures < 1:
            problems.append("--login-source-max-failures must be at least 1")
        if not 60 <= self.token_ttl_seconds <= 86_000:
            problems.append("--token-ttl-seconds must be between 60 and 86000")
        if self.audit_policy_file and not self.audit_log_path:
            problems.append("--audit-policy-file needs --audit-log-path")
        if not 1 <= self.workers <= MAX_WORKERS:
            problems.append(f"--workers must be between 1 and {MAX_WORKERS}")
        if not 0 <= self.secure_port <= 65535:
            problems.append("--secure-port must be between 0 and 65535")
        problems += self._serving_problems()
        return problems

    def _serving_problems(self) -> list[str]:
        problems = [f"--{flag} must not be negative" for flag, value in (
            ("max-requests-inflight", self.max_requests_inflight),
            ("max-mutating-requests-inflight", self.max_mutating_requests_inflight),
            ("max-long-running-requests", self.max_long_running_requests),
            ("max-open-connections", self.max_open_connections)) if value < 0]
        problems += [f"--{flag} must be a positive duration" for flag, value in (
            ("request-timeout", self.request_timeout), ("tls-handshake-timeout", self.tls_handshake_timeout),
            ("read-header-timeout", self.read_header_timeout), ("read-body-timeout", self.read_body_timeout),
            ("idle-connection-timeout", self.idle_connection_timeout)) if not value > 0]
        return problems

    def serving_limits(self) -> ServingLimits:
        return ServingLimits(
            max_requests_inflight=self.max_requests_inflight,
            max_mutating_requests_inflight=self.max_mutating_requests_inflight,
            max_long_running_requests=self.max_long_running_requests,
            max_open_connections=self.max_open_connections,
            request_timeout=self.request_timeout,
            tls_handshake_timeout=self.tls_handshake_timeout,
            read_header_timeout=self.read_header_timeout,
            read_body_timeout=self.read_body_timeout,
            idle_connection_timeout=self.idle_connection_timeout,
        )

    def config(self) -> Config:
        return Config(
            state_dir=self.state_dir,
            etcd_servers=tuple(self.etcd_servers),
            etcd_prefix=self.etcd_prefix.rstrip("/") or "/registry",
            etcd_cafile=self.etcd_cafile or None,
            etcd_certfile=self.etcd_certfile or None,
            etcd_keyfile=self.etcd_keyfile or None,
            etcd_compaction_interval=self.etcd_compaction_interval,
            embedded_etcd_max_failed_restarts=self.embedded_etcd_max_failed_restarts,
            etcd_timeouts=EtcdTimeouts(self.etcd_request_timeout, self.etcd_list_timeout, self.etcd_dial_timeout,
                                       self.etcd_healthcheck_timeout, self.etcd_watch_progress_interval),
            default_image=self.default_image,
            default_hf_endpoint=self.default_hf_endpoint,
            log_format=self.log_format,
            bind_address=self.bind_address,
            secure_port=self.secure_port,
            tls_cert_file=self.tls_cert_file or None,
            tls_private_key_file=self.tls_private_key_file or None,
            client_ca_file=self.client_ca_file or None,
            event_loop=self.event_loop,
            requestheader_client_ca_file=self.requestheader_client_ca_file or None,
            requestheader_allowed_names=tuple(self.requestheader_allowed_names),
            encryption_provider_config=Path(self.encryption_provider_config) if self.encryption_provider_config
            else None,
            audit_log_path=Path(self.audit_log_path) if self.audit_log_path else None,
            audit_policy_file=Path(self.audit_policy_file) if self.audit_policy_file else None,
            oidc=OIDCOptions(self.oidc_issuer_url, self.oidc_client_id, self.oidc_username_claim,
                             "" if self.oidc_username_prefix == "-" else self.oidc_username_prefix,
                             self.oidc_groups_claim, self.oidc_groups_prefix, self.oidc_ca_file or None)
            if self.oidc_issuer_url else None,
            authentication_kubeconfig=Path(self.authentication_kubeconfig) if self.authentication_kubeconfig
            else None,
            authorization_kubeconfig=Path(self.authorization_kubeconfig) if self.authorization_kubeconfig else None,
            login_max_failures=self.login_max_failures,
            login_lockout_seconds=self.login_lockout_seconds,
            login_source_max_failures=self.login_source_max_failures,
            serve_host_kinds=self.serve_host_kinds == "true" or (self.serve_host_kinds == "auto"
                                                                 and not self.authentication_kubeconfig),
            event_ttl_seconds=self.event_ttl_seconds,
            token_ttl_seconds=self.token_ttl_seconds,
            console_dir=Path(self.console_dir).resolve() if self.console_dir else None,
            serving=self.serving_limits(),
            workers=self.workers,
        )


def add_serving_flags(p: argparse.ArgumentParser) -> None:
    """The limits on connections and requests (kube-apiserver's flag names where it has the limit)."""
    d = _LIMITS
    p.add_argument("--max-requests-inflight", type=int, default=d.max_requests_inflight,
                   help="read-only requests in flight at most (429 beyond; system:masters exempt; 0: no limit)")
    p.add_argument("--max-mutating-requests-inflight", type=int, default=d.max_mutating_requests_inflight,
                   help="mutating requests in flight at most (429 beyond; system:masters exempt; 0: no limit)")
    p.add_argument("--max-long-running-requests", type=int, default=d.max_long_running_requests,
                   help="watches open at most, for all users (429 beyond; 0: no limit)")
    p.add_argument("--max-open-connections", type=int, default=d.max_open_connections,
                   help="client connections open at most, TLS handshakes included; beyond, connections wait in "
                        "the listen backlog (0: as many as the file descriptor limit allows)")
    p.add_argument("--request-timeout", type=duration, default=d.request_timeout,
                   help="deadline of every request but watches (504 Timeout past it); e.g. 1m0s")
    p.add_argument("--tls-handshake-timeout", type=duration, default=d.tls_handshake_timeout,
                   help="a TLS handshake (and a TLS shutdown) must end within this, else the connection is dropped")
    p.add_argument("--read-header-timeout", type=duration, default=d.read_header_timeout,
                   help="a request's headers must arrive within this from its first byte (from the connection's "
                        "start for its first request), else the connection is closed")
    p.add_argument("--read-body-timeout", type=duration, default=d.read_body_timeout,
                   help="a request's body must arrive within this from the end of its headers (408 past it)")
    p.add_argument("--idle-connection-timeout", type=duration, default=d.idle_connection_timeout,
                   help="a keep-alive connection with no request for this long is closed")


@dataclass(frozen=True)
class EtcdTimeouts:
    """Deadlines of etcd calls and the watch keep-alive (see kubellm.registry.storage.etcd.config)."""

    request: float = 5.0
    list: float = 30.0
    dial: float = 2.0
    healthcheck: float = 2.0
    watch_progress_interval: float = 5.0


@dataclass(frozen=True)
class OIDCOptions:
    issuer_url: str
    client_id: str
    username_claim: str
    username_prefix: str | None
    groups_claim: str
    groups_prefix: str
    ca_file: str | None


@dataclass(frozen=True)
class Config:
    state_dir: Path
    etcd_servers: tuple[str, ...]
    etcd_prefix: str
    etcd_cafile: str | None
    etcd_certfile: str | None
    etcd_keyfile: str | None
    etcd_compaction_interval: float
    default_image: str
    default_hf_endpoint: str
    log_format: str
    bind_address: str
    secure_port: int
    tls_cert_file: str | None
    tls_private_key_file: str | None
    client_ca_file: str | None
    event_loop: str
    requestheader_client_ca_file: str | None
    requestheader_allowed_names: tuple[str, ...]
    encryption_provider_config: Path | None
    audit_log_path: Path | None
    audit_policy_file: Path | None
    oidc: OIDCOptions | None
    authentication_kubeconfig: Path | None
    authorization_kubeconfig: Path | None
    login_max_failures: int
    login_lockout_seconds: int
    login_source_max_failures: int
    serve_host_kinds: bool
    event_ttl_seconds: int
    token_ttl_seconds: int
    serving: ServingLimits = field(default_factory=ServingLimits)
    etcd_timeouts: EtcdTimeouts = field(default_factory=EtcdTimeouts)
    embedded_etcd_max_failed_restarts: int = 5
    console_dir: Path | None = None
    """The built web console; None: console/dist of this checkout."""
    workers: int = 1
