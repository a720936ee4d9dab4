"""An etcd child process for running KubeLLM (and its tests) without an external etcd.

The binary is the system's `etcd` (Debian's etcd-server, a production release, installed by
hack/install-deps.sh). Data lives under the given directory; `stop()` ends the process cleanly.

With `tls` (what the server always uses), etcd serves HTTPS on loopback and requires a client
certificate signed by the given CA on its client and peer ports, so another local user can neither
read nor write KubeLLM's data; the certificates are made by the caller (kubellm.app.etcd_pki).

`supervise()` (what the server does) restarts the child whenever it exits, on the same ports and data, after
an exponential backoff (0.5 s doubling to 30 s; reset once a restart is healthy). `check_running` fails while
the child is down (the server's `/readyz`); `check_recoverable` fails once the binary is gone or
`max_failed_restarts` restarts in a row have failed (the server's `/livez`, so that a supervisor such as the
kubelet restarts the whole process); the supervisor keeps trying meanwhile and both pass again after a
healthy restart. `stop()` ends the supervisor before the child.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import structlog

log = structlog.get_logger(__name__)


class EtcdNotFound(RuntimeError):
    pass


class EmbeddedEtcdDown(RuntimeError):
    """The embedded etcd is not running (restarting), or cannot be restarted."""


def _die_with_parent() -> None:
    """In the child: receive SIGTERM when the parent dies, so an embedded etcd never outlives its server."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def find_etcd(binary: str | None = None) -> str:
    for candidate in (binary, os.environ.get("KUBELLM_ETCD_BINARY"), shutil.which("etcd"), "/usr/bin/etcd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise EtcdNotFound("no etcd binary found: install it with hack/install-deps.sh (Debian package etcd-server)")


@dataclass(frozen=True)
class EtcdTLS:
    """Certificates of an embedded etcd: its CA, its serving certificate (also valid as a client
    certificate: etcd's gRPC gateway dials etcd with it), and the client certificate KubeLLM presents."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


class EmbeddedEtcd:
    def __init__(self, data_dir: Path, *, binary: str | None = None, client_port: int = 0,
                 progress_notify_interval: str = "5s", quota_bytes: int = 2 * 1024**3,
                 tls: EtcdTLS | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.binary = find_etcd(binary)
        self.client_port = client_port or free_port()
        self.peer_port = free_port()
        self.progress_notify_interval = progress_notify_interval
        self.quota_bytes = quota_bytes
        self.tls = tls
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.restarts = 0
        """Healthy restarts by the supervisor."""
        self.failed_restarts = 0
        """Restarts in a row that failed (0 once one is healthy)."""
        self.healthy = False
        self.max_failed_restarts = 5
        self.backoff = (0.5, 30.0)
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    def tls_args(self) -> list[str]:
        t = self.tls
        if t is None:
            return []
        return ["--cert-file", str(t.server_cert), "--key-file", str(t.server_key), "--trusted-ca-file", str(t.ca_file),
                "--client-cert-auth",
                "--peer-cert-file", str(t.server_cert), "--peer-key-file", str(t.server_key),
                "--peer-trusted-ca-file", str(t.ca_file), "--peer-client-cert-auth"]

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context with KubeLLM's client certificate (None without TLS)."""
        if self.tls is None:
            return None
        ctx = ssl.create_default_context(cafile=str(self.tls.ca_file))
        ctx.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        return ctx

    def args(self) -> list[str]:
        peer = f"{self.scheme}://127.0.0.1:{self.peer_port}"
        return [
            self.binary,
            "--name", "kubellm",
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.endpoint,
            "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"kubellm={peer}",
            "--initial-cluster-state", "new",
            "--quota-backend-bytes", str(self.quota_bytes),
            "--experimental-watch-progress-notify-interval", self.progress_notify_interval,
            "--logger", "zap",
            "--log-level", "warn",
            *self.tls_args(),
        ]

    async def start(self, timeout: float = 30.0) -> str:
        """Start the child and wait until it is healthy (RuntimeError if it exits, TimeoutError past `timeout`)."""
        try:
            await self._spawn()
            await self._wait_healthy(timeout)
        except BaseException:
            await self._terminate()
            raise
        return self.endpoint

    async def _spawn(self) -> None:
        self.healthy = False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        with open(self.log_path, "ab") as log_file:  # noqa: ASYNC230 - once per (re)start
            self.process = await asyncio.create_subprocess_exec(
                *self.args(), stdout=log_file, stderr=log_file, stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        log.info("etcd starting", pid=self.process.pid, endpoint=self.endpoint, data_dir=str(self.data_dir))

    async def _wait_healthy(self, timeout: float) -> None:
        process = self.process
        assert process is not None
        deadline = asyncio.get_running_loop().time() + timeout
        connector = aiohttp.TCPConnector(ssl=self.ssl_context() or False)
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"etcd exited with {process.returncode}; see {self.log_path}")
                with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
                    async with session.get(f"{self.endpoint}/health", timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200 and (await r.json(content_type=None)).get("health") == "true":
                            log.info("etcd ready", endpoint=self.endpoint)
                            self.healthy = True
                            return
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"etcd did not become healthy in {timeout}s; see {self.log_path}")
                await asyncio.sleep(0.1)

    # --- supervision -----------------------------------------------------------------------------------

    def supervise(self, *, max_failed_restarts: int = 5, backoff: tuple[float, float] = (0.5, 30.0)) -> None:
        """Restart the (started) child whenever it exits, until `stop()`."""
        self.max_failed_restarts, self.backoff = max_failed_restarts, backoff
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="embedded-etcd")

    def binary_present(self) -> bool:
        return os.access(self.binary, os.X_OK)

    async def _supervise(self) -> None:
        while True:
            process = self.process
            if process is not None:
                code = await process.wait()
                self.healthy = False
                log.error("embedded etcd exited; restarting it", pid=process.pid, code=code, log=str(self.log_path))
            delay = self.backoff[0]
            while True:
                await asyncio.sleep(delay * random.uniform(0.9, 1.1))
                delay = min(delay * 2, self.backoff[1])
                try:
                    if not self.binary_present():
                        raise EtcdNotFound(f"the etcd binary {self.binary} is gone")
                    await self._spawn()
                    await self._wait_healthy(30.0)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await self._terminate()
                    self.failed_restarts += 1
                    log.error("embedded etcd restart failed", error=str(exc)[:300],
                              failed_restarts=self.failed_restarts, retry_in=round(delay, 1),
                              recoverable=self._unrecoverable() is None)
                    continue
                self.failed_restarts = 0
                self.restarts += 1
                log.info("embedded etcd restarted", restarts=self.restarts)
                break

    def _unrecoverable(self) -> str | None:
        if not self.binary_present():
            return f"the etcd binary {self.binary} is gone"
        if self.failed_restarts >= self.max_failed_restarts:
            return f"{self.failed_restarts} restarts of etcd failed in a row; see {self.log_path}"
        return None

    async def check_running(self) -> None:
        """For /readyz: raise while the child is not running and healthy."""
        process = self.process
        if process is None or process.returncode is not None or not self.healthy:
            raise EmbeddedEtcdDown(f"embedded etcd is down (failed restarts in a row: {self.failed_restarts})")

    async def check_recoverable(self) -> None:
        """For /livez: raise when the supervisor cannot bring the child back by itself (or is not running)."""
        if self._supervisor is not None and self._supervisor.done():
            raise EmbeddedEtcdDown("the embedded etcd supervisor has stopped")
        reason = self._unrecoverable()
        if reason is not None:
            raise EmbeddedEtcdDown(reason)

    async def _terminate(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        self.healthy = False
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info("etcd stopped")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop supervising, then end the child (SIGTERM, SIGKILL after `timeout`)."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        await self._terminate(timeout)
