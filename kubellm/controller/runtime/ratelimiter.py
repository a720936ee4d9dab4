"""How long a key waits before it is tried again (client-go's `util/workqueue` rate limiters).

- `ItemExponentialFailureRateLimiter`: per key, `base * 2**failures`, capped (5 ms doubling to 1000 s by
  default); `forget` starts the key over.
- `BucketRateLimiter`: one token bucket for all keys (10 per second, bursts of 100): each retry reserves a
  token and waits until it is due, so a storm of failures cannot exceed the overall rate.
- `MaxOfRateLimiter`: the longest wait of several; `default_controller_rate_limiter()` is client-go's
  `DefaultTypedControllerRateLimiter`: the per-key exponential backoff and the overall bucket together.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from kubellm.controller.runtime.clock import REAL_CLOCK, Clock

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[T_contra]):
    def when(self, item: T_contra) -> float:
        """Seconds `item` waits before its next try (counts a failure)."""
        ...

    def forget(self, item: T_contra) -> None:
        """`item` succeeded: stop tracking it."""
        ...

    def num_requeues(self, item: T_contra) -> int:
        """How many failures of `item` are being tracked."""
        ...


class ItemExponentialFailureRateLimiter(Generic[T]):
    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("the base delay must be positive and at most the maximum delay")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[T, int] = {}
        """Only keys that are failing: bounded by the keys of the queue."""

    def when(self, item: T) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp >= 64:  # 2**64 times any base is past any cap
            return self.max_delay
        return min(self.base_delay * (2.0**exp), self.max_delay)

    def forget(self, item: T) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter(Generic[T]):
    """A token bucket shared by all keys: `qps` tokens a second, at most `burst` saved up. A reservation may
    drive the bucket below zero; the wait is how long until that token has been earned (Go's
    `rate.Limiter.Reserve().Delay()`)."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = REAL_CLOCK) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be positive and burst at least 1")
        self.qps = qps
        self.burst = float(burst)
        self.clock = clock
        self._tokens = self.burst
        self._last = clock.now()

    def when(self, item: T) -> float:
        now = self.clock.now()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: T) -> None:
        pass

    def num_requeues(self, item: T) -> int:
        return 0


class MaxOfRateLimiter(Generic[T]):
    """The longest wait any of `limiters` asks for (each is asked, so each counts the failure)."""

    def __init__(self, *limiters: RateLimiter[T]) -> None:
        if not limiters:
            raise ValueError("give at least one rate limiter")
        self.limiters = limiters

    def when(self, item: T) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: T) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(clock: Clock = REAL_CLOCK, *, base_delay: float = 0.005,
                                    max_delay: float = 1000.0, qps: float = 10.0,
                                    burst: int = 100) -> MaxOfRateLimiter[str]:
    """Per-key exponential backoff (5 ms → 1000 s) and an overall bucket (10 qps, burst 100), as client-go."""
    return MaxOfRateLimiter[str](ItemExponentialFailureRateLimiter(base_delay, max_delay),
                                 BucketRateLimiter(qps, burst, clock))
