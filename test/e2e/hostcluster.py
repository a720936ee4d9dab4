"""A real Kubernetes control plane on loopback for end-to-end tests, and KubeLLM mounted into it as an
aggregated API.

`ControlPlane` starts its own etcd (the system's, with the flags and TLS of KubeLLM's `EmbeddedEtcd`) and the real
kube-apiserver (with the aggregator; optionally kube-controller-manager and kube-scheduler, for member
clusters) from `$KUBEBUILDER_ASSETS` or the project's cache `.cache/kubebuilder-assets` (filled by
hack/install-deps.sh). Certificates are generated with `kubellm.server.certs`; RBAC authorization; the
front-proxy (request-header) flags with a proxy client certificate; `--enable-aggregator-routing=false`.
Every process runs in its own process group, is killed with it on `stop()`, and receives SIGKILL if
the test process dies first (PR_SET_PDEATHSIG), so no kube-apiserver outlives pytest.

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

import atexit
import base64
import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import pytest
import yaml
from conftest import APIServer, running_apiserver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kubellm.app.etcd_pki import ensure_etcd_pki
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd, free_port
from kubellm.server.certs import Pair, ensure_ca, ensure_pki, issue_client_certificate, issue_serving_certificate

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ASSETS = ROOT / ".cache" / "kubebuilder-assets"
GROUPS = ("iam.kubellm.io", "cluster.kubellm.io", "model.kubellm.io")
VERSION = "v1alpha1"
PROXY_CLIENT_NAME = "front-proxy-client"
T = TypeVar("T")


class StartupError(RuntimeError):
    """A component did not start (exited, or not ready in time); the message carries its log tail."""


class BinariesMissing(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------- binaries

def assets_dir() -> Path:
    env = os.environ.get("KUBEBUILDER_ASSETS")
    return Path(env) if env else DEFAULT_ASSETS


def find_binary(name: str) -> str:
    """`name` from $KUBEBUILDER_ASSETS (or the project cache); etcd and kubectl also from PATH."""
    candidate = assets_dir() / name
    if os.access(candidate, os.X_OK):
        return str(candidate)
    if name in ("etcd", "kubectl"):
        found = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
        if found:
            return found
    raise BinariesMissing(f"{name} not found in {assets_dir()} (KUBEBUILDER_ASSETS): run hack/install-deps.sh "
                          "with the Kubernetes binaries at ../shared/k8s or $KUBELLM_K8S_BINARIES")


def require_binaries(*names: str) -> dict[str, str]:
    """The binaries' paths; a missing one skips the test with the reason, or fails it under CI=true."""
    try:
        return {name: find_binary(name) for name in names}
    except BinariesMissing as exc:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"CI=true and {exc}", pytrace=False)
        pytest.skip(str(exc))


# --------------------------------------------------------------------------------------------- processes

