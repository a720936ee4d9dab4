"""RFC 3339 timestamps as Kubernetes writes them (`2026-01-02T03:04:05Z`, whole seconds, UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def rfc3339(ts: float) -> str:
    """A Unix time as metav1.Time serializes it."""
    return datetime.fromtimestamp(ts, UTC).strftime(FORMAT)


def now_rfc3339() -> str:
    return rfc3339(time.time())


def parse_rfc3339(value: object) -> float | None:
    """The Unix time of an RFC 3339 timestamp (any offset, fractions allowed), or None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()
