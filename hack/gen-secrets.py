#!/usr/bin/env python3
"""Print the Secrets of KubeLLM's etcd, as YAML for `kubectl apply -f -`.

    .venv/bin/python hack/gen-secrets.py [--namespace kubellm-system] [--etcd-replicas 3] [--out DIR] > etcd.yaml

- `etcd-server-tls`: etcd's serving and peer certificate (also valid as a client certificate, which etcd's
  gRPC gateway needs), for every member's DNS names and the `etcd` and `etcd-client` Services, with the
  etcd CA as `ca.crt`;
- `kubellm-etcd-client`: the client certificate KubeLLM presents to etcd (etcd requires one).

An install needs more (KubeLLM's serving certificate, its client CA, the shared EncryptionConfiguration) and
the APIServices' caBundle: hack/gen-install.py makes all of them, these two included, and the overlay that
applies them (docs/install.md). This script is the etcd part alone, with the same certificates.

The etcd CA's private key is not printed: keep the generated directory (`--out`, a fresh temporary one by
default, mode 0700) somewhere safe to issue more certificates later, or delete it.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import yaml

_spec = importlib.util.spec_from_file_location("gen_install", Path(__file__).with_name("gen-install.py"))
assert _spec is not None and _spec.loader is not None
gen_install = sys.modules["gen_install"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_install)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--namespace", default=gen_install.NAMESPACE)
    p.add_argument("--etcd-replicas", type=int, default=gen_install.ETCD_MEMBERS)
    p.add_argument("--out", type=Path, default=None, help="directory for the CA and certificates")
    a = p.parse_args(argv)
    out = a.out or Path(tempfile.mkdtemp(prefix="kubellm-secrets-"))
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki = gen_install.PKI(out)
    gen_install.make_etcd_pki(pki, a.namespace, a.etcd_replicas)
    yaml.safe_dump_all(gen_install.etcd_secrets(pki, a.namespace), sys.stdout, sort_keys=False)
    print(f"certificates and the etcd CA key are in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
