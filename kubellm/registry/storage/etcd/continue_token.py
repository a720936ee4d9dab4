"""Opaque `continue` tokens, compatible in shape with k8s.io/apiserver/pkg/storage/continue.go."""

from __future__ import annotations

import base64
import binascii

import orjson

from kubellm.registry.storage import errors

_VERSION = "meta.k8s.io/v1"
MAX_REVISION = 2**63 - 1
"""etcd revisions are int64: a larger one in a token must never reach the gateway."""


def encode(revision: int, start_key_suffix: str) -> str:
    raw = orjson.dumps({"v": _VERSION, "rv": revision, "start": start_key_suffix})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(token: str) -> tuple[int, str]:
    """Return (revision, start key suffix relative to the listed prefix)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(data, dict) or data.get("v") != _VERSION:
            raise ValueError("unknown version")
        rev, start = data["rv"], data["start"]
        if type(rev) is not int or not 0 < rev <= MAX_REVISION or not isinstance(start, str):
            raise ValueError("bad fields")  # `type`, not isinstance: JSON true is not revision 1
        if start.startswith("/") or ".." in start.split("/"):
            raise ValueError("bad start")
    except (ValueError, KeyError, binascii.Error, orjson.JSONDecodeError, UnicodeEncodeError) as exc:
        raise errors.InvalidContinue(message="continue key is not valid: " + str(exc)) from exc
    return rev, start
