"""Where a client connects and how it authenticates: from a kubeconfig, the in-cluster service account, or
explicit arguments.

Kubeconfigs and the in-cluster service account are read by the official `kubernetes` package's loaders
(`kubernetes.config`), so contexts, client certificates (files or data), bearer tokens (also from token
files), exec credential plugins, auth providers, `insecure-skip-tls-verify`, `tls-server-name`,
`proxy-url` and CA bundles work as they do for `kubectl`. Credentials that expire (exec plugins, rotated
service-account tokens) are refreshed through the loader's own hook, at most once a second.

    Config.load()                          # $KUBECONFIG or ~/.kube/config, else in-cluster
    Config.from_kubeconfig("admin.kubeconfig", context="kind-member")
    Config.in_cluster()
    Config(host="https://10.0.0.1:6443", ca_data=pem, token="...")   # e.g. from a Cluster's credentials
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubellm.client.errors import ClientError

log = logging.getLogger("kubellm.client")

DEFAULT_USER_AGENT = "kubellm-client/0.1.0 (python)"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(ClientError):
    """No usable configuration: no kubeconfig, a missing context, not in a cluster."""


def log_warning(text: str) -> None:
    """The default handler of the server's `Warning` headers: logged, as client-go's default handler does."""
    log.warning("server warning: %s", text)


Authorization = Callable[[], "str | None"]
"""Returns the current `Authorization` header value (or None); may block (exec plugins): called off the
event loop, at most once a second."""


@dataclass
class Config:
    """A client's connection settings. Every field has a safe default: TLS verified, timeouts set."""

    host: str
    """The API server's base URL, e.g. https://127.0.0.1:6443 (a path prefix is kept)."""
    ca_file: str | None = None
    ca_data: bytes | None = None
    """PEM CA certificates to trust instead of the system roots."""
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    """A client certificate and its key (files or PEM data)."""
    token: str | None = None
    """A bearer token."""
    token_file: str | None = None
    """A file holding a bearer token, re-read every minute (projected service-account tokens rotate)."""
    authorization: Authorization | None = None
    """A function giving the Authorization header (set by the kubeconfig and in-cluster loaders)."""
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    """The name to verify the server's certificate for, when it differs from the host's."""
    proxy: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra headers on every request (for example `Impersonate-User`)."""
    user_agent: str = DEFAULT_USER_AGENT
    timeout: float = 30.0
    """Default deadline of a call (seconds), retries included; watches use `watch_read_timeout`."""
    connect_timeout: float = 10.0
    watch_read_timeout: float = 360.0
    """Longest silence tolerated on a watch stream before it is treated as dropped."""
    qps: float = 0.0
    burst: int = 0
    """Client-side rate limit (token bucket, as client-go's): `qps` requests per second with bursts of
    `burst`; 0 turns it off."""
    max_retries: int = 10
    """How often a request answered 429 (or a read answered 5xx) with Retry-After is tried again."""
    max_connections: int = 100
    """Size of the connection pool (HTTP keep-alive); watches hold one connection each."""
    warning_handler: Callable[[str], None] | None = log_warning

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    # --- loaders ------------------------------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str] | None = None, context: str | None = None,
                        **overrides: Any) -> Config:
        """From a kubeconfig file (default: $KUBECONFIG, which may list several files, else ~/.kube/config),
        with its current context or `context`."""
        from kubernetes import client as kclient
        from kubernetes import config as kconfig

        configuration = kclient.Configuration()
        try:
            kconfig.load_kube_config(config_file=str(path) if path is not None else None, context=context,
                                     client_configuration=configuration,
                                     persist_config=False)  # type: ignore[no-untyped-call]
        except (kconfig.ConfigException, OSError) as exc:
            raise ConfigError(f"cannot load the kubeconfig {path or '(default)'}: {exc}") from exc
        return cls.from_kubernetes(configuration, **overrides)

    @classmethod
    def in_cluster(cls, **overrides: Any) -> Config:
        """From the pod's service account (token, CA and KUBERNETES_SERVICE_HOST/PORT)."""
        from kubernetes import client as kclient
        from kubernetes import config as kconfig

        configuration = kclient.Configuration()
        try:
            kconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except kconfig.ConfigException as exc:
            raise ConfigError(f"not running in a cluster: {exc}") from exc
        return cls.from_kubernetes(configuration, **overrides)

    @classmethod
    def load(cls, kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None,
             **overrides: Any) -> Config:
        """As controller-runtime's GetConfig: the given kubeconfig, else $KUBECONFIG, else in-cluster, else
        ~/.kube/config."""
        if kubeconfig is not None or os.environ.get("KUBECONFIG"):
            return cls.from_kubeconfig(kubeconfig, context, **overrides)
        if os.environ.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT_DIR / "token").exists():
            return cls.in_cluster(**overrides)
        return cls.from_kubeconfig(Path.home() / ".kube" / "config", context, **overrides)

    @classmethod
    def from_kubernetes(cls, configuration: Any, **overrides: Any) -> Config:
        """From an official client's `kubernetes.client.Configuration` (as its loaders fill it)."""
        values: dict[str, Any] = {
            "host": str(configuration.host).rstrip("/"),
            "ca_file": configuration.ssl_ca_cert or None,
            "cert_file": configuration.cert_file or None,
            "key_file": configuration.key_file or None,
            "insecure_skip_tls_verify": not configuration.verify_ssl,
            "tls_server_name": getattr(configuration, "tls_server_name", None) or None,
            "proxy": configuration.proxy or None,
        }
        if configuration.api_key or configuration.refresh_api_key_hook is not None:
            values["authorization"] = _official_authorization(configuration)
        elif configuration.username or configuration.password:
            basic = configuration.get_basic_auth_token()
            values["authorization"] = lambda: basic
        values.update(overrides)
        return cls(**values)

    # --- what the transport needs ---------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (None for plain http): server verified against the CA (or system roots) unless
        `insecure_skip_tls_verify`, client certificate loaded when given."""
        if not self.host.startswith("https://"):
            return None
        if self.insecure_skip_tls_verify:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(cafile=self.ca_file,
                                             cadata=self.ca_data.decode() if self.ca_data else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file or self.cert_data:
            _load_client_certificate(ctx, self)
        return ctx

    def credentials(self) -> Credentials:
        return Credentials(self)


def _load_client_certificate(ctx: ssl.SSLContext, cfg: Config) -> None:
    if cfg.cert_file and not cfg.cert_data:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        return
    # ssl loads certificates from files only: write the PEM data to private files that live only for the call
    with tempfile.TemporaryDirectory(prefix="kubellm-client-") as tmp:
        os.chmod(tmp, 0o700)
        cert = Path(tmp) / "tls.crt"
        key = Path(tmp) / "tls.key"
        cert.write_bytes(cfg.cert_data or Path(cfg.cert_file or "").read_bytes())
        if cfg.key_data is not None:
            key.write_bytes(cfg.key_data)
            key.chmod(0o600)
            ctx.load_cert_chain(str(cert), str(key))
        else:
            ctx.load_cert_chain(str(cert), cfg.key_file)


def _official_authorization(configuration: Any) -> Authorization:
    lock = threading.Lock()

    def authorization() -> str | None:
        with lock:  # the loaders' refresh hooks are not thread-safe
            setting = configuration.auth_settings().get("BearerToken")
            value = setting.get("value") if setting else None
            return str(value) if value else None

    return authorization


class Credentials:
    """The Authorization header of a Config, refreshed at most once a second (token files every minute)."""

    REFRESH = 1.0
    TOKEN_FILE_REFRESH = 60.0

    def __init__(self, config: Config) -> None:
        self.config = config
        self._value: str | None = f"Bearer {config.token}" if config.token else None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    @property
    def dynamic(self) -> bool:
        """Whether the header can change (needs `refresh`)."""
        return self.config.authorization is not None or self.config.token_file is not None

    def due(self) -> bool:
        interval = self.REFRESH if self.config.authorization is not None else self.TOKEN_FILE_REFRESH
        return self.dynamic and time.monotonic() - self._checked >= interval

    def refresh(self) -> str | None:
        """Blocking: asks the loader's hook or reads the token file."""
        with self._lock:
            if self.config.authorization is not None:
                self._value = self.config.authorization()
            elif self.config.token_file is not None:
                with contextlib.suppress(OSError):
                    token = Path(self.config.token_file).read_text().strip()
                    self._value = f"Bearer {token}" if token else None
            self._checked = time.monotonic()
            return self._value

    @property
    def value(self) -> str | None:
        return self._value
