"""Audit: `audit.k8s.io/v1` Events written as JSON lines under a policy, as kube-apiserver's log backend.

The policy is kube's `audit.k8s.io/v1` Policy: rules are tried in order and the first that matches
the request sets the level (None, Metadata, Request, RequestResponse); without a match nothing is
logged. Request and response bodies (JSON or YAML) are recorded at the Request and RequestResponse
levels, with every secret field redacted: the fields each resource's type declares secret
(`kubellm.apis.secrets`), also inside kubectl's last-applied annotation, list items, table rows and
JSON patch operations, and the password and token of `/login` and TokenReview bodies.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
import yaml
from aiohttp import web
from aiohttp.typedefs import Middleware

from kubellm.apis import errors, secrets
from kubellm.registry.registry import ALL_RESOURCES
from kubellm.server import login, negotiation, reviews
from kubellm.server.handlers import STREAM_STATUS
from kubellm.server.requestinfo import RequestInfo
from kubellm.service.identity import UserInfo

LEVELS = ("None", "Metadata", "Request", "RequestResponse")

ABORTED = {"metadata": {}, "status": "Failure", "reason": "ClientDisconnected",
           "message": "the client closed the connection before the response was sent"}
"""responseStatus of a request whose client went away before it was answered (no code: nothing was sent)."""

SecretPaths = tuple[secrets.Path, ...]
RESOURCE_SECRETS: dict[tuple[str, str], SecretPaths] = {
    **{(info.group, info.plural): info.secret_fields for info in ALL_RESOURCES if info.secret_fields},
    (reviews.AUTHENTICATION, "tokenreviews"): reviews.TOKEN_REVIEW_SECRETS,
}
PATH_SECRETS: dict[str, SecretPaths] = {"/login": login.SECRET_FIELDS}


def _pointer_path(pointer: object) -> secrets.Path | None:
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        return None
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/"))


def _matches(path: secrets.Path, secret: secrets.Path) -> bool:
    return len(path) == len(secret) and all(s in ("*", p) for p, s in zip(path, secret))


def _redact_patch(ops: list[Any], paths: SecretPaths) -> list[Any]:
    """JSON patch operations: a value written at or inside a secret path is redacted; a value written
    above one (e.g. the whole spec) has the secret redacted inside it."""
    out: list[Any] = []
    for op in ops:
        target = _pointer_path(op.get("path")) if isinstance(op, dict) else None
        if target is None or "value" not in op:
            out.append(op)
            continue
        value = op["value"]
        if target == ("metadata", "annotations", secrets.LAST_APPLIED):
            wrapped = {"metadata": {"annotations": {secrets.LAST_APPLIED: value}}}
            value = secrets.redact_secrets(wrapped, paths)["metadata"]["annotations"].get(secrets.LAST_APPLIED)
        for secret in paths:
            if len(target) >= len(secret) and _matches(target[:len(secret)], secret):
                value = secrets.REDACTED
                break
            if len(target) < len(secret) and _matches(target, secret[:len(target)]):
                value = secrets.redact_secrets({"v": value}, [("v", *secret[len(target):])])["v"]
        out.append({**op, "value": value})
    return out


def redact(body: Any, paths: SecretPaths) -> Any:
    """`body` (an object, a list, a Table or a JSON patch) with the secret fields redacted."""
    if not paths:
        return body
    if isinstance(body, list):
        return _redact_patch(body, paths)
    if not isinstance(body, dict):
        return body
    if isinstance(body.get("items"), list):
        return {**body, "items": [redact(i, paths) for i in body["items"]]}
    if body.get("kind") == "Table" and isinstance(body.get("rows"), list):
        return {**body, "rows": [{**r, "object": redact(r.get("object"), paths)} if isinstance(r, dict) else r
                                 for r in body["rows"]]}
    return secrets.redact_secrets(body, paths)


def secret_paths(info: RequestInfo) -> SecretPaths:
    if info.is_resource_request:
        return RESOURCE_SECRETS.get((info.api_group, info.resource), ())
    return PATH_SECRETS.get(info.path, ())


@dataclass(frozen=True)
class Rule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(group, resources) pairs; resources may be `plural`, `plural/sub` or `*`."""
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    def matches(self, user: UserInfo | None, info: RequestInfo) -> bool:
        name = user.name if user else "system:anonymous"
        groups = user.groups if user else ("system:unauthenticated",)
        if self.users and name not in self.users:
            return False
        if self.user_groups and not set(groups) & set(self.user_groups):
            return False
        if self.verbs and info.verb not in self.verbs:
            return False
        if self.resources or self.namespaces:
            if not info.is_resource_request:
                return False
            if self.namespaces and info.namespace not in self.namespaces:
                return False
            if self.resources and not any(self._resource_matches(g, rs, info) for g, rs in self.resources):
                return False
        if self.non_resource_urls:
            if info.is_resource_request:
                return False
            return any(fnmatch.fnmatchcase(info.path, u) for u in self.non_resource_urls)
        return True

    @staticmethod
    def _resource_matches(group: str, resources: tuple[str, ...], info: RequestInfo) -> bool:
        if group != "*" and group != info.api_group:
            return False
        full = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        return not resources or any(r in ("*", info.resource, full) for r in resources)


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]

    def level(self, user: UserInfo | None, info: RequestInfo) -> str:
        for rule in self.rules:
            if rule.matches(user, info):
                return rule.level
        return "None"

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> Policy:
        rules = []
        for i, r in enumerate(doc.get("rules") or []):
            level = r.get("level")
            if level not in LEVELS:
                raise ValueError(f"rules[{i}].level: Unsupported value: {level!r}: supported values: "
                                 + ", ".join(f'"{lv}"' for lv in LEVELS))
            resources = tuple((str(g.get("group", "")), tuple(g.get("resources") or [])) for g in
                              r.get("resources") or [])
            rules.append(Rule(level, tuple(r.get("users") or []), tuple(r.get("userGroups") or []),
                              tuple(r.get("verbs") or []), resources, tuple(r.get("namespaces") or []),
                              tuple(r.get("nonResourceURLs") or [])))
        return cls(tuple(rules))

    @classmethod
    def load(cls, path: Path) -> Policy:
        return cls.parse(yaml.safe_load(path.read_text()) or {})


