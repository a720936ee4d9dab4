"""An etcd child process for running KubeLLM (and its tests) without an external etcd.

The binary is the system's `etcd` (Debian's etcd-server, a production release, installed by
hack/install-deps.sh). Data lives under the given directory; `stop()` ends the process cleanly.

With `tls` (what the server always uses), etcd serves HTTPS on loopback and requires a client
certificate signed by the given CA on its client and peer ports, so another local user can neither
read nor write KubeLLM's data; the certificates are made by the caller (kubellm.app.etcd_pki).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        with open(self.log_path, "ab") as log_file:  # noqa: ASYNC230 - once, at start-up
            self.process = await asyncio.create_subprocess_exec(
                *self.args(), stdout=log_file, stderr=log_file, stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        log.info("etcd starting", pid=self.process.pid, endpoint=self.endpoint, data_dir=str(self.data_dir))
        deadline = asyncio.get_running_loop().time() + timeout
        connector = aiohttp.TCPConnector(ssl=self.ssl_context() or False)
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"etcd exited with {self.process.returncode}; see {self.log_path}")
                with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
                    async with session.get(f"{self.endpoint}/health", timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200 and (await r.json(content_type=None)).get("health") == "true":
                            log.info("etcd ready", endpoint=self.endpoint)
                            return self.endpoint
                if asyncio.get_running_loop().time() > deadline:
                    await self.stop()
                    raise TimeoutError(f"etcd did not become healthy in {timeout}s; see {self.log_path}")
                await asyncio.sleep(0.1)

    async def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
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
