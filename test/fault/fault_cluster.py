"""The processes of the fault suite: a three-member etcd cluster on loopback (TLS, client certificates) and
kubellm-apiserver processes on it sharing one install's keys (hack/gen-install.py: serving certificate, client
CA, EncryptionConfiguration), each on a fixed port so a restarted server is found where it was; and a client of
etcd itself (its v3 JSON gateway) to read what is really stored, independent of the servers under test."""

from __future__ import annotations

import base64
import contextlib
import json
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from kubellm.app.readiness import is_ready, tail
from kubellm.registry.storage.etcd.embedded import find_etcd, free_port

ROOT = Path(__file__).resolve().parents[2]


def _die_with_parent() -> None:
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_for(what: str, check: Any, timeout: float, interval: float = 0.1) -> Any:
    """Poll `check()` until it returns something truthy (returned); AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        time.sleep(interval)


@dataclass(frozen=True)
class Install:
    """What hack/gen-install.py writes: the PKI and the EncryptionConfiguration every replica shares."""

    directory: Path

    @classmethod
    def generate(cls, directory: Path) -> Install:
        subprocess.run([sys.executable, str(ROOT / "hack" / "gen-install.py"), "--out", str(directory)],
                       check=True, capture_output=True, cwd=ROOT, timeout=120)
        return cls(directory)

    def pki(self, name: str) -> Path:
        return self.directory / "pki" / name

    @property
    def encryption_config(self) -> Path:
        return self.directory / "encryption-config.yaml"

    def ssl_context(self, ca: str, client: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki(f"{ca}.crt")))
        ctx.load_cert_chain(str(self.pki(f"{client}.crt")), str(self.pki(f"{client}.key")))
        return ctx


@dataclass
class EtcdMember:
    name: str
    data_dir: Path
    install: Install
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.client_port}"

    @property
    def peer(self) -> str:
        return f"https://127.0.0.1:{self.peer_port}"

    def start(self, initial_cluster: str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        cert, key, ca = (str(self.install.pki(n)) for n in ("etcd-server.crt", "etcd-server.key", "etcd-ca.crt"))
        args = [find_etcd(), "--name", self.name, "--data-dir", str(self.data_dir),
                "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", self.peer, "--initial-advertise-peer-urls", self.peer,
                "--initial-cluster", initial_cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "kubellm-fault-suite",
                "--heartbeat-interval", "100", "--election-timeout", "1000",
                "--experimental-watch-progress-notify-interval", "1s",
                "--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth",
                "--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", ca,
                "--peer-client-cert-auth", "--logger", "zap", "--log-level", "warn"]
        with open(self.data_dir.parent / f"{self.name}.log", "ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, preexec_fn=_die_with_parent)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def healthy(self, ctx: ssl.SSLContext) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.endpoint}/health", context=ctx, timeout=2) as r:
                return bool(json.loads(r.read()).get("health") == "true")
        except (OSError, ValueError):
            return False


class EtcdCluster:
    def __init__(self, directory: Path, install: Install, size: int = 3) -> None:
        self.install = install
        self.members = [EtcdMember(f"m{i}", directory / f"m{i}", install) for i in range(size)]
        self.ctx = install.ssl_context("etcd-ca", "etcd-admin")

    @property
    def endpoints(self) -> str:
        return ",".join(m.endpoint for m in self.members)

    def start(self, timeout: float = 60) -> None:
        initial = ",".join(f"{m.name}={m.peer}" for m in self.members)
        for m in self.members:
            m.start(initial)
        for m in self.members:
            self.wait_healthy(m, timeout)

    def wait_healthy(self, member: EtcdMember, timeout: float = 60) -> None:
        wait_for(f"etcd member {member.name} healthy", lambda: self._alive(member) and member.healthy(self.ctx),
                 timeout, 0.2)

    def _alive(self, member: EtcdMember) -> bool:
        if member.process is None or member.process.poll() is not None:
            log = member.data_dir.parent / f"{member.name}.log"
            raise AssertionError(f"etcd member {member.name} exited:\n{tail(log)}")
        return True

    def leader(self) -> EtcdMember:
        """The member that leads the cluster now (as a member that answers says)."""
        import urllib.request

        ids = {}
        leader = ""
        for m in self.members:
            request = urllib.request.Request(f"{m.endpoint}/v3/maintenance/status", data=b"{}", method="POST")
            try:
                with urllib.request.urlopen(request, context=self.ctx, timeout=2) as r:
                    status = json.loads(r.read())
            except OSError:
                continue
            ids[status["header"]["member_id"]] = m
            leader = leader or status.get("leader", "")
        return ids[leader]

    def restart(self, member: EtcdMember) -> None:
        """Start a member again on its data (the initial cluster flags are ignored then)."""
        member.start(",".join(f"{m.name}={m.peer}" for m in self.members))

    def stop(self) -> None:
        for m in self.members:
            m.stop()


@dataclass
class APIServer:
    name: str
    state: Path
    argv: list[str]
    serving_ca: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.state / f"apiserver-{self.starts}.log"

    def start(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "cmd" / "kubellm-apiserver"), "--state-dir", str(self.state),
                 "--bind-address", "127.0.0.1", "--secure-port", str(self.port), *self.argv],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True, preexec_fn=_die_with_parent)

    def etcd_endpoint(self, endpoints: list[str]) -> str:
        """The etcd endpoint this server's calls start on: the first of `--etcd-servers` until one failed, then the
        one its log says it moved to."""
        active = endpoints[0]
        for n in range(1, self.starts + 1):
            for line in (self.state / f"apiserver-{n}.log").read_text(errors="replace").splitlines():
                if '"etcd endpoint failed; using the next one"' in line:
                    active = json.loads(line)["next"]
        return active

    def errors(self) -> list[str]:
        """Error lines and tracebacks of every start's log."""
        found = []
        for n in range(1, self.starts + 1):
            for line in (self.state / f"apiserver-{n}.log").read_text(errors="replace").splitlines():
                if '"level":"error"' in line or '"level":"critical"' in line or line.startswith("Traceback"):
                    found.append(line[:500])
        return found

    def ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"kubellm-apiserver {self.name} exited:\n{tail(self.log)}")
        return is_ready(self.url, self.serving_ca)

    def wait_ready(self, timeout: float = 90) -> None:
        wait_for(f"kubellm-apiserver {self.name} ready", self.ready, timeout, 0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class EtcdReader:
    """etcd as it is, through its own gateway (any member that answers), for the suite's assertions."""

    def __init__(self, cluster: EtcdCluster) -> None:
        self.cluster = cluster
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cluster.ctx),
                                             timeout=aiohttp.ClientTimeout(total=10))

    async def close(self) -> None:
        await self.session.close()

    async def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        failure: Exception | None = None
        for m in self.cluster.members:
            try:
                async with self.session.post(f"{m.endpoint}/v3{method}", json=body) as r:
                    data: dict[str, Any] = await r.json(content_type=None)
                    if r.status == 200:
                        return data
                    failure = AssertionError(f"etcd {method}: {r.status} {data}")
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                failure = exc
        raise AssertionError(f"no etcd member answered {method}: {failure!r}")

    async def get(self, key: str, revision: int = 0) -> dict[str, Any] | None:
        """The key-value at `revision` (the latest with 0), None when absent."""
        body: dict[str, Any] = {"key": b64(key)}
        if revision:
            body["revision"] = str(revision)
        kvs = (await self.call("/kv/range", body)).get("kvs") or []
        return kvs[0] if kvs else None

    async def keys(self, prefix: str) -> list[str]:
        resp = await self.call("/kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix)),
                                             "keys_only": True})
        return [unb64(kv["key"]) for kv in resp.get("kvs") or []]

    async def revision(self) -> int:
        resp = await self.call("/kv/range", {"key": b64("/")})
        return int(resp["header"]["revision"])

    async def compact(self, revision: int) -> None:
        await self.call("/kv/compaction", {"revision": str(revision), "physical": True})

    async def history(self, prefix: str, after: int, until: int) -> AsyncIterator[dict[str, Any]]:
        """etcd's own watch of `prefix` from revision `after + 1` (with each event's previous value): every event
        up to revision `until`."""
        body = {"create_request": {"key": b64(prefix), "range_end": b64(prefix_end(prefix)),
                                   "start_revision": str(after + 1), "prev_kv": True}}
        for m in self.cluster.members:
            with contextlib.suppress(aiohttp.ClientConnectorError):
                async with self.session.post(f"{m.endpoint}/v3/watch", json=body,
                                             timeout=aiohttp.ClientTimeout(total=30)) as r:
                    assert r.status == 200, await r.text()
                    decoder = json.JSONDecoder()
                    buffer = ""
                    async for chunk in r.content.iter_any():
                        buffer += chunk.decode()
                        while True:  # messages one after another (large ones: longer than a line reader takes)
                            buffer = buffer.lstrip()
                            try:
                                message, used = decoder.raw_decode(buffer)
                            except ValueError:
                                break
                            buffer = buffer[used:]
                            result = message.get("result") or {}
                            assert not result.get("canceled"), result
                            for ev in result.get("events") or []:
                                yield ev
                                if int(ev["kv"]["mod_revision"]) >= until:
                                    return
                return
        raise AssertionError("no etcd member answered the history watch")