DEFAULT_POLICY = Policy((Rule("None", non_resource_urls=("/healthz*", "/livez*", "/readyz*", "/version")),
                         Rule("Metadata")))


def _user(user: UserInfo | None) -> dict[str, object]:
    if user is None:
        return {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
    return user.to_json()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _body(raw: bytes | None, content_type: str | None, paths: SecretPaths) -> Any:
    """A request or response body as the audit log records it: decoded (JSON or YAML, large YAML off the
    event loop, with the same bounds as the handlers), secrets redacted; None when it cannot be decoded."""
    if not raw:
        return None
    try:
        return redact(await negotiation.decode_body_async(raw, content_type), paths)
    except errors.StatusError:
        return None


class AuditLog:
    def __init__(self, path: Path, policy: Policy = DEFAULT_POLICY) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file: IO[bytes] = os.fdopen(fd, "ab")
        self.policy = policy

    def close(self) -> None:
        self._file.close()

    def write(self, event: dict[str, Any]) -> None:
        self._file.write(orjson.dumps(event) + b"\n")
        self._file.flush()

    def middleware(self) -> Middleware:
        @web.middleware
        async def audit(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            received = _now()
            code: int | None = 500
            resp: web.StreamResponse | None = None
            try:
                resp = await handler(request)
                code = resp.status
                return resp
            except web.HTTPException as exc:
                code = exc.status
                raise
            except asyncio.CancelledError:
                # The client went away: a watch keeps the status it was sent; anything else has no answer,
                # and is recorded as aborted, not as a server error.
                code = request.get(STREAM_STATUS)
                raise
            except Exception as exc:
                code = getattr(exc, "code", 500)
                raise
            finally:
                await self._record(request, received, code, resp)

        return audit

    async def _record(self, request: web.Request, received: str, code: int | None,
                      resp: web.StreamResponse | None) -> None:
        info: RequestInfo | None = request.get("info")
        if info is None:
            return
        user: UserInfo | None = request.get("user")
        level = self.policy.level(request.get("authenticated_user") or user, info)  # who asked, as kube
        if level == "None":
            return
        event: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": str(uuid.uuid4()),
            "stage": "ResponseComplete", "requestURI": request.path_qs, "verb": info.verb,
            "user": _user(request.get("authenticated_user") or user),
            "sourceIPs": [request.remote or ""], "userAgent": request.headers.get("User-Agent", ""),
            "responseStatus": {"metadata": {}, "code": code} if code is not None else ABORTED,
            "requestReceivedTimestamp": received, "stageTimestamp": _now(),
        }
        if code is None:
            event["annotations"] = {"kubellm.io/client-aborted": "true"}
        if request.get("authenticated_user") is not None and user is not None:
            event["impersonatedUser"] = _user(user)
        if info.is_resource_request:
            ref = {"resource": info.resource, "namespace": info.namespace, "name": info.name,
                   "apiGroup": info.api_group, "apiVersion": info.api_version, "subresource": info.subresource}
            event["objectRef"] = {k: v for k, v in ref.items() if v}
        if level in ("Request", "RequestResponse") and request.method in ("POST", "PUT", "PATCH", "DELETE"):
            try:
                body = await request.read()  # already read by the handler: aiohttp keeps the bytes
            except Exception:
                body = b""
            if body:
                event["requestObject"] = await _body(body, request.headers.get("Content-Type"), secret_paths(info))
        if level == "RequestResponse" and isinstance(resp, web.Response) and resp.body is not None:
            raw = resp.body if isinstance(resp.body, bytes) else None
            if (resp.content_type or "").endswith("json"):
                event["responseObject"] = await _body(raw, "application/json", secret_paths(info))
        self.write(event)
