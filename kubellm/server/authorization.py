"""The authorization filter: RBAC decides every authenticated request but health and version; a denial is
403 Forbidden with kube-apiserver's message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from kubellm.apis import errors
from kubellm.server.authentication import is_public
from kubellm.server.requestinfo import RequestInfo
from kubellm.service.identity import UserInfo
from kubellm.service.rbac import Authorizer
from kubellm.service.rbac.attributes import Attributes


def attributes(user: UserInfo, info: RequestInfo, method: str) -> Attributes:
    if info.is_resource_request:
        return Attributes(user=user, verb=info.verb, api_group=info.api_group, api_version=info.api_version,
                          resource=info.resource, subresource=info.subresource, name=info.name,
                          namespace=info.namespace)
    return Attributes.non_resource(user, method.lower() if method != "HEAD" else "get", info.path)


def forbidden(attrs: Attributes) -> errors.StatusError:
    user = attrs.user.name
    if not attrs.is_resource_request:
        return errors.StatusError(403, "Forbidden",
                                  f'forbidden: User "{user}" cannot {attrs.verb} path "{attrs.path}"', {})
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return errors.forbidden(user, attrs.verb, resource, attrs.api_group, attrs.name, attrs.namespace)


class DelegatedAuthorizer(Protocol):
    async def allowed(self, attrs: Attributes) -> bool: ...


class Authorization:
    """Local RBAC first; when it does not allow and a host cluster is configured, its SubjectAccessReview."""

    def __init__(self, authorizer: Authorizer, delegate: DelegatedAuthorizer | None = None) -> None:
        self.authorizer = authorizer
        self.delegate = delegate

    async def check(self, attrs: Attributes) -> None:
        if self.authorizer.authorize(attrs).allowed:
            return
        if self.delegate is not None and await self.delegate.allowed(attrs):
            return
        raise forbidden(attrs)

    def middleware(self) -> Middleware:
        @web.middleware
        async def authorize(request: web.Request,
                            handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            if is_public(request.path):
                return await handler(request)
            info: RequestInfo = request["info"]
            user: UserInfo = request["user"]
            await self.check(attributes(user, info, request.method))
            return await handler(request)

        return authorize
