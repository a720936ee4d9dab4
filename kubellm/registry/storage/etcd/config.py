"""Connection settings for the etcd backend."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EtcdConfig:
    endpoints: tuple[str, ...] = ("http://127.0.0.1:2379",)
    prefix: str = "/registry"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    request_timeout: float = 10.0
    pool_size: int = 64
    compaction_interval: float = 300.0
    """Seconds between compactions; 0 disables them."""
    max_object_bytes: int = 1536 * 1024
    """Largest encoded object accepted (etcd's default request limit is 1.5 MiB)."""
    extra: dict[str, str] = field(default_factory=dict)
