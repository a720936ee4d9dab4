"""Child processes of a dev cluster, and waiting for conditions with a deadline.

Every child runs in its own process group, logs to a file, is stopped group-wide, and receives SIGKILL if
the process that started it dies first (PR_SET_PDEATHSIG), so no kube-apiserver outlives a test run or a
demo. The parent-death signal fires when the *thread* that started the child ends: start children from the
main thread (or one that lives as long as they do).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
PR_SET_PDEATHSIG = 1


class StartupError(RuntimeError):
    """A component did not start (exited, or not ready in time); the message carries its log tail."""


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent dies, so nothing outlives it."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


_LIVE: set[Process] = set()


class Process:
    """A child in its own process group, logging to a file (appended to across restarts)."""

    def __init__(self, name: str, argv: list[str], log: Path, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.env = dict(env) if env is not None else None
        self.popen: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        """How the last run ended (negative: the signal that ended it), once stopped."""

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True, preexec_fn=_die_with_parent, env=self.env)
        _LIVE.add(self)

    def tail(self, chars: int = 4000) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - chars))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self) -> None:
        """Raise `StartupError` (with the log's end) if the process has exited."""
        if self.popen is not None and self.popen.poll() is not None:
            raise StartupError(f"{self.name} exited with {self.popen.returncode}; end of {self.log}:\n{self.tail()}")

    def rss_bytes(self) -> int:
        """Resident memory of the process (0 when not running)."""
        if not self.alive() or self.popen is None:
            return 0
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM to the group, SIGKILL after `timeout` seconds, then SIGKILL to anything left in it; the
        exit status (None if it was not running)."""
        proc, self.popen = self.popen, None
        _LIVE.discard(self)
        if proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):  # anything left in the group
            os.killpg(proc.pid, signal.SIGKILL)
        self.returncode = proc.returncode
        return proc.returncode


@atexit.register
def _kill_leftovers() -> None:
    for p in list(_LIVE):
        p.stop(timeout=5)


def wait_until(condition: Callable[[], T | None], timeout: float, what: str, *, processes: tuple[Process, ...] = (),
               interval: float = 0.1) -> T:
    """Poll `condition` until it returns something other than None (exceptions count as not yet), checking
    that `processes` are alive; a timeout raises `StartupError` with the last error and the processes' log
    tails."""
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
