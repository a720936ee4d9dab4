"""Certificates for the embedded etcd: a CA, etcd's serving certificate and KubeLLM's client certificate,
generated once under the state directory (keys mode 0600, the directory 0700)."""

from __future__ import annotations

import os
from pathlib import Path

from kubellm.registry.storage.etcd.embedded import EtcdTLS
from kubellm.server.certs import Pair, ensure_ca, issue_client_certificate, issue_serving_certificate


def ensure_etcd_pki(directory: Path) -> EtcdTLS:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca = Pair(directory / "ca.crt", directory / "ca.key")
    server = Pair(directory / "server.crt", directory / "server.key")
    client = Pair(directory / "client.crt", directory / "client.key")
    ensure_ca("kubellm-etcd-ca", ca)
    issue_serving_certificate(ca, server, "kubellm-etcd", ["127.0.0.1", "localhost"], client_too=True)
    issue_client_certificate(ca, client, "kubellm-apiserver")
    return EtcdTLS(ca.cert, server.cert, server.key, client.cert, client.key)
