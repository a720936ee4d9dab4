"""A real Kubernetes control plane on loopback: etcd, kube-apiserver (with the aggregator and the front
proxy), and optionally kube-controller-manager and kube-scheduler.

etcd is the system's, run as KubeLLM's `EmbeddedEtcd` runs it (TLS on loopback, client certificates
required); the Kubernetes binaries come from `binaries.find_binary`. Certificates are made with
`kubellm.server.certs` under `<dir>/pki`; authorization is RBAC; `--enable-aggregator-routing=false`, so an
APIService backed by an ExternalName Service on `localhost` reaches a server on this machine (see
../shared/k8s/README.md).

Ports are picked once and kept in `<dir>/ports.json`, with the data under `<dir>`: `stop()` then `start()`
(in this process or another) brings the same cluster back at the same address with its objects.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kubellm.app.etcd_pki import ensure_etcd_pki
from kubellm.devcluster.binaries import find_binaries
from kubellm.devcluster.process import Process, StartupError, wait_until
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd, free_port
from kubellm.server.certs import Pair, ensure_ca, issue_client_certificate, issue_serving_certificate

PROXY_CLIENT_NAME = "front-proxy-client"
SERVICE_CIDR = "10.96.0.0/16"


def write_kubeconfig(path: Path, server: str, ca: Path, client: Pair, name: str) -> Path:
    """A kubeconfig (mode 0600) for `client`'s certificate against `server`, trusting `ca`."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": name, "user": {"client-certificate": str(client.cert), "client-key": str(client.key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}))
    path.chmod(0o600)
    return path


class KubectlFailed(AssertionError):
    """kubectl exited non-zero (an AssertionError, so a test shows its output as a failed expectation)."""


