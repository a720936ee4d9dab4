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


# --- built-in kinds a standalone KubeLLM serves (kubectl's typed clients send them as protobuf) -----------

def _time(f: Fields | None) -> str | None:
    """metav1.Time / MicroTime: seconds (1) and nanos (2) since the epoch, as RFC 3339."""
    if f is None:
        return None
    import datetime

    seconds = f.get(1, [0])[-1]
    nanos = f.get(2, [0])[-1]
    if not isinstance(seconds, int) or not isinstance(nanos, int):
        raise ValueError("malformed time")
    ts = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + (f".{nanos // 1000:06d}Z" if nanos else "Z")


def _strings(f: Fields, n: int) -> list[str]:
    return [v.decode() for v in f.get(n, []) if isinstance(v, bytes)]


def _map(f: Fields, n: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in f.get(n, []):
        if isinstance(entry, bytes):
            kv = fields(entry)
            out[_str(kv, 1)] = _str(kv, 2)
    return out


def _int(f: Fields, n: int) -> int | None:
    v = f.get(n)
    if not v:
        return None
    value = v[-1]
    if not isinstance(value, int):
        raise ValueError("malformed integer")
    return value - (1 << 64) if value >= 1 << 63 else value


def _drop_empty(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v not in (None, "", [], {})}


def _object_meta(f: Fields | None) -> dict[str, Any]:
    f = f or {}
    return _drop_empty({"name": _str(f, 1), "generateName": _str(f, 2), "namespace": _str(f, 3),
                        "uid": _str(f, 5), "resourceVersion": _str(f, 6), "labels": _map(f, 11),
                        "annotations": _map(f, 12), "finalizers": _strings(f, 14)})


def _reference(f: Fields | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return _drop_empty({"kind": _str(f, 1), "namespace": _str(f, 2), "name": _str(f, 3), "uid": _str(f, 4),
                        "apiVersion": _str(f, 5), "resourceVersion": _str(f, 6), "fieldPath": _str(f, 7)})


def _namespace(obj: Fields) -> dict[str, Any]:
    spec, status = _msg(obj, 2), _msg(obj, 3)
    return _drop_empty({"spec": _drop_empty({"finalizers": _strings(spec or {}, 1)}),
                        "status": _drop_empty({"phase": _str(status or {}, 1)})})


def _event(obj: Fields) -> dict[str, Any]:
    source = _msg(obj, 5) or {}
    return _drop_empty({
        "involvedObject": _reference(_msg(obj, 2)), "reason": _str(obj, 3), "message": _str(obj, 4),
        "source": _drop_empty({"component": _str(source, 1), "host": _str(source, 2)}),
        "firstTimestamp": _time(_msg(obj, 6)), "lastTimestamp": _time(_msg(obj, 7)), "count": _int(obj, 8),
        "type": _str(obj, 9), "eventTime": _time(_msg(obj, 10)), "action": _str(obj, 12),
        "related": _reference(_msg(obj, 13)), "reportingComponent": _str(obj, 14),
        "reportingInstance": _str(obj, 15)})


def _lease(obj: Fields) -> dict[str, Any]:
    spec = _msg(obj, 2) or {}
    return {"spec": _drop_empty({"holderIdentity": _str(spec, 1), "leaseDurationSeconds": _int(spec, 2),
                                 "acquireTime": _time(_msg(spec, 3)), "renewTime": _time(_msg(spec, 4)),
                                 "leaseTransitions": _int(spec, 5)})}


_KINDS = {("v1", "Namespace"): _namespace, ("v1", "Event"): _event,
          ("coordination.k8s.io/v1", "Lease"): _lease}


def decode_object(body: bytes) -> dict[str, Any]:
    """A built-in object (Namespace, Event, Lease) as JSON, from the fields KubeLLM keeps; 415 for others."""
    try:
        if not body.startswith(MAGIC):
            raise ValueError("missing the k8s protobuf magic")
        unknown = fields(body[len(MAGIC):])
        type_meta = _msg(unknown, 1) or {}
        api_version, kind = _str(type_meta, 1), _str(type_meta, 2)
        decode = _KINDS.get((api_version, kind))
        if decode is None:
            raise errors.unsupported_media_type(MEDIA_TYPE)
        obj = _msg(unknown, 2) or {}
        return {"apiVersion": api_version, "kind": kind, "metadata": _object_meta(_msg(obj, 1)), **decode(obj)}
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"the protobuf body could not be decoded: {exc}") from None
