"""RFC 3339 timestamps as Kubernetes writes them (`2026-01-02T03:04:05Z`, whole seconds, UTC)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_RFC3339_RE = re.compile(
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)


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


def is_rfc3339(value: str) -> bool:
    """Whether `value` is an RFC 3339 date-time (`2006-01-02T15:04:05Z`, `...05.999999999+08:00`): the form
    metav1.Time accepts and OpenAPI's `date-time` format names."""
    m = _RFC3339_RE.match(value)
    if not m:
        return False
    date, clock, fraction, zone = m.groups()
    fraction = (fraction or "")[:7]  # Python parses at most microseconds
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        datetime.fromisoformat(f"{date}T{clock}{fraction}{zone}")
    except ValueError:
        return False
    return True
