"""Background tasks: one helper for every periodic job of the server, and cancellation.

`Periodic` runs a job every `interval` seconds (with jitter, so instances do not act in step), logs
each failure with the job's name, backs off exponentially while the job keeps failing (up to
`max_backoff`), and reports its health: `check()` raises when the task has died or has failed
`unhealthy_after` times in a row, which the server shows in `/readyz/<name>`. Any exception the job
raises is a failure (a job never dies of one); cancellation stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has finished."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class PeriodicJobFailing(Exception):
    """A periodic job is not running, or keeps failing."""


class Periodic:
    def __init__(self, name: str, job: Callable[[], Awaitable[Any]], interval: float, *,
                 run_first: bool = False, jitter: float = 0.1, max_backoff: float | None = None,
                 unhealthy_after: int = 3) -> None:
        if interval <= 0:
            raise ValueError("a periodic job needs a positive interval")
        self.name = name
        self.job = job
        self.interval = interval
        self.run_first = run_first
        self.jitter = jitter
        self.max_backoff = max_backoff if max_backoff is not None else max(interval, 60.0) * 4
        self.unhealthy_after = unhealthy_after
        self.failures = 0
        """Consecutive failures (0 after a success)."""
        self.last_success: float | None = None
        self._task: asyncio.Task[None] | None = None

    def delay(self) -> float:
        """Seconds until the next run: the interval, doubled for each consecutive failure (capped), jittered."""
        base = min(self.interval * 2.0 ** min(self.failures, 32), max(self.max_backoff, self.interval))
        return float(base * (1 + random.uniform(-self.jitter, self.jitter)))

    async def run_once(self) -> bool:
        try:
            await self.job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failures += 1
            log.warning("periodic job failed", job=self.name, error=type(exc).__name__, detail=str(exc)[:200],
                        failures=self.failures)
            return False
        self.failures = 0
        self.last_success = time.monotonic()
        return True

    async def _loop(self) -> None:
        if self.run_first:
            await self.run_once()
        while True:
            await asyncio.sleep(self.delay())
            await self.run_once()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def check(self) -> None:
        """For /readyz: raise when the job is not running or has failed `unhealthy_after` times in a row."""
        if self._task is None or self._task.done():
            raise PeriodicJobFailing(f"{self.name} is not running")
        if self.failures >= self.unhealthy_after:
            raise PeriodicJobFailing(f"{self.name} failed {self.failures} times in a row")
