"""Connection settings for the etcd backend."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EtcdConfig:
    endpoints: tuple[str, ...] = ("http://127.0.0.1:2379",)
    """Client URLs of etcd's members: calls go to the one that last answered and fail over in order."""
    prefix: str = "/registry"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    request_timeout: float = 5.0
    """Deadline of every etcd call but lists (gets, writes, counts, watch set-up): past it, a 504 Timeout."""
    list_timeout: float = 30.0
    """Deadline of a range over a prefix (one page of a list, a watch's initial state)."""
    dial_timeout: float = 2.0
    """Connecting to one endpoint (TCP and TLS) must take no longer, else the next endpoint is tried."""
    healthcheck_timeout: float = 2.0
    """Deadline of the `/readyz` etcd check (kube-apiserver's `--etcd-healthcheck-timeout`)."""
    watch_progress_interval: float = 5.0
    """A watch stream silent this long asks etcd for a progress notification; one unanswered within
    `request_timeout` means the stream is dead, and it is re-established from its last revision."""
    pool_size: int = 64
    compaction_interval: float = 300.0
    """Seconds between compactions; 0 disables them."""
    max_object_bytes: int = 1536 * 1024
    """Largest encoded object accepted (etcd's default request limit is 1.5 MiB)."""
    extra: dict[str, str] = field(default_factory=dict)
