"""Exponential backoff with jitter, as client-go's reflector waits between failed list/watch attempts
(800 ms doubling to 30 s, full jitter, reset after a quiet period)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.8
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 1.0
    """Each wait is the current step times 1 + up to `jitter`."""
    reset_after: float = 120.0
    """A failure this long after the previous one starts again from `initial`."""
    _step: float = field(default=0.0, init=False)
    _last: float = field(default=float("-inf"), init=False)

    def next(self) -> float:
        now = time.monotonic()
        if now - self._last > self.reset_after or self._step == 0.0:
            self._step = self.initial
        else:
            self._step = min(self._step * self.factor, self.maximum)
        self._last = now
        return min(self._step * (1.0 + random.random() * self.jitter), self.maximum * (1.0 + self.jitter))

    def reset(self) -> None:
        self._step = 0.0

    async def sleep(self) -> float:
        delay = self.next()
        await asyncio.sleep(delay)
        return delay
