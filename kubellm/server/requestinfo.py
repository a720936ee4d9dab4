"""RequestInfo: what a request is about, parsed from its method, path and query (as
k8s.io/apiserver/pkg/endpoints/request/requestinfo.go)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class RequestInfo:
    is_resource_request: bool
    path: str
    verb: str
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


NAMESPACE_SUBRESOURCES = ("status", "finalize")


def parse(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    segments = tuple(p for p in path.strip("/").split("/") if p)
    lower = method.lower()
    if len(segments) >= 2 and segments[0] == "api":  # the core (legacy) group: /api/v1/...
        group, version, rest = "", segments[1], list(segments[2:])
    elif len(segments) >= 3 and segments[0] == "apis":
        group, version, rest = segments[1], segments[2], list(segments[3:])
    else:
        return RequestInfo(False, path, lower)
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces" and not (len(rest) == 3 and rest[2] in NAMESPACE_SUBRESOURCES):
        namespace = rest[1]
        rest = rest[2:]
    if not rest:
        return RequestInfo(False, path, lower, group, version)
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if method == "GET" or method == "HEAD":
        if name:
            verb = "get"
        else:
            verb = "watch" if _truthy(query.get("watch")) else "list"
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    else:
        verb = _METHOD_VERBS.get(method, lower)
    return RequestInfo(True, path, verb, group, version, namespace, resource, subresource, name, tuple(rest))
