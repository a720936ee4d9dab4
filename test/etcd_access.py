"""How tests reach the session's etcd (started in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubellm.registry.storage.etcd import EtcdConfig
from kubellm.registry.storage.etcd.embedded import EtcdTLS


@dataclass(frozen=True)
class EtcdAccess:
    """The session's etcd: TLS with client-certificate authentication, as the server runs it."""

    endpoint: str
    tls: EtcdTLS

    def config(self, prefix: str, **kwargs: Any) -> EtcdConfig:
        return EtcdConfig(endpoints=(self.endpoint,), prefix=prefix, ca_file=str(self.tls.ca_file),
                          cert_file=str(self.tls.client_cert), key_file=str(self.tls.client_key), **kwargs)
