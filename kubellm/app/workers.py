"""A worker's side of `--workers N`: what the supervisor hands it, and the status files through which the
workers see each other (for `/readyz`) and the supervisor's embedded etcd.

The supervisor (kubellm/app/supervisor.py) starts each worker as `kubellm-apiserver` with the same flags and
one environment variable, `KUBELLM_APISERVER_WORKER`: a JSON `WorkerSpec` with the listening sockets the
worker inherits, the etcd it uses (the supervisor's embedded etcd, if any) and the directory of status files.
Each worker writes `worker-<index>.json` there every second (its own readiness, a timestamp); every
worker's `/readyz` fails unless each other worker's file is fresh and ready, so a load balancer that asks
any worker learns whether the whole server is. The supervisor writes `supervisor.json` with the state of the
embedded etcd it runs, which the workers' `embedded-etcd` checks read.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV = "KUBELLM_APISERVER_WORKER"
FRESH = 5.0
"""A status file older than this (seconds) is a worker or supervisor that stopped writing: not ready."""


class NotReady(Exception):
    """Another worker, or the supervisor's embedded etcd, is not ready."""


@dataclass(frozen=True)
class EtcdClient:
    endpoints: tuple[str, ...]
    ca_file: str
    cert_file: str
    key_file: str


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    count: int
    fds: tuple[int, ...]
    directory: Path
    parent: int
    ledger: str
    """The Unix socket of the supervisor's failed-login ledger (kubellm/app/ledger.py)."""
    etcd: EtcdClient | None = None

    def encode(self) -> str:
        etcd = None if self.etcd is None else {"endpoints": list(self.etcd.endpoints), "ca": self.etcd.ca_file,
                                               "cert": self.etcd.cert_file, "key": self.etcd.key_file}
        return json.dumps({"index": self.index, "count": self.count, "fds": list(self.fds),
                           "directory": str(self.directory), "parent": self.parent, "ledger": self.ledger,
                           "etcd": etcd})

    @classmethod
    def from_environment(cls) -> WorkerSpec | None:
        raw = os.environ.get(ENV)
        if not raw:
            return None
        d: dict[str, Any] = json.loads(raw)
        e = d.get("etcd")
        etcd = None if e is None else EtcdClient(tuple(e["endpoints"]), e["ca"], e["cert"], e["key"])
        return cls(int(d["index"]), int(d["count"]), tuple(int(fd) for fd in d["fds"]), Path(d["directory"]),
                   int(d["parent"]), str(d["ledger"]), etcd)

    @property
    def identity(self) -> str:
        return f"worker-{self.index}"


def die_with_parent(parent: int) -> None:
    """SIGTERM this process when the supervisor dies, even by SIGKILL (Linux); exit now if it is gone already."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        raise SystemExit(1)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` atomically (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_fresh(path: Path, now: float) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        raise NotReady(f"{path.name} missing") from None
    if now - float(data.get("at", 0)) > FRESH:
        raise NotReady(f"{path.name} stale")
    return data


def worker_file(directory: Path, index: int) -> Path:
    return directory / f"worker-{index}.json"


def supervisor_file(directory: Path) -> Path:
    return directory / "supervisor.json"


class Siblings:
    """The `workers` check of /readyz and the status file of this worker."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec

    def publish(self, ready: bool) -> None:
        write_json(worker_file(self.spec.directory, self.spec.index),
                   {"pid": os.getpid(), "ready": ready, "at": time.time()})

    async def check(self) -> None:
        now = time.time()
        for index in range(self.spec.count):
            if index != self.spec.index and not read_fresh(worker_file(self.spec.directory, index), now)["ready"]:
                raise NotReady(f"worker {index} is not ready")

    async def check_embedded_etcd(self) -> None:
        if not read_fresh(supervisor_file(self.spec.directory), time.time()).get("etcd_running"):
            raise NotReady("the embedded etcd is not running")

    async def check_embedded_etcd_recoverable(self) -> None:
        try:
            data = read_fresh(supervisor_file(self.spec.directory), time.time())
        except NotReady:
            return  # a supervisor that stopped writing is gone: this worker gets SIGTERM
        if not data.get("etcd_recoverable", True):
            raise NotReady("the embedded etcd cannot be restarted")
