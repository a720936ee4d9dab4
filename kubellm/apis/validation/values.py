"""Checks of single values that every group uses: URLs, base64, whitespace, uniqueness, and the messages of
ranges and RFC 3339 timestamps.

Ranges and timestamps are declared on the fields (`kubellm.apis.constraints`) and checked by the declared
validator with these messages; a group writes by hand only what cannot be declared.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from kubellm.apis.validation import field
from kubellm.apis.validation.field import ErrorList, Path

RFC3339_MSG = 'must be an RFC3339 timestamp such as "2006-01-02T15:04:05Z"'


def greater_or_equal_msg(minimum: int) -> str:
    return f"must be greater than or equal to {minimum}"


def less_or_equal_msg(maximum: int) -> str:
    return f"must be less than or equal to {maximum}"


def url_problems(value: str, schemes: Sequence[str], *, plain: bool = False) -> list[str]:
    """Why `value` is not an absolute URL with one of `schemes` (and, if `plain`, no user info,
    query or fragment)."""
    bad = [f"must be an absolute URL with scheme {' or '.join(schemes)}"]
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return bad
    if parts.scheme not in schemes or not parts.hostname or any(c.isspace() for c in value):
        return bad
    problems: list[str] = []
    if plain:
        if parts.username is not None or parts.password is not None:
            problems.append("user information is not permitted in the URL")
        if parts.query:
            problems.append("query parameters are not permitted")
        if parts.fragment or value.endswith("#"):
            problems.append("fragments are not permitted")
    return problems


def is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def no_whitespace(value: str, path: Path) -> ErrorList:
    if value != value.strip():
        return [field.invalid(path, value, "must not have leading or trailing whitespace")]
    if any(c.isspace() for c in value):
        return [field.invalid(path, value, "must not contain whitespace")]
    return []


def validate_unique_names(values: Iterable[str], path: Path, child: str = "") -> ErrorList:
    """Duplicate errors for repeated non-empty values, at `path[i]` (or `path[i].child`)."""
    errs: ErrorList = []
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v and v in seen:
            errs.append(field.duplicate(path.index(i).child(child) if child else path.index(i), v))
        seen.add(v)
    return errs
