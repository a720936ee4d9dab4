"""Query parameters and DeleteOptions bodies, checked at the edge for type and range.

Nothing a client sends reaches the Store or etcd unchecked: integers must fit etcd's int64 (a larger
`limit` or `resourceVersion` used to come back from the etcd gateway as a 503 quoting it), booleans must be
booleans, and a DeleteOptions body must have the types of `metav1.DeleteOptions` (kube-apiserver answers
400 BadRequest for one it cannot decode). Every refusal is a 400 (or a 422 for a value of the right type
that is not allowed) whose message names the parameter; values are quoted shortened.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from multidict import MultiMapping

from kubellm.apis import errors
from kubellm.apis.codec import FieldValidation
from kubellm.apis.validation import field as ferr
from kubellm.registry.storage.interface import Preconditions
from kubellm.registry.store import DeleteParams, ListParams

INT64_MAX = 2**63 - 1
"""etcd revisions, limits and Kubernetes' integer options are int64."""
MAX_WATCH_RESOURCE_VERSION = INT64_MAX - 1
"""A watch streams changes after its resourceVersion, so the revision after it must still be an int64."""
BOOKMARK_INTERVAL = 60.0
INCLUDE_OBJECT = ("Metadata", "None", "Object")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def shown(raw: str) -> str:
    """A client's value quoted for a message, shortened: the message must not grow with the input."""
    return repr(raw if len(raw) <= 64 else raw[:64] + "...")


def options_invalid(kind: str, errs: list[ferr.FieldError]) -> errors.StatusError:
    """Invalid request options are a 422 naming the options kind, as kube-apiserver answers."""
    return errors.invalid(kind, "meta.k8s.io", "", errs)


def integer(query: Mapping[str, str], key: str, default: int = 0, *, minimum: int = 0,
            maximum: int = INT64_MAX) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    if len(raw) > 24 or not _INTEGER.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise errors.bad_request(f"invalid value for {key}: {shown(raw)}: must be an integer from {minimum} "
                                 f"to {maximum}")
    return int(raw)


def boolean(query: Mapping[str, str], key: str) -> bool:
    raw = query.get(key) or ""
    if raw.lower() in ("", "false", "0"):
        return False
    if raw.lower() in ("true", "1"):
        return True
    raise errors.bad_request(f"invalid value for {key}: {shown(raw)}: must be true or false")


def pretty(query: Mapping[str, str]) -> bool:
    """`pretty=true`: indented JSON. A value that is not a boolean is ignored, as kube-apiserver ignores it
    (error responses are rendered with this too, so it must never raise)."""
    return (query.get("pretty") or "").lower() in ("true", "1", "t")


def resource_version(query: Mapping[str, str], *, maximum: int = INT64_MAX) -> str:
    """The `resourceVersion` parameter: empty, or a decimal revision that etcd can represent."""
    raw = query.get("resourceVersion", "")
    if raw and (len(raw) > 24 or not raw.isascii() or not raw.isdigit() or int(raw) > maximum):
        raise errors.bad_request(f"invalid value for resourceVersion: {shown(raw)}: must be a non-negative "
                                 f"integer of at most {maximum}")
    return raw


def timeout_seconds(query: Mapping[str, str], default: int) -> int:
    """A watch's `timeoutSeconds`: 0 or absent is the server's default, as in kube-apiserver."""
    return integer(query, "timeoutSeconds") or default


def include_object(query: Mapping[str, str]) -> str:
    raw = query.get("includeObject") or "Metadata"
    if raw not in INCLUDE_OBJECT:
        raise options_invalid("TableOptions", [ferr.not_supported("includeObject", raw, list(INCLUDE_OBJECT))])
    return raw


def dry_run(query: MultiMapping[str], kind: str, more: list[str] | None = None) -> bool:
    values = [*query.getall("dryRun", []), *(more or [])]
    bad = [ferr.not_supported("dryRun", v, ["All"]) for v in values if v != "All"]
    if bad:
        raise options_invalid(kind, bad)
    return bool(values)


def field_validation(query: Mapping[str, str], kind: str) -> FieldValidation:
    raw = query.get("fieldValidation")
    if not raw:
        return FieldValidation.WARN
    for member in FieldValidation:
        if member.value == raw:
            return member
    raise options_invalid(kind, [ferr.not_supported("fieldValidation", raw, ["Ignore", "Strict", "Warn"])])


def list_params(query: Mapping[str, str], *, watch: bool = False) -> ListParams:
    params = ListParams(
        label_selector=query.get("labelSelector", ""),
        field_selector=query.get("fieldSelector", ""),
        limit=integer(query, "limit"),
        continue_token=query.get("continue", ""),
        resource_version=resource_version(query, maximum=MAX_WATCH_RESOURCE_VERSION if watch else INT64_MAX),
        resource_version_match=query.get("resourceVersionMatch", ""),
        allow_bookmarks=boolean(query, "allowWatchBookmarks"),
        bookmark_interval=BOOKMARK_INTERVAL,
        send_initial_events=boolean(query, "sendInitialEvents"),
    )
    _check_watch_list(params, watch, "sendInitialEvents" in query)
    return params


