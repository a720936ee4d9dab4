"""A small work queue of keys (as client-go's, without rate limiting): a key is queued once however often
it is added, a key being processed is never processed twice at once (added again meanwhile, it is queued
once more when done), and keys can be added after a delay."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class WorkQueue:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def add(self, key: str) -> None:
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        """Add `key` in `delay` seconds (an earlier timer for it is replaced)."""
        if old := self._timers.pop(key, None):
            old.cancel()
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)
        self._timers[key] = loop.call_later(max(0.0, delay), fire)

    def forget(self, key: str) -> None:
        if old := self._timers.pop(key, None):
            old.cancel()

    def __len__(self) -> int:
        return self._queue.qsize()

    async def worker(self, process: Callable[[str], Awaitable[None]]) -> None:
        """Take keys and `process` them, forever (exceptions are the caller's to handle inside `process`)."""
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._processing.add(key)
            try:
                await process(key)
            finally:
                self._processing.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)

    def shutdown(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
