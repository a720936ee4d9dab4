"""A manual clock for the controller runtime's tests: time moves only when the test advances it, so backoff,
rate limits, delayed adds and leases are checked exactly and without waiting."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable


class ManualClock:
    def __init__(self, start: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        await future

    @property
    def sleepers(self) -> int:
        """Sleeps not over yet (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_wakeup(self) -> float | None:
        pending = [t for t, _, f in self._sleepers if not f.done()]
        return min(pending) - self._now if pending else None

    def advance(self, seconds: float) -> None:
        """Move time on and wake every sleep that is over."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


async def settle(rounds: int = 20) -> None:
    """Let every ready task run until nothing is left to do (a bounded number of loop iterations)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `condition` (yielding to the loop) until it holds; AssertionError after `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.001)
