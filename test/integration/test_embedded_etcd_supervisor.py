"""The embedded etcd's supervisor on its own (issue #12, item 2): a real etcd killed with SIGKILL is restarted;
when its restarts keep failing (the binary replaced by one that exits at once) the supervisor reports the child
down at once and unrecoverable after `max_failed_restarts` failures, keeps trying, and recovers by itself once
etcd can start again; stop() ends supervisor and child, leaving no task behind."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from kubellm.app.etcd_pki import ensure_etcd_pki
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd, EmbeddedEtcdDown, find_etcd


async def eventually(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll `predicate` until it is true; AssertionError naming `what` past the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, f"{what}: not within {timeout}s"
        await asyncio.sleep(0.05)


async def passes(check: Callable[[], Awaitable[None]]) -> bool:
    try:
        await check()
    except EmbeddedEtcdDown:
        return False
    return True


async def test_supervisor_restarts_and_reports_unrecoverable(tmp_path: Path) -> None:
    binary = tmp_path / "bin" / "etcd"
    binary.parent.mkdir()
    shutil.copy2(find_etcd(), binary)
    real = tmp_path / "bin" / "etcd.real"
    shutil.copy2(binary, real)
    etcd = EmbeddedEtcd(tmp_path / "data", binary=str(binary), tls=ensure_etcd_pki(tmp_path / "pki"))
    await etcd.start()
    etcd.supervise(max_failed_restarts=2, backoff=(0.05, 0.2))
    try:
        assert await passes(etcd.check_running) and await passes(etcd.check_recoverable)
        assert etcd.process is not None
        first = etcd.process.pid
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: _restarted(etcd, 1), 30, "restarted after SIGKILL")
        assert etcd.process is not None and etcd.process.pid != first
        assert await passes(etcd.check_running) and await passes(etcd.check_recoverable)

        # restarts fail (etcd exits at once): down at once, unrecoverable after two failures in a row
        failing = tmp_path / "bin" / "etcd.failing"
        failing.write_text("#!/bin/sh\nexit 1\n")
        failing.chmod(0o755)
        os.replace(failing, binary)  # the running etcd keeps its (unlinked) file
        os.kill(etcd.process.pid, signal.SIGKILL)
        await eventually(lambda: _not(passes(etcd.check_running)), 10, "reported down")
        await eventually(lambda: _not(passes(etcd.check_recoverable)), 30, "reported unrecoverable")
        assert etcd.failed_restarts >= 2

        # etcd can start again: back by itself, the failure count reset
        os.replace(real, binary)
        await eventually(lambda: _restarted(etcd, 2), 30, "recovered by itself")
        assert etcd.failed_restarts == 0
        assert await passes(etcd.check_running) and await passes(etcd.check_recoverable)
    finally:
        await etcd.stop()
    assert etcd.process is None
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "embedded-etcd"]
    with pytest.raises(EmbeddedEtcdDown):
        await etcd.check_running()


async def _restarted(etcd: EmbeddedEtcd, times: int) -> bool:
    return etcd.restarts >= times and await passes(etcd.check_running)


async def _not(awaitable: Awaitable[bool]) -> bool:
    return not await awaitable
