"""Time as the runtime reads it: a monotonic clock for delays and leases, the wall clock for timestamps
written to the API, and sleeping. Injectable, so tests of backoff, rate limits and leases advance time
instead of waiting for it (client-go's `k8s.io/utils/clock`)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds (for delays, expiries and durations)."""
        ...

    def wall(self) -> float:
        """Unix time (for timestamps written to objects)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


REAL_CLOCK: Clock = RealClock()


async def sleep_or_wake(clock: Clock, seconds: float | None, wake: asyncio.Event) -> None:
    """Sleep `seconds` on `clock` (forever when None) or until `wake` is set, whichever comes first."""
    if wake.is_set():
        return
    if seconds is None:
        await wake.wait()
        return
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait((sleeper, waiter), return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waiter.cancel()
