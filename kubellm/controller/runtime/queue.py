"""The work queue's core (client-go's `util/workqueue` `Typed` queue), for asyncio workers.

- An item waits in the queue at most once: adding it again while it waits does nothing (dedupe).
- An item handed out by `get()` is *processing* until its `done()`; adding it meanwhile marks it dirty, and
  `done()` puts it back in the queue, so no two workers ever hold the same item and no change is lost.
- Items are handed out in the order they were first added.
- `shut_down()`: further adds are ignored and `get()` returns None at once (waiting workers wake up and
  return). Unlike client-go, items still waiting are not handed out after shutdown: keys are level-based,
  and whoever runs next lists everything again. `shut_down_with_drain()` also waits until every item being
  processed is done.

The queue holds keys, never objects: it is bounded by the number of distinct keys.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)


class QueueMetrics(Protocol[T_contra]):
    """What a queue reports (client-go's `queueMetrics`)."""

    def add(self, item: T_contra) -> None: ...

    def get(self, item: T_contra) -> None: ...

    def done(self, item: T_contra) -> None: ...

    def retry(self) -> None: ...


class NoMetrics:
    def add(self, item: Hashable) -> None:
        pass

    def get(self, item: Hashable) -> None:
        pass

    def done(self, item: Hashable) -> None:
        pass

    def retry(self) -> None:
        pass


class Queue(Generic[T]):
    def __init__(self, name: str = "", *, metrics: QueueMetrics[T] | None = None) -> None:
        self.name = name
        self.metrics: QueueMetrics[T] = metrics if metrics is not None else NoMetrics()
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._idle: asyncio.Event | None = None
        self._shutting_down = False

    def __len__(self) -> int:
        """How many items wait to be handed out."""
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    @property
    def processing(self) -> frozenset[T]:
        return frozenset(self._processing)

    def add(self, item: T) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self.metrics.add(item)
        self._dirty.add(item)
        if item in self._processing:
            return  # handed back by done()
        self._queue.append(item)
        self._wake_one()

    async def get(self) -> T | None:
        """The next item (it is then processing until `done`), waiting for one; None once shut down."""
        while not self._queue and not self._shutting_down:
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # it was woken: pass the item on to another getter
                raise
            finally:
                if waiter in self._getters:
                    self._getters.remove(waiter)
        if self._shutting_down:
            return None
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        self.metrics.get(item)
        return item

    def done(self, item: T) -> None:
        """Processing of `item` ended; if it was added meanwhile, it goes back in the queue."""
        if item not in self._processing:
            return
        self.metrics.done(item)
        self._processing.discard(item)
        if item in self._dirty:
            if self._shutting_down:
                self._dirty.discard(item)
            else:
                self._queue.append(item)
                self._wake_one()
        if not self._processing and self._idle is not None:
            self._idle.set()

    def shut_down(self) -> None:
        """Ignore further adds; `get()` returns None from now on (waiting callers too)."""
        self._shutting_down = True
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def shut_down_with_drain(self, timeout: float | None = None) -> bool:
        """Shut down, then wait until every item being processed is done (at most `timeout` seconds):
        whether it drained."""
        self.shut_down()
        if not self._processing:
            return True
        self._idle = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
