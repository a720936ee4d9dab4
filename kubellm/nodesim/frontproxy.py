"""Who is asking the metrics API: the cluster's aggregator, proving it with its front-proxy client
certificate, says so in request headers (as every aggregated API server reads it); and whether they may:
a SubjectAccessReview to the cluster, cached for a few seconds.

The settings (the front-proxy CA, the allowed client names, the header names) come from the cluster's
`kube-system/extension-apiserver-authentication` ConfigMap, as kube-apiserver publishes them.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubellm.client import AsyncDynamicClient, ResourceRef

CONFIGMAPS = ResourceRef("", "v1", "configmaps", "ConfigMap", namespaced=True)
SUBJECT_ACCESS_REVIEWS = ResourceRef("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview",
                                     namespaced=False)
AUTH_CONFIGMAP = "extension-apiserver-authentication"
CACHE_SECONDS = 10.0


class Unauthenticated(Exception):
    pass


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class FrontProxySettings:
    ca_pem: str
    allowed_names: tuple[str, ...]
    username_headers: tuple[str, ...]
    group_headers: tuple[str, ...]

    def ssl_context(self, cert_file: str, key_file: str) -> ssl.SSLContext:
        """The serving context: our certificate; client certificates checked against the front-proxy CA
        (optional at the TLS level, so health checks need none; required by `authenticate`)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert_file, key_file)
        ctx.load_verify_locations(cadata=self.ca_pem)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    def authenticate(self, request: web.Request) -> User:
        peer: Any = request.transport.get_extra_info("peercert") if request.transport else None
        if not peer:
            raise Unauthenticated("no client certificate from the front-proxy CA")
        names = [value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"]
        if self.allowed_names and not set(names) & set(self.allowed_names):
            raise Unauthenticated(f"client certificate {names} is not an allowed front proxy")
        user = next((request.headers[h] for h in self.username_headers if request.headers.get(h)), "")
        if not user:
            raise Unauthenticated("no user in the front-proxy headers")
        groups = tuple(g for h in self.group_headers for g in request.headers.getall(h, []))
        return User(user, groups)


def _list(data: dict[str, str], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = data.get(key)
    if not raw:
        return default
    value = json.loads(raw)
    return tuple(str(v) for v in value) if isinstance(value, list) else default


async def read_settings(client: AsyncDynamicClient) -> FrontProxySettings:
    cm = await client.resource_for(CONFIGMAPS, "kube-system").get(AUTH_CONFIGMAP, timeout=10)
    data = cm.get("data") or {}
    ca = data.get("requestheader-client-ca-file", "")
    if not ca:
        raise RuntimeError(f"kube-system/{AUTH_CONFIGMAP} has no requestheader-client-ca-file: the cluster's "
                           "kube-apiserver runs without --requestheader-client-ca-file (no aggregation)")
    return FrontProxySettings(ca, _list(data, "requestheader-allowed-names", ()),
                              _list(data, "requestheader-username-headers", ("X-Remote-User",)),
                              _list(data, "requestheader-group-headers", ("X-Remote-Group",)))


class Authorizer:
    """SubjectAccessReviews for resource requests, answers cached for `CACHE_SECONDS`."""

    def __init__(self, client: AsyncDynamicClient) -> None:
        self.client = client
        self._cache: dict[tuple[Any, ...], tuple[float, bool, str]] = {}

    async def allowed(self, user: User, attributes: dict[str, str]) -> tuple[bool, str]:
        key = (user, tuple(sorted(attributes.items())))
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        review = await self.client.resource_for(SUBJECT_ACCESS_REVIEWS).create(
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
             "spec": {"user": user.name, "groups": list(user.groups), "resourceAttributes": attributes}},
            timeout=10)
        status = review.get("status") or {}
        answer = bool(status.get("allowed")), str(status.get("reason") or "")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + CACHE_SECONDS, *answer)
        return answer
