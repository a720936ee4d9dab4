"""Waiting for what real processes do, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def until(check: Callable[[], T | None], timeout: float, what: str, *, interval: float = 0.25) -> T:
    """Poll `check` until it returns something other than None or False; exceptions of a half-made state
    (assertions, missing keys or items, bad values) count as not yet. AssertionError naming `what` and the
    last outcome when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (AssertionError, KeyError, IndexError, ValueError, TypeError) as exc:
            last = exc
        else:
            if last is not None and last is not False:
                return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
