"""A real Kubernetes control plane on loopback for end-to-end tests, and KubeLLM mounted into it as an
aggregated API.

The control plane itself is `kubellm.devcluster` (shared with the benchmarks and the demo); this module is
the test layer on top: `ControlPlane` skips (or fails under CI=true) when a binary is missing, and
`aggregated_kubellm` starts a KubeLLM API server whose serving certificate is valid for
`<service>.<namespace>.svc`, registers it in the host (namespace, an ExternalName Service pointing at
localhost on KubeLLM's port, one APIService per group with the caBundle) and waits until the
APIServices are Available. Two ways to trust the aggregator: explicit `--requestheader-*` flags naming
the host's front-proxy CA and proxy client name, or delegation (`--authentication-kubeconfig`,
`--authorization-kubeconfig`, with the host RBAC a real deployment needs; the front-proxy settings are
then read from the host's `kube-system/extension-apiserver-authentication`).

A missing binary is a skip with the reason, or a failure under CI=true (`require_binaries`).
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from conftest import APIServer, running_apiserver

from kubellm.devcluster import binaries as _binaries
from kubellm.devcluster import controlplane as _controlplane
from kubellm.devcluster.binaries import BinariesMissing, assets_dir, find_binary
from kubellm.devcluster.controlplane import (
    PROXY_CLIENT_NAME,
    ControllerManagerOptions,
    KubectlFailed,
    Response,
    write_kubeconfig,
)
from kubellm.devcluster.process import Process, StartupError, wait_until
from kubellm.server.certs import ensure_pki

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ASSETS = _binaries.DEFAULT_ASSETS
GROUPS = ("iam.kubellm.io", "cluster.kubellm.io", "model.kubellm.io")
VERSION = "v1alpha1"

__all__ = ["PROXY_CLIENT_NAME", "BinariesMissing", "ControllerManagerOptions", "KubectlFailed", "Process",
           "Response", "StartupError", "assets_dir", "find_binary", "wait_until", "write_kubeconfig"]


def skip_unless_ci(exc: BinariesMissing) -> None:
    """A missing binary skips the test with the reason, or fails it under CI=true."""
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true and {exc}", pytrace=False)
    pytest.skip(str(exc))


def require_binaries(*names: str) -> dict[str, str]:
    """The binaries' paths; a missing one skips the test with the reason, or fails it under CI=true."""
    try:
        return _binaries.find_binaries(*names)
    except BinariesMissing as exc:
        skip_unless_ci(exc)
        raise


class ControlPlane(_controlplane.ControlPlane):
    """`kubellm.devcluster.ControlPlane`, skipping the test when a binary is missing."""

    def __init__(self, directory: Path, name: str = "host", **kwargs: Any) -> None:
        try:
            super().__init__(directory, name, **kwargs)
        except BinariesMissing as exc:
            skip_unless_ci(exc)
            raise


@contextlib.contextmanager
def control_plane(directory: Path, name: str = "host", **kwargs: Any) -> Iterator[ControlPlane]:
    with ControlPlane(directory, name, **kwargs) as cp:
        yield cp


# ------------------------------------------------------------------------------------- KubeLLM aggregated

@dataclass(frozen=True)
class Registration:
    namespace: str = "kubellm-system"
    service: str = "kubellm-apiserver"
    delegate_user: str = "kubellm-apiserver"  # the host identity KubeLLM uses for TokenReview/SAR

    @property
    def dns_name(self) -> str:
        return f"{self.service}.{self.namespace}.svc"

    def apiservice_names(self) -> list[str]:
        return [f"{VERSION}.{g}" for g in GROUPS]


@dataclass(frozen=True)
class Aggregated:
    host: ControlPlane
    kubellm: APIServer
    registration: Registration
    delegated: bool
    start_seconds: float


def register(host: ControlPlane, port: int, ca_bundle: bytes, reg: Registration) -> None:
    """The namespace, an ExternalName Service on localhost:port and one APIService per group."""
    bundle = base64.b64encode(ca_bundle).decode()
    host.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": reg.namespace}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": reg.service, "namespace": reg.namespace},
         "spec": {"type": "ExternalName", "externalName": "localhost",
                  "ports": [{"name": "https", "port": port, "protocol": "TCP", "targetPort": port}]}},
        *({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": f"{VERSION}.{g}"},
           "spec": {"group": g, "version": VERSION, "caBundle": bundle, "groupPriorityMinimum": 1000,
                    "versionPriority": 15,
                    "service": {"namespace": reg.namespace, "name": reg.service, "port": port}}} for g in GROUPS))