Waiter = Callable[[float], None]
"""Waits until a started component serves, given a deadline (time.monotonic())."""


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class ControllerManagerOptions:
    """kube-controller-manager's settings. The default runs every on-by-default controller."""

    controllers: tuple[str, ...] = ("*",)
    hpa_sync_period: str = "15s"
    """--horizontal-pod-autoscaler-sync-period (Kubernetes' default 15s)."""
    node_monitor_grace_period: str = ""
    """--node-monitor-grace-period: how long a node may go without a heartbeat before it is NotReady
    ("" keeps Kubernetes' default, 50s)."""
    node_monitor_period: str = ""
    extra_args: tuple[str, ...] = ()

    def runs(self, controller: str) -> bool:
        return "*" in self.controllers or controller in self.controllers


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager, kube-scheduler) on loopback ports kept across
    restarts."""

    def __init__(self, directory: Path, name: str = "host", *,
                 controller_manager: bool | ControllerManagerOptions = False, scheduler: bool = False,
                 extra_apiserver_args: tuple[str, ...] = ()) -> None:
        self.dir = Path(directory)
        self.name = name
        self.controller_manager: ControllerManagerOptions | None = (
            ControllerManagerOptions() if controller_manager is True else controller_manager or None)
        self.with_scheduler = scheduler
        self.extra_apiserver_args = extra_apiserver_args
        self.binaries = find_binaries("etcd", "kube-apiserver", "kubectl",
                                      *(["kube-controller-manager"] if self.controller_manager else []),
                                      *(["kube-scheduler"] if scheduler else []))
        pki = self.dir / "pki"
        self.ca = Pair(pki / "ca.crt", pki / "ca.key")  # signs the serving and the client certificates
        self.front_proxy_ca = Pair(pki / "front-proxy-ca.crt", pki / "front-proxy-ca.key")
        self.proxy_client = Pair(pki / "front-proxy-client.crt", pki / "front-proxy-client.key")
        self.serving = Pair(pki / "apiserver.crt", pki / "apiserver.key")
        self.admin = Pair(pki / "admin.crt", pki / "admin.key")
        self.service_account_key = pki / "sa.key"
        self.service_account_pub = pki / "sa.pub"
        self.kubeconfig = self.dir / "admin.kubeconfig"
        self.processes: list[Process] = []
        self.exit_codes: dict[str, int | None] = {}
        self.start_seconds = 0.0
        self._ports_file = self.dir / "ports.json"
        self.ports: dict[str, int] = json.loads(self._ports_file.read_text()) if self._ports_file.exists() else {}
        self._ports_saved = bool(self.ports)

    # -- addresses

    def port(self, component: str) -> int:
        """The loopback port of `component`, picked on first use and kept (ports.json) once started."""
        if component not in self.ports:
            self.ports[component] = free_port()
        return self.ports[component]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port('kube-apiserver')}"

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

    def start(self, timeout: float = 120, *, on_apiserver_ready: Waiter | None = None) -> None:
        """Start every component and wait until each serves (`StartupError` otherwise, with log tails).
        `on_apiserver_ready(deadline)` runs once kube-apiserver serves, while the other components start."""
        began = time.monotonic()
        deadline = began + timeout
        self.dir.mkdir(parents=True, exist_ok=True)
        self._pki()
        for attempt in range(3):  # first start: free ports are picked, then bound; another process may win one
            try:
                apiserver = self._start_etcd_and_apiserver(deadline)
                break
            except StartupError as exc:
                if self._ports_saved or attempt == 2 or "address already in use" not in str(exc):
                    raise
                self.stop()
                self.ports.clear()
                shutil.rmtree(self.dir / "etcd", ignore_errors=True)
        self.save_ports()
        # published by a post-start hook; extension servers read the front-proxy settings from it
        wait_until(lambda: self._exists("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"),
                   deadline - time.monotonic(), f"{self.name} extension-apiserver-authentication ConfigMap",
                   processes=(apiserver,))
        waits: list[Waiter] = []
        if self.controller_manager:
            waits.append(self._start_controller_manager(self.controller_manager))
        if self.with_scheduler:
            waits.append(self._start_scheduler())
        if on_apiserver_ready is not None:
            on_apiserver_ready(deadline)
        for wait in waits:
            wait(deadline)
        self.start_seconds = time.monotonic() - began

    def save_ports(self) -> None:
        self._ports_file.write_text(json.dumps(self.ports, indent=1, sort_keys=True))
        self._ports_saved = True

    def _start_etcd_and_apiserver(self, deadline: float) -> Process:
        # etcd as KubeLLM runs its own: TLS on loopback, client certificates required
        data = self.dir / "etcd"
        etcd = EmbeddedEtcd(data, binary=self.binaries["etcd"], client_port=self.port("etcd"),
                            progress_notify_interval="5s", quota_bytes=1024**3,
                            tls=ensure_etcd_pki(self.dir / "pki" / "etcd"))
        etcd.peer_port = self.port("etcd-peer")
        data.mkdir(mode=0o700, exist_ok=True)
        etcd_proc = self._spawn("etcd", etcd.args())
        wait_until(lambda: self._etcd_healthy(etcd), deadline - time.monotonic(), f"{self.name} etcd",
                   processes=(etcd_proc,), interval=0.05)
        apiserver = self._spawn("kube-apiserver", [self.binaries["kube-apiserver"], *self._apiserver_args(etcd)])
        write_kubeconfig(self.kubeconfig, self.url, self.ca.cert, self.admin, self.name)
        wait_until(lambda: self._ready("/readyz"), deadline - time.monotonic(), f"{self.name} kube-apiserver /readyz",
                   processes=(etcd_proc, apiserver))
        return apiserver

    def stop(self) -> None:
        """Stop every process (newest first); the data and ports stay for `start()`. `exit_codes` says how
        each ended."""
        for p in reversed(self.processes):
            self.exit_codes[p.name.removeprefix(f"{self.name} ")] = p.stop()
        self.processes.clear()

    def running(self) -> bool:
        return bool(self.processes) and all(p.alive() for p in self.processes)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        """Start a child process of this cluster (stopped with it), logging to `<dir>/<name>.log`."""
        return self._spawn(name, argv, env)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        p = Process(f"{self.name} {name}", argv, self.dir / f"{name}.log", env)
        self.processes.append(p)
        p.start()
        return p

    def rss_bytes(self) -> dict[str, int]:
        """Resident memory of each running process, by component."""
        return {p.name.removeprefix(f"{self.name} "): p.rss_bytes() for p in self.processes}

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
            "--bind-address", "127.0.0.1", "--secure-port", str(self.port("kube-apiserver")),
            "--advertise-address", "127.0.0.1",
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
            "--service-cluster-ip-range", SERVICE_CIDR,
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

    def _component_args(self, user: str, component: str) -> list[str]:
        """Kubeconfig, delegated authentication and a health port for a control-plane component."""
        kc = str(self.user(user)[1])
        return ["--kubeconfig", kc, "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
                "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", str(self.port(component))]

    def _start_controller_manager(self, opts: ControllerManagerOptions) -> Waiter:
        args = [self.binaries["kube-controller-manager"],
                *self._component_args("system:kube-controller-manager", "kube-controller-manager"),
                "--service-account-private-key-file", str(self.service_account_key),
                "--use-service-account-credentials", "--root-ca-file", str(self.ca.cert),
                "--service-cluster-ip-range", SERVICE_CIDR, "--controllers", ",".join(opts.controllers),
                "--horizontal-pod-autoscaler-sync-period", opts.hpa_sync_period,
                *(["--node-monitor-grace-period", opts.node_monitor_grace_period]
                  if opts.node_monitor_grace_period else []),
                *(["--node-monitor-period", opts.node_monitor_period] if opts.node_monitor_period else []),
                *opts.extra_args]
        p = self._spawn("kube-controller-manager", args)

        def wait(deadline: float) -> None:
            wait_until(lambda: self._component_healthy("kube-controller-manager", "/healthz"),
                       deadline - time.monotonic(), f"{self.name} kube-controller-manager /healthz", processes=(p,))
            if opts.runs("serviceaccount-controller") or opts.runs("serviceaccount"):
                # its ServiceAccount controller creates the default ServiceAccount pods need
                wait_until(lambda: self._exists("/api/v1/namespaces/default/serviceaccounts/default"),
                           deadline - time.monotonic(), f"{self.name} default ServiceAccount", processes=(p,))
        return wait

    def _start_scheduler(self) -> Waiter:
        p = self._spawn("kube-scheduler", [self.binaries["kube-scheduler"],
                                           *self._component_args("system:kube-scheduler", "kube-scheduler")])

        def wait(deadline: float) -> None:
            wait_until(lambda: self._component_healthy("kube-scheduler", "/readyz"),
                       deadline - time.monotonic(), f"{self.name} kube-scheduler /readyz", processes=(p,))
        return wait

    def _component_healthy(self, component: str, path: str) -> bool | None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # a self-signed loopback health endpoint
        with urllib.request.urlopen(f"https://127.0.0.1:{self.port(component)}{path}", timeout=2, context=ctx) as r:
            return True if r.status == 200 else None

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
        """A user of this cluster: a client certificate from its CA and a kubeconfig for it."""
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
            raise KubectlFailed(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def apply(self, *objects: dict[str, Any]) -> None:
        """`kubectl apply` of the objects (as one List)."""
        self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))
