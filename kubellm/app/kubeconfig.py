"""Writes the kubeconfigs of a standalone server (mode 0600): the admin's and the controller manager's, and the
file with the server's URL."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from kubellm.app.options import Config
from kubellm.server.certs import PKI, ensure_pki


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path, name: str = "kubellm",
                     user: str = "admin") -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}],
        "users": [{"name": f"{name}-{user}", "user": {"client-certificate-data": _b64(cert),
                                                     "client-key-data": _b64(key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-{user}", "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)


def serving_pki(cfg: Config) -> PKI:
    """The generated certificates (created on first start, reused after)."""
    return ensure_pki(cfg.state_dir / "pki", ["127.0.0.1", "localhost", "::1", cfg.bind_address])


def serving_url(cfg: Config, port: int) -> str:
    host = "127.0.0.1" if cfg.bind_address in ("0.0.0.0", "127.0.0.1") else cfg.bind_address
    return f"https://{host}:{port}"


def write_access_files(cfg: Config, pki: PKI, url: str) -> Path:
    """The admin's and the controller manager's kubeconfigs, then `<state>/apiserver.url` (written last: tools
    wait for it, then for /readyz). Returns the admin kubeconfig's path."""
    admin = cfg.state_dir / "admin.kubeconfig"
    write_kubeconfig(admin, url, pki.serving_ca, pki.admin.cert, pki.admin.key)
    write_kubeconfig(cfg.state_dir / "controller-manager.kubeconfig", url, pki.serving_ca,
                     pki.controller_manager.cert, pki.controller_manager.key, user="controller-manager")
    (cfg.state_dir / "apiserver.url").write_text(url + "\n")
    return admin