_LIVE: set[Process] = set()


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the test process dies, so nothing outlives pytest."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Process:
    """A child in its own process group, logging to a file; stopped group-wide. The parent-death signal
    fires when the thread that started the child ends: start from the main thread (or one that lives as
    long as the child), not from a short-lived worker thread."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True, preexec_fn=_die_with_parent)
        _LIVE.add(self)

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise StartupError(f"{self.name} exited with {self.popen.returncode}; end of {self.log}:\n{self.tail()}")

    def stop(self, timeout: float = 15) -> None:
        proc, self.popen = self.popen, None
        _LIVE.discard(self)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with contextlib.suppress(ProcessLookupError):  # anything left in the group
            os.killpg(proc.pid, signal.SIGKILL)


@atexit.register
def _kill_leftovers() -> None:
    for p in list(_LIVE):
        p.stop(timeout=5)


def wait_until(condition: Callable[[], T | None], timeout: float, what: str, *, processes: tuple[Process, ...] = (),
               interval: float = 0.1) -> T:
    """Poll `condition` until it returns something other than None (exceptions count as not yet), checking
    that `processes` are alive; a timeout raises with the last error and the processes' log tails."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        for p in processes:
            p.check()
        try:
            value = condition()
            if value is not None:
                return value
        except Exception as exc:
            last = exc
        if time.monotonic() > deadline:
            logs = "".join(f"\n--- end of {p.log}:\n{p.tail()}" for p in processes)
            raise StartupError(f"{what}: not done in {timeout:.0f}s (last error: {last!r}){logs}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------ control plane

def write_kubeconfig(path: Path, server: str, ca: Path, client: Pair, name: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": name, "user": {"client-certificate": str(client.cert), "client-key": str(client.key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}))
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: dict[str, str]


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager, kube-scheduler) on free loopback ports."""

    def __init__(self, directory: Path, name: str = "host", *, controller_manager: bool = False,
                 scheduler: bool = False, extra_apiserver_args: tuple[str, ...] = ()) -> None:
        self.dir = Path(directory)
        self.name = name
        self.with_controller_manager = controller_manager
        self.with_scheduler = scheduler
        self.extra_apiserver_args = extra_apiserver_args
        self.binaries = require_binaries("etcd", "kube-apiserver", "kubectl",
                                         *(["kube-controller-manager"] if controller_manager else []),
                                         *(["kube-scheduler"] if scheduler else []))
        pki = self.dir / "pki"
        self.ca = Pair(pki / "ca.crt", pki / "ca.key")  # signs the serving and the client certificates
        self.front_proxy_ca = Pair(pki / "front-proxy-ca.crt", pki / "front-proxy-ca.key")
        self.proxy_client = Pair(pki / "front-proxy-client.crt", pki / "front-proxy-client.key")
        self.serving = Pair(pki / "apiserver.crt", pki / "apiserver.key")
        self.admin = Pair(pki / "admin.crt", pki / "admin.key")
        self.service_account_key = pki / "sa.key"
        self.service_account_pub = pki / "sa.pub"
        self.port = 0
        self.url = ""
        self.kubeconfig = self.dir / "admin.kubeconfig"
        self.processes: list[Process] = []
        self.start_seconds = 0.0

    # -- lifecycle

    def __enter__(self) -> ControlPlane:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, timeout: float = 120) -> None:
        began = time.monotonic()
        deadline = began + timeout
        self.dir.mkdir(parents=True, exist_ok=True)
        self._pki()
        for attempt in range(3):  # free ports are picked, then bound: another process may take one first
            try:
                apiserver = self._start_etcd_and_apiserver(deadline, attempt)
                break
            except StartupError as exc:
                if attempt == 2 or "address already in use" not in str(exc):
                    raise
                self.stop()
        # published by a post-start hook; extension servers read the front-proxy settings from it
        wait_until(lambda: self._exists("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"),
                   deadline - time.monotonic(), f"{self.name} extension-apiserver-authentication ConfigMap",
                   processes=(apiserver,))
        if self.with_controller_manager:
            self._start_controller_manager(deadline)
        if self.with_scheduler:
            self._start_scheduler(deadline)
        self.start_seconds = time.monotonic() - began

    def _start_etcd_and_apiserver(self, deadline: float, attempt: int) -> Process:
        # etcd as KubeLLM runs its own: TLS on loopback, client certificates required
        data = self.dir / ("etcd" if attempt == 0 else f"etcd-{attempt}")
        etcd = EmbeddedEtcd(data, binary=self.binaries["etcd"], progress_notify_interval="5s", quota_bytes=1024**3,
                            tls=ensure_etcd_pki(self.dir / "pki" / "etcd"))
        data.mkdir(mode=0o700, exist_ok=True)
        etcd_proc = self._spawn("etcd", etcd.args())
        wait_until(lambda: self._etcd_healthy(etcd), deadline - time.monotonic(), f"{self.name} etcd",
                   processes=(etcd_proc,))
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        apiserver = self._spawn("kube-apiserver", [self.binaries["kube-apiserver"], *self._apiserver_args(etcd)])
        write_kubeconfig(self.kubeconfig, self.url, self.ca.cert, self.admin, self.name)
        wait_until(lambda: self._ready("/readyz"), deadline - time.monotonic(), f"{self.name} kube-apiserver /readyz",
                   processes=(etcd_proc, apiserver))
        return apiserver

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()
        self.processes.clear()

    def _spawn(self, name: str, argv: list[str]) -> Process:
        p = Process(f"{self.name} {name}", argv, self.dir / f"{name}.log")
        self.processes.append(p)
        p.start()
        return p

    def _pki(self) -> None:
        ensure_ca(f"{self.name}-ca", self.ca)
        ensure_ca(f"{self.name}-front-proxy-ca", self.front_proxy_ca)
        issue_serving_certificate(self.ca, self.serving, "kube-apiserver",
                                  ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
                                   "kubernetes.default.svc", "10.96.0.1"])
        issue_client_certificate(self.ca, self.admin, "admin", ("system:masters",))
        issue_client_certificate(self.front_proxy_ca, self.proxy_client, PROXY_CLIENT_NAME)
        if not self.service_account_key.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            self.service_account_key.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            self.service_account_key.chmod(0o600)
            self.service_account_pub.write_bytes(key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def _apiserver_args(self, etcd: EmbeddedEtcd) -> list[str]:
        return [
            "--bind-address", "127.0.0.1", "--secure-port", str(self.port), "--advertise-address", "127.0.0.1",
            "--endpoint-reconciler-type", "none",  # no kubernetes Endpoints for a loopback address
            "--etcd-servers", etcd.endpoint,
            *(["--etcd-cafile", str(etcd.tls.ca_file), "--etcd-certfile", str(etcd.tls.client_cert),
                "--etcd-keyfile", str(etcd.tls.client_key)] if etcd.tls else []),
            "--cert-dir", str(self.dir / "pki"),
            "--tls-cert-file", str(self.serving.cert), "--tls-private-key-file", str(self.serving.key),
            "--client-ca-file", str(self.ca.cert),
            "--authorization-mode", "RBAC",
            "--service-account-key-file", str(self.service_account_pub),
            "--service-account-signing-key-file", str(self.service_account_key),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-cluster-ip-range", "10.96.0.0/16",
            # front proxy: the aggregator calls extension servers with this client certificate and headers
            "--requestheader-client-ca-file", str(self.front_proxy_ca.cert),
            "--requestheader-allowed-names", PROXY_CLIENT_NAME,
            "--requestheader-username-headers", "X-Remote-User",
            "--requestheader-group-headers", "X-Remote-Group",
            "--requestheader-extra-headers-prefix", "X-Remote-Extra-",
            "--proxy-client-cert-file", str(self.proxy_client.cert),
            "--proxy-client-key-file", str(self.proxy_client.key),
            "--enable-aggregator-routing=false",  # dial the Service (ExternalName → localhost), not endpoints
            *self.extra_apiserver_args,
        ]

    def _component_kubeconfig(self, user: str) -> Path:
        return self.user(user)[1]

    def _start_controller_manager(self, deadline: float) -> None:
        kc = self._component_kubeconfig("system:kube-controller-manager")
        p = self._spawn("kube-controller-manager", [
            self.binaries["kube-controller-manager"], "--kubeconfig", str(kc), "--leader-elect=false",
            "--bind-address", "127.0.0.1", "--secure-port", "0",
            "--service-account-private-key-file", str(self.service_account_key), "--use-service-account-credentials",
            "--root-ca-file", str(self.ca.cert), "--service-cluster-ip-range", "10.96.0.0/16",
            "--controllers", "*"])
        # ready when its ServiceAccount controller has created the default ServiceAccount
        wait_until(lambda: self._exists("/api/v1/namespaces/default/serviceaccounts/default"),
                   deadline - time.monotonic(), f"{self.name} kube-controller-manager", processes=(p,))

    def _start_scheduler(self, deadline: float) -> None:
        kc = self._component_kubeconfig("system:kube-scheduler")
        p = self._spawn("kube-scheduler", [self.binaries["kube-scheduler"], "--kubeconfig", str(kc),
                                           "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0"])
        wait_until(lambda: True if "Starting Kubernetes Scheduler" in p.tail(200_000) else None,
                   deadline - time.monotonic(), f"{self.name} kube-scheduler", processes=(p,))

    @staticmethod
    def _etcd_healthy(etcd: EmbeddedEtcd) -> bool | None:
        with urllib.request.urlopen(f"{etcd.endpoint}/health", timeout=2, context=etcd.ssl_context()) as r:
            return True if json.loads(r.read()).get("health") == "true" else None

    def _ready(self, path: str) -> bool | None:
        return True if self.request("GET", path, timeout=5).status == 200 else None

    def _exists(self, path: str) -> bool | None:
        return True if self.request("GET", path, timeout=5).status == 200 else None

    # -- clients

    def ssl_context(self, client: Pair | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca.cert))
        c = client or self.admin
        ctx.load_cert_chain(str(c.cert), str(c.key))
        return ctx

    def request(self, method: str, path: str, body: Any = None, *, client: Pair | None = None,
                content_type: str = "application/json", timeout: float = 30) -> Response:
        """One HTTPS request to kube-apiserver as `client` (default: the admin); the body is JSON."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(client), timeout=timeout) as r:
                raw, status, headers = r.read(), r.status, dict(r.headers)
        except urllib.error.HTTPError as e:
            raw, status, headers = e.read(), e.code, dict(e.headers)
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Response(status, parsed, headers)

    def stream(self, path: str, *, client: Pair | None = None, timeout: float = 30) -> http.client.HTTPResponse:
        """A streaming GET (a watch): read the response line by line; close it when done."""
        u = urlparse(self.url)
        conn = http.client.HTTPSConnection(u.hostname or "127.0.0.1", u.port, context=self.ssl_context(client),
                                           timeout=timeout)
        conn.request("GET", path, headers={"Accept": "application/json"})
        return conn.getresponse()

    def user(self, name: str, groups: tuple[str, ...] = ()) -> tuple[Pair, Path]:
        """A host user: a client certificate from the host's CA and a kubeconfig for it."""
        safe = name.replace(":", "-")
        pair = Pair(self.dir / "pki" / f"user-{safe}.crt", self.dir / "pki" / f"user-{safe}.key")
        issue_client_certificate(self.ca, pair, name, groups)
        return pair, write_kubeconfig(self.dir / f"user-{safe}.kubeconfig", self.url, self.ca.cert, pair, self.name)

    def kubectl(self, *args: str, kubeconfig: Path | None = None, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Real kubectl against this cluster (admin by default), with a discovery cache of its own."""
        env = {**os.environ, "KUBECONFIG": str(kubeconfig or self.kubeconfig)}
        argv = [self.binaries["kubectl"], "--cache-dir", str(self.dir / "kubectl-cache"), *args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, env=env, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


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