def _check_watch_list(params: ListParams, watch: bool, asked: bool) -> None:
    """kube's ValidateListOptions for watch-list: sendInitialEvents only on a watch, with bookmarks and
    resourceVersionMatch=NotOlderThan; resourceVersionMatch on a watch only with sendInitialEvents."""
    errs: list[ferr.FieldError] = []
    if asked and not watch:
        errs.append(ferr.forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    if watch and params.send_initial_events:
        if not params.allow_bookmarks:
            errs.append(ferr.required("allowWatchBookmarks",
                                      "allowWatchBookmarks must be set to true when sendInitialEvents is set"))
        if params.resource_version_match != "NotOlderThan":
            errs.append(ferr.forbidden("resourceVersionMatch",
                                       "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
    elif watch and params.resource_version_match:
        errs.append(ferr.forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden for watch"))
    if errs:
        raise options_invalid("ListOptions", errs)


# --- request timeout -------------------------------------------------------------------------------------

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """A Go duration (`1m30s`, `500ms`, `0`) in seconds; a bare number is seconds. ValueError when malformed."""
    text = text.strip()
    if not text or len(text) > 64:
        raise ValueError(f"invalid duration {shown(text)}")
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if re.fullmatch(r"\d+(\.\d*)?", body):
        return sign * float(body)
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None:
            raise ValueError(f"invalid duration {shown(text)}")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def request_deadline(query: Mapping[str, str], maximum: float) -> float:
    """How long a non-long-running request may take: the `timeout` parameter when given and shorter, else the
    server's request timeout (kube-apiserver's `WithRequestDeadline`)."""
    raw = query.get("timeout")
    if not raw:
        return maximum
    try:
        value = parse_duration(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise errors.bad_request(f"invalid timeout specified in the request URL: {shown(raw)}")
    return min(value, maximum) if value > 0 else maximum


# --- DeleteOptions -------------------------------------------------------------------------------------

_JSON_TYPES = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "an array",
               dict: "an object", type(None): "null"}


def _wrong_type(path: str, expected: str, value: Any) -> errors.StatusError:
    got = _JSON_TYPES.get(type(value), type(value).__name__)
    return errors.bad_request(f"the DeleteOptions in the request body could not be decoded: {path} must be "
                              f"{expected}, got {got}")


def _typed(body: Mapping[str, Any], key: str, kind: type, expected: str, path: str = "") -> Any:
    """body[key] when absent, null or exactly of JSON type `kind` (a boolean is not an integer), else 400."""
    value = body.get(key)
    if value is not None and type(value) is not kind:
        raise _wrong_type(path + key, expected, value)
    return value


def _body_options(body: Any) -> dict[str, Any]:
    """The DeleteOptions fields of a decoded body, each checked for its type (unknown fields are ignored)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise _wrong_type("the body", "a DeleteOptions object", body)
    kind = _typed(body, "kind", str, "a string")
    if kind not in (None, "", "DeleteOptions"):
        raise errors.bad_request(f"the request body must be a DeleteOptions, not {shown(kind)}")
    _typed(body, "apiVersion", str, "a string")
    grace = _typed(body, "gracePeriodSeconds", int, "an integer")
    if grace is not None and not -INT64_MAX - 1 <= grace <= INT64_MAX:
        raise errors.bad_request("the DeleteOptions in the request body could not be decoded: gracePeriodSeconds "
                                 "does not fit in a 64-bit integer")
    pre = _typed(body, "preconditions", dict, "an object")
    if pre is not None:
        _typed(pre, "uid", str, "a string", "preconditions.")
        _typed(pre, "resourceVersion", str, "a string", "preconditions.")
    dry = _typed(body, "dryRun", list, "an array of strings")
    for item in dry or []:
        if not isinstance(item, str):
            raise _wrong_type("dryRun[]", "a string", item)
    return {"gracePeriodSeconds": grace, "preconditions": pre, "dryRun": dry,
            "propagationPolicy": _typed(body, "propagationPolicy", str, "a string"),
            "orphanDependents": _typed(body, "orphanDependents", bool, "a boolean")}


def accepted_status(query: MultiMapping[str], body: Any) -> bool:
    """Whether a deletion that did not happen at once is answered 202 rather than 200: as kube-apiserver, only
    when the client asked for `orphanDependents: false` (a pending finalizer or a Terminating namespace is 200)."""
    orphan = body.get("orphanDependents") if isinstance(body, dict) else None
    if "orphanDependents" in query:
        orphan = boolean(query, "orphanDependents")
    return orphan is False


def delete_params(query: MultiMapping[str], body: Any) -> DeleteParams:
    """DeleteOptions from the body and the query (the query's value wins where both give one)."""
    opts = _body_options(body)
    grace = opts["gracePeriodSeconds"]
    if "gracePeriodSeconds" in query:
        grace = integer(query, "gracePeriodSeconds", minimum=-INT64_MAX - 1)
    policy = query.get("propagationPolicy") or opts["propagationPolicy"]
    orphan = opts["orphanDependents"]
    if "orphanDependents" in query:
        orphan = boolean(query, "orphanDependents")
    if orphan is not None and policy is not None:
        raise options_invalid("DeleteOptions", [ferr.invalid(
            "propagationPolicy", policy, "orphanDependents and deletionPropagation cannot be both set")])
    if orphan:
        policy = "Orphan"
    dry = dry_run(query, "DeleteOptions", opts["dryRun"])
    pre = opts["preconditions"]
    preconditions = Preconditions(uid=pre.get("uid"), resource_version=pre.get("resourceVersion")) if pre else None
    return DeleteParams(preconditions, policy, grace, dry)
