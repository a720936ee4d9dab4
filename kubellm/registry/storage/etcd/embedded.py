"""An etcd child process for running KubeLLM (and its tests) without an external etcd.

The binary is the system's `etcd` (Debian's etcd-server, a production release, installed by
hack/install-deps.sh). Data lives under the given directory; `stop()` ends the process cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
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


class EmbeddedEtcd:
    def __init__(self, data_dir: Path, *, binary: str | None = None, client_port: int = 0,
                 progress_notify_interval: str = "5s", quota_bytes: int = 2 * 1024**3) -> None:
        self.data_dir = Path(data_dir)
        self.binary = find_etcd(binary)
        self.client_port = client_port or free_port()
        self.peer_port = free_port()
        self.progress_notify_interval = progress_notify_interval
        self.quota_bytes = quota_bytes
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def args(self) -> list[str]:
        peer = f"http://127.0.0.1:{self.peer_port}"
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
        async with aiohttp.ClientSession() as session:
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
