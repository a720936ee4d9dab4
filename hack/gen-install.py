#!/usr/bin/env python3
"""Make the certificates, keys and Secrets of a KubeLLM install, and the kustomize overlay that installs it.

    .venv/bin/python hack/gen-install.py --out ~/kubellm-install --apiserver-cidr 10.0.0.0/24 \\
        --image registry.example.com/kubellm:0.1.0
    kubectl apply --server-side -k ~/kubellm-install

DIR (--out) holds, after a run:

- `kustomization.yaml`: the install overlay. It builds on `deploy/overlays/prod` (`--overlay`), adds
  `secrets.yaml`, sets the APIServices' `caBundle` to the serving CA, lets the host's control plane
  (`--apiserver-cidr`, repeatable) reach KubeLLM's port, and sets the image (`--image`).
- `secrets.yaml` (0600): `etcd-server-tls` (etcd's serving and peer certificate, for every member's name),
  `kubellm-etcd-client` (the client certificate KubeLLM presents to etcd), `kubellm-apiserver-tls` (KubeLLM's
  serving certificate, `ca.crt` the serving CA), `kubellm-client-ca` (the CA of client certificates KubeLLM
  accepts) and `kubellm-encryption-config` (the EncryptionConfiguration every replica shares).
- `encryption-config.yaml` (0600): that EncryptionConfiguration. Kept across runs: a new key would make
  everything encrypted before unreadable. `--rotate-encryption-key` puts a new key first (new writes use
  it, the old ones still decrypt).
- `pki/` (0700, keys 0600): the three CAs (etcd, serving, client) with their keys, every certificate above,
  `etcd-admin` (a client certificate for etcdctl: backups) and `admin` (user kubellm-admin in
  system:masters, for `admin.kubeconfig`).
- `admin.kubeconfig` (0600): break-glass access to KubeLLM itself, past the host, through
  `kubectl -n kubellm-system port-forward svc/kubellm-apiserver 6443:443`.

Running it again on the same DIR keeps every CA, key and certificate that exists (the install overlay and
`secrets.yaml` are written again). `--renew` issues the certificates again from the same CAs (a year's
validity each; the CAs have ten). Keep DIR somewhere safe (it holds every private key of the install) or
delete the CA keys when you do not intend to issue more.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubellm.app.encryption import default_config  # noqa: E402
from kubellm.server.certs import Pair, ensure_ca, issue_client_certificate, issue_serving_certificate  # noqa: E402

NAMESPACE = "kubellm-system"
SERVICE = "kubellm-apiserver"
DEFAULT_OVERLAY = ROOT / "deploy" / "overlays" / "prod"
ETCD_MEMBERS = 3
LABELS = {"app.kubernetes.io/part-of": "kubellm"}


def service_names(service: str, namespace: str) -> list[str]:
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def etcd_names(namespace: str, replicas: int) -> list[str]:
    """Every name etcd is dialled by: its members (peers and `--advertise-client-urls`), the headless `etcd`
    Service, the `etcd-client` Service KubeLLM uses, and loopback (etcdctl through a port-forward)."""
    names = ["localhost", "127.0.0.1", *service_names("etcd", namespace), *service_names("etcd-client", namespace)]
    for i in range(replicas):
        member = f"etcd-{i}.etcd"
        names += [member, *service_names(member, namespace)[1:]]
    return names


def apiserver_names(namespace: str) -> list[str]:
    """The aggregator verifies `<service>.<namespace>.svc`; loopback is for a port-forward."""
    return ["localhost", "127.0.0.1", *service_names(SERVICE, namespace)]


@dataclass(frozen=True)
class PKI:
    directory: Path

    def pair(self, name: str) -> Pair:
        return Pair(self.directory / f"{name}.crt", self.directory / f"{name}.key")

    @property
    def etcd_ca(self) -> Pair:
        return self.pair("etcd-ca")

    @property
    def etcd_server(self) -> Pair:
        return self.pair("etcd-server")

    @property
    def etcd_client(self) -> Pair:
        return self.pair("etcd-client")

    @property
    def etcd_admin(self) -> Pair:
        return self.pair("etcd-admin")

    @property
    def serving_ca(self) -> Pair:
        return self.pair("serving-ca")

    @property
    def serving(self) -> Pair:
        return self.pair("apiserver")

    @property
    def client_ca(self) -> Pair:
        return self.pair("client-ca")

    @property
    def admin(self) -> Pair:
        return self.pair("admin")

    def leaves(self) -> list[Pair]:
        return [self.etcd_server, self.etcd_client, self.etcd_admin, self.serving, self.admin]


def make_etcd_pki(pki: PKI, namespace: str, replicas: int) -> None:
    ensure_ca("kubellm-etcd-ca", pki.etcd_ca)
    # client-auth too: etcd's gRPC gateway dials etcd with it
    issue_serving_certificate(pki.etcd_ca, pki.etcd_server, "etcd", etcd_names(namespace, replicas), client_too=True)
    issue_client_certificate(pki.etcd_ca, pki.etcd_client, "kubellm-apiserver")


def make_pki(pki: PKI, namespace: str, etcd_replicas: int, *, renew: bool = False) -> None:
    pki.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if renew:
        for pair in pki.leaves():
            pair.cert.unlink(missing_ok=True)
            pair.key.unlink(missing_ok=True)
    make_etcd_pki(pki, namespace, etcd_replicas)
    issue_client_certificate(pki.etcd_ca, pki.etcd_admin, "etcd-admin")
    ensure_ca("kubellm-serving-ca", pki.serving_ca)
    issue_serving_certificate(pki.serving_ca, pki.serving, SERVICE, apiserver_names(namespace))
    ensure_ca("kubellm-client-ca", pki.client_ca)
    issue_client_certificate(pki.client_ca, pki.admin, "kubellm-admin", ("system:masters",))


def encryption_config(path: Path, *, rotate: bool = False) -> dict[str, Any]:
    """The install's EncryptionConfiguration: kept when it exists (with a new first key when `rotate`)."""
    if not path.exists():
        config = default_config()
    else:
        config = yaml.safe_load(path.read_text())
        if not rotate:
            return dict(config)
        fresh = default_config()["resources"][0]["providers"][0]["aesgcm"]["keys"][0]["secret"]
        for entry in config["resources"]:
            aesgcm = next(p["aesgcm"] for p in entry["providers"] if "aesgcm" in p)
            numbers = [int(m.group(1)) for k in aesgcm["keys"] if (m := re.fullmatch(r"key(\d+)", k["name"]))]
            aesgcm["keys"].insert(0, {"name": f"key{max(numbers, default=0) + 1}", "secret": fresh})
    write(path, yaml.safe_dump(config, sort_keys=False), 0o600)
    return dict(config)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def secret(name: str, namespace: str, data: dict[str, bytes], kind: str = "Opaque") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": kind,
            "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
            "data": {key: b64(value) for key, value in data.items()}}


