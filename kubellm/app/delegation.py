"""Delegation to a host cluster: TokenReview for bearer tokens the server does not know, and
SubjectAccessReview when local RBAC does not allow a request (`--authentication-kubeconfig`,
`--authorization-kubeconfig`). Answers are cached briefly, as kube's delegating authenticators do."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from kubernetes import client, config

from kubellm.service.identity import UserInfo
from kubellm.service.rbac.attributes import Attributes

log = structlog.get_logger(__name__)


class _TTLCache:
    def __init__(self, ttl: float, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._items: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> tuple[bool, Any]:
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: str, value: Any) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.ttl, value)


def _api_client(kubeconfig: Path) -> Any:
    return config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]


class DelegatedAuthentication:
    def __init__(self, kubeconfig: Path, ttl: float = 10.0) -> None:
        self.api = client.AuthenticationV1Api(_api_client(kubeconfig))
        self.cache = _TTLCache(ttl)

    async def authenticate(self, token: str) -> UserInfo | None:
        key = hashlib.sha256(token.encode()).hexdigest()  # never keep tokens themselves
        hit, value = self.cache.get(key)
        if hit:
            return value  # type: ignore[no-any-return]
        review = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
        try:
            result = await asyncio.to_thread(self.api.create_token_review, review)
        except Exception as exc:
            log.warning("delegated TokenReview failed", error=type(exc).__name__)
            return None
        status = result.status
        user = None
        if status is not None and status.authenticated and status.user is not None:
            extra = {k: tuple(v) for k, v in (status.user.extra or {}).items()}
            user = UserInfo(status.user.username or "", tuple(status.user.groups or ()), extra, status.user.uid or "")
        self.cache.put(key, user)
        return user


class DelegatedAuthorization:
    def __init__(self, kubeconfig: Path, ttl: float = 10.0) -> None:
        self.api = client.AuthorizationV1Api(_api_client(kubeconfig))
        self.cache = _TTLCache(ttl)

    async def allowed(self, attrs: Attributes) -> bool:
        u = attrs.user
        key = repr((u.name, u.uid, u.groups, sorted(u.extra.items()), attrs.verb, attrs.api_group, attrs.resource,
                    attrs.subresource, attrs.name, attrs.namespace, attrs.is_resource_request, attrs.path))
        hit, value = self.cache.get(key)
        if hit:
            return bool(value)
        spec = client.V1SubjectAccessReviewSpec(user=u.name, uid=u.uid or None, groups=list(u.groups) or None,
                                                extra={k: list(v) for k, v in u.extra.items()} or None)
        if attrs.is_resource_request:
            spec.resource_attributes = client.V1ResourceAttributes(
                verb=attrs.verb, group=attrs.api_group, version=attrs.api_version, resource=attrs.resource,
                subresource=attrs.subresource or None, name=attrs.name or None, namespace=attrs.namespace or None)
        else:
            spec.non_resource_attributes = client.V1NonResourceAttributes(path=attrs.path, verb=attrs.verb)
        try:
            result = await asyncio.to_thread(self.api.create_subject_access_review,
                                             client.V1SubjectAccessReview(spec=spec))
        except Exception as exc:
            log.warning("delegated SubjectAccessReview failed", error=type(exc).__name__)
            return False
        allowed = bool(result.status and result.status.allowed)
        self.cache.put(key, allowed)
        return allowed


@dataclass(frozen=True)
class FrontProxySettings:
    """What the host cluster's aggregator uses to call extension servers, as published in
    `kube-system/extension-apiserver-authentication`."""

    client_ca_pem: str
    allowed_names: tuple[str, ...]
    username_headers: tuple[str, ...]
    group_headers: tuple[str, ...]
    extra_header_prefixes: tuple[str, ...]


def _json_list(data: dict[str, str], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = data.get(key)
    if not raw:
        return default
    value = json.loads(raw)
    return tuple(str(v) for v in value) if isinstance(value, list) else default


def read_front_proxy_settings(kubeconfig: Path) -> FrontProxySettings | None:
    """The request-header settings from the host cluster, or None when it publishes none."""
    api = client.CoreV1Api(_api_client(kubeconfig))
    try:
        cm = api.read_namespaced_config_map("extension-apiserver-authentication", "kube-system")
    except Exception as exc:
        log.warning("cannot read kube-system/extension-apiserver-authentication; front-proxy requests will "
                    "not be authenticated", error=type(exc).__name__)
        return None
    data: dict[str, str] = cm.data or {}
    ca = data.get("requestheader-client-ca-file", "")
    if not ca:
        return None
    return FrontProxySettings(
        ca, _json_list(data, "requestheader-allowed-names", ()),
        _json_list(data, "requestheader-username-headers", ("X-Remote-User",)),
        _json_list(data, "requestheader-group-headers", ("X-Remote-Group",)),
        _json_list(data, "requestheader-extra-headers-prefix", ("X-Remote-Extra-",)))


class HostNamespaces:
    """The host cluster's namespaces, for NamespaceLifecycle behind the aggregator: objects go only into
    namespaces the host has and is not deleting (as the host refuses them for its own resources). Answers
    are cached briefly; the host's service account needs `get` on namespaces."""

    provision = False

    def __init__(self, kubeconfig: Path, ttl: float = 5.0) -> None:
        self.api = client.CoreV1Api(_api_client(kubeconfig))
        self.cache = _TTLCache(ttl)

    async def lookup(self, name: str) -> dict[str, Any] | None:
        hit, value = self.cache.get(name)
        if hit:
            return value  # type: ignore[no-any-return]
        try:
            ns = await asyncio.to_thread(self.api.read_namespace, name, _request_timeout=5)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            found = None
        else:
            deleted = ns.metadata.deletion_timestamp if ns.metadata is not None else None
            found = {"metadata": {"name": name, **({"deletionTimestamp": str(deleted)} if deleted else {})}}
        self.cache.put(name, found)
        return found
