"""Just enough of Kubernetes' protobuf encoding to read the review requests kubectl sends that way.

kubectl's typed clients post built-in kinds (here the authentication/authorization self reviews) as
`application/vnd.kubernetes.protobuf`: the magic `k8s\\x00`, then a runtime.Unknown whose `raw` field
holds the object. Responses are JSON, which every client accepts.
"""

from __future__ import annotations

from typing import Any

from kubellm.apis import errors

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

Fields = dict[int, list[bytes | int]]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> Fields:
    out: Fields = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.setdefault(number, []).append(value)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            out.setdefault(number, []).append(data[pos:pos + length])
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _str(f: Fields, n: int) -> str:
    v = f.get(n, [b""])[-1]
    return v.decode() if isinstance(v, bytes) else str(v)


def _msg(f: Fields, n: int) -> Fields | None:
    v = f.get(n)
    return fields(v[-1]) if v and isinstance(v[-1], bytes) else None


_RESOURCE_ATTRS = ("namespace", "verb", "group", "version", "resource", "subresource", "name")


def decode_review(body: bytes) -> dict[str, Any]:
    """A self review (SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview) as JSON."""
    try:
        if not body.startswith(MAGIC):
            raise ValueError("missing the k8s protobuf magic")
        unknown = fields(body[len(MAGIC):])
        type_meta = _msg(unknown, 1) or {}
        kind = _str(type_meta, 2)
        obj = _msg(unknown, 2) or {}
        spec = _msg(obj, 2) or {}
        out: dict[str, Any] = {"apiVersion": _str(type_meta, 1), "kind": kind, "spec": {}}
        if kind == "SelfSubjectAccessReview":
            res, non = _msg(spec, 1), _msg(spec, 2)
            if res is not None:
                out["spec"]["resourceAttributes"] = {k: _str(res, i + 1) for i, k in enumerate(_RESOURCE_ATTRS)}
            if non is not None:
                out["spec"]["nonResourceAttributes"] = {"path": _str(non, 1), "verb": _str(non, 2)}
        elif kind == "SelfSubjectRulesReview":
            out["spec"]["namespace"] = _str(spec, 1)
        return out
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"the protobuf body could not be decoded: {exc}") from None