def unregister(host: ControlPlane, reg: Registration) -> None:
    host.kubectl("delete", "apiservice", *reg.apiservice_names(), "--ignore-not-found", check=False)
    host.kubectl("delete", "service", reg.service, "-n", reg.namespace, "--ignore-not-found", check=False)


def _available(host: ControlPlane, reg: Registration) -> bool | None:
    for name in reg.apiservice_names():
        r = host.request("GET", f"/apis/apiregistration.k8s.io/v1/apiservices/{name}", timeout=5)
        conds = {c["type"]: c for c in (r.body or {}).get("status", {}).get("conditions", [])}
        if conds.get("Available", {}).get("status") != "True":
            raise AssertionError(f"{name} not Available: {conds.get('Available')}")
    for g in GROUPS:  # and the host really proxies each group-version
        r = host.request("GET", f"/apis/{g}/{VERSION}", timeout=5)
        if r.status != 200:
            raise AssertionError(f"GET /apis/{g}/{VERSION} through the host: {r.status} {r.body}")
    return True


def wait_available(host: ControlPlane, reg: Registration, timeout: float = 60,
                   processes: tuple[Process, ...] = ()) -> None:
    wait_until(lambda: _available(host, reg), timeout, "KubeLLM APIServices Available in the host",
               processes=tuple(host.processes) + processes, interval=0.2)


def grant_delegation(host: ControlPlane, reg: Registration) -> Path:
    """The host identity of an aggregated server and the RBAC a real deployment gives it: TokenReview and
    SubjectAccessReview (system:auth-delegator) and reading the front-proxy settings
    (extension-apiserver-authentication-reader in kube-system). Returns its kubeconfig."""
    _, kubeconfig = host.user(reg.delegate_user)
    subject = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": reg.delegate_user}]
    host.apply(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"{reg.delegate_user}:system:auth-delegator"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
         "subjects": subject},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": f"{reg.delegate_user}:extension-apiserver-authentication-reader",
                      "namespace": "kube-system"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "extension-apiserver-authentication-reader"},
         "subjects": subject},
        # namespace lifecycle: objects go only into namespaces the host has (deploy/base/rbac.yaml's role)
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "kubellm-apiserver:namespace-reader"},
         "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"{reg.delegate_user}:namespace-reader"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "kubellm-apiserver:namespace-reader"},
         "subjects": subject})
    return kubeconfig


class _KubeLLMProcess(Process):
    """The KubeLLM process of a `running_apiserver`, for liveness checks and log tails while waiting."""

    def __init__(self, server: APIServer) -> None:
        super().__init__("kubellm-apiserver", [], server.log)
        self.popen = server.process


@contextlib.contextmanager
def aggregated_kubellm(host: ControlPlane, state: Path, *, delegated: bool, reg: Registration | None = None,
                       extra_args: tuple[str, ...] = (), timeout: float = 60) -> Iterator[Aggregated]:
    """KubeLLM serving for `<service>.<namespace>.svc`, registered in `host` as an aggregated API and
    Available. `delegated`: --authentication/authorization-kubeconfig to the host (front-proxy settings from
    the host's ConfigMap) instead of explicit --requestheader-* flags. Unregistered and stopped after."""
    reg = reg or Registration()
    began = time.monotonic()
    # KubeLLM's own PKI directory, seeded with a serving CA and a certificate for the Service's name (it
    # keeps existing files); the admin kubeconfig it writes names that CA
    pki = ensure_pki(state / "pki", ["127.0.0.1", "localhost", reg.dns_name])
    args = ["--tls-cert-file", str(pki.serving.cert), "--tls-private-key-file", str(pki.serving.key)]
    if delegated:
        kubeconfig = grant_delegation(host, reg)
        args += ["--authentication-kubeconfig", str(kubeconfig), "--authorization-kubeconfig", str(kubeconfig)]
    else:
        args += ["--requestheader-client-ca-file", str(host.front_proxy_ca.cert),
                 "--requestheader-allowed-names", PROXY_CLIENT_NAME]
    with running_apiserver(state, *args, *extra_args) as server:
        port = urlparse(server.url).port
        assert port is not None
        try:
            register(host, port, pki.serving_ca.read_bytes(), reg)
            wait_available(host, reg, timeout, processes=(_KubeLLMProcess(server),))
            yield Aggregated(host, server, reg, delegated, time.monotonic() - began)
        finally:
            unregister(host, reg)