def tls_secret(name: str, namespace: str, pair: Pair, ca: Path) -> dict[str, Any]:
    return secret(name, namespace, {"tls.crt": pair.cert.read_bytes(), "tls.key": pair.key.read_bytes(),
                                    "ca.crt": ca.read_bytes()}, "kubernetes.io/tls")


def etcd_secrets(pki: PKI, namespace: str) -> list[dict[str, Any]]:
    return [tls_secret("etcd-server-tls", namespace, pki.etcd_server, pki.etcd_ca.cert),
            tls_secret("kubellm-etcd-client", namespace, pki.etcd_client, pki.etcd_ca.cert)]


def secrets(pki: PKI, namespace: str, encryption: dict[str, Any]) -> list[dict[str, Any]]:
    return [*etcd_secrets(pki, namespace),
            tls_secret("kubellm-apiserver-tls", namespace, pki.serving, pki.serving_ca.cert),
            secret("kubellm-client-ca", namespace, {"ca.crt": pki.client_ca.cert.read_bytes()}),
            secret("kubellm-encryption-config", namespace,
                   {"encryption-config.yaml": yaml.safe_dump(encryption, sort_keys=False).encode()})]


def image_entry(image: str) -> dict[str, str]:
    """kustomize's `images:` entry replacing the manifests' `kubellm` image with `image`."""
    entry = {"name": "kubellm"}
    name, at, digest = image.partition("@")
    if at:
        return {**entry, "newName": name, "digest": digest}
    repo, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        return {**entry, "newName": repo, "newTag": tag}
    return {**entry, "newName": name}


