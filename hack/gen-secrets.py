#!/usr/bin/env python3
"""Print the Secrets a KubeLLM install needs for its etcd, as YAML for `kubectl apply -f -`.

    .venv/bin/python hack/gen-secrets.py [--namespace kubellm-system] [--etcd-replicas 1] > etcd-secrets.yaml

- `etcd-server-tls`: etcd's serving and peer certificate (also valid as a client certificate, which etcd's
  gRPC gateway needs), for every member's DNS names, with the etcd CA as `ca.crt`;
- `kubellm-etcd-client`: the client certificate KubeLLM presents to etcd (etcd requires one).

The etcd CA's private key is not printed: keep the generated directory (`--out`, a fresh temporary one by
default, mode 0700) somewhere safe to issue more certificates later, or delete it.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubellm.server.certs import Pair, ensure_ca, issue_client_certificate, issue_serving_certificate  # noqa: E402


def etcd_names(namespace: str, replicas: int) -> list[str]:
    names = ["localhost", "127.0.0.1", f"etcd.{namespace}.svc", f"etcd.{namespace}.svc.cluster.local"]
    for i in range(replicas):
        member = f"etcd-{i}.etcd"
        names += [member, f"{member}.{namespace}", f"{member}.{namespace}.svc",
                  f"{member}.{namespace}.svc.cluster.local"]
    return names


def secret(name: str, namespace: str, pair: Pair, ca: Path) -> dict[str, object]:
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "kubellm"}},
            "data": {"tls.crt": b64(pair.cert), "tls.key": b64(pair.key), "ca.crt": b64(ca)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--namespace", default="kubellm-system")
    p.add_argument("--etcd-replicas", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="directory for the CA and certificates")
    a = p.parse_args(argv)
    out = a.out or Path(tempfile.mkdtemp(prefix="kubellm-secrets-"))
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = Pair(out / "etcd-ca.crt", out / "etcd-ca.key")
    server = Pair(out / "etcd-server.crt", out / "etcd-server.key")
    client = Pair(out / "etcd-client.crt", out / "etcd-client.key")
    ensure_ca("kubellm-etcd-ca", ca)
    issue_serving_certificate(ca, server, "etcd", etcd_names(a.namespace, a.etcd_replicas), client_too=True)
    issue_client_certificate(ca, client, "kubellm-apiserver")
    docs = [secret("etcd-server-tls", a.namespace, server, ca.cert),
            secret("kubellm-etcd-client", a.namespace, client, ca.cert)]
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
    print(f"certificates and the etcd CA key are in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
