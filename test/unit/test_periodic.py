"""The periodic-job helper: runs, survives failures, backs off, reports its health, stops."""

from __future__ import annotations

import asyncio

import pytest

from kubellm.registry.storage.tasks import Periodic, PeriodicJobFailing


async def test_runs_survives_failures_and_reports() -> None:
    calls: list[int] = []
    ran = asyncio.Event()

    async def job() -> None:
        calls.append(len(calls))
        if len(calls) <= 3:
            raise RuntimeError("etcd is down")
        ran.set()

    p = Periodic("test-job", job, 0.001, run_first=True, jitter=0, max_backoff=0.004, unhealthy_after=3)
    with pytest.raises(PeriodicJobFailing):
        await p.check()  # not started
    p.start()
    await asyncio.wait_for(ran.wait(), 5)
    await p.check()
    assert p.failures == 0 and p.last_success is not None and len(calls) >= 4
    await p.stop()
    with pytest.raises(PeriodicJobFailing, match="not running"):
        await p.check()


async def test_backoff_grows_and_is_capped() -> None:
    async def job() -> None:
        raise ValueError("always")

    p = Periodic("backoff", job, 1.0, jitter=0, max_backoff=8)
    delays = []
    for _ in range(6):
        delays.append(p.delay())
        assert not await p.run_once()
    assert delays == [1, 2, 4, 8, 8, 8]
    assert p.failures == 6
    p.start()
    with pytest.raises(PeriodicJobFailing, match="failed 6 times"):
        await p.check()
    await p.stop()


def test_interval_must_be_positive() -> None:
    async def job() -> None: ...

    with pytest.raises(ValueError):
        Periodic("bad", job, 0)