def install_overlay(out: Path, overlay: Path, ca_bundle: bytes, cidrs: list[str], image: str) -> dict[str, Any]:
    patches: list[dict[str, Any]] = [{
        "target": {"group": "apiregistration.k8s.io", "kind": "APIService"},
        "patch": yaml.safe_dump([{"op": "add", "path": "/spec/caBundle", "value": b64(ca_bundle)}]),
    }]
    if cidrs:
        patches.append({
            "target": {"group": "networking.k8s.io", "kind": "NetworkPolicy", "name": SERVICE},
            "patch": yaml.safe_dump([{"op": "add", "path": "/spec/ingress/0/from",
                                      "value": [{"ipBlock": {"cidr": c}} for c in cidrs]}]),
        })
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(overlay.resolve(), out.resolve()), "secrets.yaml"],
        "patches": patches,
    }
    if image:
        kustomization["images"] = [image_entry(image)]
    return kustomization


def admin_kubeconfig(pki: PKI) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "kubellm-admin",
            "clusters": [{"name": "kubellm", "cluster": {
                "server": "https://127.0.0.1:6443",
                "certificate-authority-data": b64(pki.serving_ca.cert.read_bytes())}}],
            "users": [{"name": "kubellm-admin", "user": {
                "client-certificate-data": b64(pki.admin.cert.read_bytes()),
                "client-key-data": b64(pki.admin.key.read_bytes())}}],
            "contexts": [{"name": "kubellm-admin", "context": {"cluster": "kubellm", "user": "kubellm-admin"}}]}


def write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the patches) as literal blocks, for a person reading the overlay."""


_Dumper.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|" if "\n" in v
                                                               else None))


HEADER = """\
# The install overlay of one KubeLLM install, written by hack/gen-install.py (run it again rather than edit:
# it rewrites this file). `kubectl apply --server-side -k {out}` installs or upgrades; docs/install.md.
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="directory of the install (created 0700)")
    p.add_argument("--etcd-replicas", type=int, default=ETCD_MEMBERS, help="etcd members the certificate names")
    p.add_argument("--overlay", type=Path, default=DEFAULT_OVERLAY, help="the overlay to build on")
    p.add_argument("--apiserver-cidr", action="append", default=[],
                   help="addresses the host's API server connects to KubeLLM from (repeatable)")
    p.add_argument("--image", default="", help="KubeLLM's image (REPOSITORY[:TAG] or REPOSITORY@DIGEST)")
    p.add_argument("--renew", action="store_true", help="issue every certificate again from the same CAs")
    p.add_argument("--rotate-encryption-key", action="store_true",
                   help="add a new encryption key, used for new writes (the old keys still decrypt)")
    a = p.parse_args(argv)
    if not (a.overlay / "kustomization.yaml").exists():
        p.error(f"--overlay {a.overlay}: no kustomization.yaml there")
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out, 0o700)
    pki = PKI(out / "pki")
    make_pki(pki, NAMESPACE, a.etcd_replicas, renew=a.renew)
    encryption = encryption_config(out / "encryption-config.yaml", rotate=a.rotate_encryption_key)
    write(out / "secrets.yaml", yaml.safe_dump_all(secrets(pki, NAMESPACE, encryption), sort_keys=False), 0o600)
    write(out / "admin.kubeconfig", yaml.safe_dump(admin_kubeconfig(pki), sort_keys=False), 0o600)
    overlay = install_overlay(out, a.overlay, pki.serving_ca.cert.read_bytes(), a.apiserver_cidr, a.image)
    text = HEADER.format(out=out) + yaml.dump(overlay, Dumper=_Dumper, sort_keys=False)
    write(out / "kustomization.yaml", text, 0o644)
    print(f"wrote the install overlay {out}/kustomization.yaml (kubectl apply --server-side -k {out})",
          file=sys.stderr)
    if not a.apiserver_cidr:
        print("no --apiserver-cidr: the kubellm-apiserver NetworkPolicy is left as the overlay has it (overlays/prod: "
              "a placeholder, so the host cannot reach KubeLLM)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
