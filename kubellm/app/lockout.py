"""Failed-login bookkeeping: per-source throttling and per-username lockout, in memory and bounded.

`FailureTracker` counts failures per username, for users that exist and for names that do not alike,
so both answer the same way: after `max_failures` failures in a row a name is locked for `lockout`
seconds (429 with Retry-After), and once that time has passed the count starts again from zero. The
stored User status (written in the background by the login service) is what other instances and
administrators see; this tracker makes one instance's answers exact without waiting for that write.

`SourceThrottle` allows at most `limit` failures per source address in a sliding window.

Both forget their least recently used entries beyond a fixed number, so no client can grow them.

`LocalLedger` holds both for the login service. With `--workers` the supervisor holds the one ledger of the
server and the workers ask it (kubellm/app/ledger.py), so the counts are those of one server, whichever
worker a connection lands on.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Protocol

MAX_ENTRIES = 10_000


@dataclass
class Failures:
    count: int = 0
    locked_until: float = 0.0


class FailureTracker:
    def __init__(self, max_failures: int, lockout: float, max_entries: int = MAX_ENTRIES) -> None:
        self.max_failures = max_failures
        self.lockout = lockout
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Failures] = OrderedDict()

    def locked_for(self, name: str, now: float) -> float:
        """Seconds until `name` may try a password again (0: it may now)."""
        entry = self._entries.get(name)
        return max(0.0, entry.locked_until - now) if entry else 0.0

    def failed(self, name: str, now: float) -> Failures:
        """Count a failure; a lock that has expired starts the count again. Returns the new state."""
        entry = self._entries.pop(name, None) or Failures()
        if entry.locked_until and entry.locked_until <= now:
            entry = Failures()
        entry.count += 1
        if entry.count >= self.max_failures and not entry.locked_until:
            entry.locked_until = now + self.lockout
        self._entries[name] = entry
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def succeeded(self, name: str) -> None:
        self._entries.pop(name, None)


class SourceThrottle:
    """At most `limit` failed logins per source address in a sliding `window` (seconds)."""

    def __init__(self, limit: int = 20, window: float = 60.0, max_entries: int = MAX_ENTRIES) -> None:
        self.limit = limit
        self.window = window
        self.max_entries = max_entries
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, source: str, now: float) -> deque[float]:
        q = self._failures.get(source)
        if q is None:
            q = self._failures[source] = deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, source: str, now: float) -> int:
        q = self._recent(source, now)
        return int(q[0] + self.window - now) + 1 if len(q) >= self.limit else 0

    def failed(self, source: str, now: float) -> None:
        q = self._recent(source, now)
        q.append(now)
        while len(q) > self.limit:
            q.popleft()
        self._failures.move_to_end(source)
        while len(self._failures) > self.max_entries:
            self._failures.popitem(last=False)


class Ledger(Protocol):
    async def check(self, name: str, source: str, now: float) -> tuple[int, float]:
        """(seconds until `source` may fail again, seconds until `name` may try again): 0 when it may now."""
        ...

    async def failed(self, name: str, source: str, now: float) -> None: ...

    async def succeeded(self, name: str) -> None: ...


@dataclass
class LocalLedger:
    tracker: FailureTracker
    throttle: SourceThrottle

    async def check(self, name: str, source: str, now: float) -> tuple[int, float]:
        return self.throttle.retry_after(source, now), self.tracker.locked_for(name, now)

    async def failed(self, name: str, source: str, now: float) -> None:
        self.throttle.failed(source, now)
        self.tracker.failed(name, now)

    async def succeeded(self, name: str) -> None:
        self.tracker.succeeded(name)

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request of a worker (kubellm/app/ledger.py); KeyError, TypeError or ValueError when malformed."""
        op, name = request["op"], str(request["name"])
        if op == "check":
            retry, locked = await self.check(name, str(request["source"]), float(request["now"]))
            return {"retry": retry, "locked": locked}
        if op == "failed":
            await self.failed(name, str(request["source"]), float(request["now"]))
        elif op == "succeeded":
            await self.succeeded(name)
        else:
            raise ValueError(f"unknown op {op!r}")
        return {}
