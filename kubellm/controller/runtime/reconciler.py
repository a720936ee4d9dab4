"""What a controller asks of its reconciler (controller-runtime's `reconcile.Reconciler`).

`reconcile(key)` brings the object named by `key` (`namespace/name`, or `name` when cluster-scoped) to its
desired state, reading from listers; it is level-based (it looks at the state, not at what changed) and is
called again whenever the key is enqueued. It answers:

- `None` or `Result()`: done; the key's backoff is forgotten.
- `Result(requeue_after=s)`: done for now, look again in `s` seconds (polling something outside the API).
- `Result(requeue=True)`: try again after the key's backoff.
- raises `TerminalError`: the object cannot be reconciled as it is (an invalid spec, say). It is recorded
  (a Warning Event on the object, `controller_runtime_terminal_reconcile_errors_total`, and the reconciler's
  `on_terminal_error` hook, where it can set a condition) and not retried: the next change to the object
  enqueues it again.
- raises anything else: a transient failure, retried after the key's exponential backoff
  (`workqueue_retries_total`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Result:
    requeue_after: float = 0.0
    """Seconds after which the key is reconciled again (0: not unless it changes)."""
    requeue: bool = False
    """Try again after the key's rate-limited backoff."""

    def __post_init__(self) -> None:
        if self.requeue_after < 0:
            raise ValueError("requeue_after must not be negative")


class TerminalError(Exception):
    """A failure that retrying cannot fix: recorded, not retried until the object changes."""

    def __init__(self, message: str, *, reason: str = "ReconcileFailed") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        """The Warning Event's reason (CamelCase, as Kubernetes' reasons)."""


class Reconciler(Protocol):
    async def reconcile(self, key: str) -> Result | None: ...


@runtime_checkable
class TerminalErrorHandler(Protocol):
    """A reconciler that also implements this is told of its terminal errors (to set a condition, say);
    what it raises is logged."""

    async def on_terminal_error(self, key: str, error: TerminalError) -> None: ...
