"""The controllers' work queue: the deduplicating queue (`queue.Queue`) with delayed adds and rate-limited
retries (client-go's delaying and rate-limiting queues in one).

- `add_after(key, seconds)`: the key is added once the delay has passed (on the injectable clock). A key
  already waiting keeps the earlier of its two times, so the waiting set, like the queue, holds each key at
  most once.
- `add_rate_limited(key)`: `add_after(key, rate_limiter.when(key))`, counted in `workqueue_retries_total`;
  the default limiter is per-key exponential backoff (5 ms → 1000 s) combined with an overall token bucket
  (10 qps, burst 100). `forget(key)` ends a key's backoff, `num_requeues(key)` tells how far it got.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Hashable
from typing import TypeVar

from kubellm.controller.runtime.clock import REAL_CLOCK, Clock, sleep_or_wake
from kubellm.controller.runtime.queue import Queue, QueueMetrics
from kubellm.controller.runtime.ratelimiter import RateLimiter, default_controller_rate_limiter

T = TypeVar("T", bound=Hashable)


class RateLimitingQueue(Queue[T]):
    def __init__(self, name: str = "", rate_limiter: RateLimiter[T] | None = None, *,
                 metrics: QueueMetrics[T] | None = None, clock: Clock = REAL_CLOCK) -> None:
        super().__init__(name, metrics=metrics)
        self.clock = clock
        self.rate_limiter: RateLimiter[T] = (rate_limiter if rate_limiter is not None
                                             else default_controller_rate_limiter(clock))  # type: ignore[assignment]
        self._waiting: dict[T, float] = {}
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """How many keys wait for their delay to pass."""
        return len(self._waiting)

    def add_after(self, item: T, delay: float) -> None:
        if self.shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        ready = self.clock.now() + delay
        current = self._waiting.get(item)
        if current is not None and current <= ready:
            return
        self._waiting[item] = ready
        heapq.heappush(self._heap, (ready, next(self._seq), item))
        if len(self._heap) > 2 * len(self._waiting) + 64:  # entries superseded by earlier times
            self._heap = [(t, s, i) for t, s, i in self._heap if self._waiting.get(i) == t]
            heapq.heapify(self._heap)
        if self._heap[0][2] == item:
            self._wake.set()
        self._ensure_loop()

    def add_rate_limited(self, item: T) -> None:
        if self.shutting_down:
            return
        self.metrics.retry()
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)

    def shut_down(self) -> None:
        super().shut_down()
        self._waiting.clear()
        self._heap.clear()
        self._wake.set()

    def _ensure_loop(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self._waiting_loop(),
                                                                     name=f"workqueue-delays:{self.name}")

    async def _waiting_loop(self) -> None:
        while not self.shutting_down:
            now = self.clock.now()
            while self._heap and self._heap[0][0] <= now:
                ready, _, item = heapq.heappop(self._heap)
                if self._waiting.get(item) == ready:
                    del self._waiting[item]
                    self.add(item)
            if not self._heap:
                return  # started again by the next add_after
            self._wake.clear()
            await sleep_or_wake(self.clock, self._heap[0][0] - now, self._wake)
