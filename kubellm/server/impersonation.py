"""Impersonation, as kube-apiserver's filter: `Impersonate-User`, `Impersonate-Group` (repeatable),
`Impersonate-Uid` and `Impersonate-Extra-<key>` headers make a request act as another identity
(`kubectl --as`, `--as-group`, `--as-uid`).

Each part is authorized with the `impersonate` verb for the authenticated user: `users` (or, for
`system:serviceaccount:<ns>:<name>`, `serviceaccounts` in that namespace), `groups`, `uids` and
`userextras/<key>`, all in the core group ("") and named by the value, as Kubernetes does. A denial
is 403 with kube's wording. The request then runs as the impersonated user, which gets
`system:authenticated` (and a service account its groups when none are asked for); the audit log
records both identities (`user` and `impersonatedUser`). Groups, uid or extras without a user are 400.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDictProxy

from kubellm.apis import errors
from kubellm.server.authentication import is_public
from kubellm.server.authorization import Authorization
from kubellm.service.identity import (
    ALL_AUTHENTICATED,
    ANONYMOUS,
    SERVICE_ACCOUNTS_GROUP,
    UserInfo,
    split_service_account_username,
)
from kubellm.service.rbac.attributes import Attributes

USER = "Impersonate-User"
GROUP = "Impersonate-Group"
UID = "Impersonate-Uid"
EXTRA_PREFIX = "Impersonate-Extra-"
MAX_VALUES = 64
"""At most this many groups or extra values may be impersonated at once."""


def _checks(requester: UserInfo, target: UserInfo, uid: str) -> list[Attributes]:
    out: list[Attributes] = []
    sa = split_service_account_username(target.name)
    if sa is not None:
        out.append(Attributes(requester, "impersonate", "", "v1", "serviceaccounts", name=sa[1], namespace=sa[0]))
    else:
        out.append(Attributes(requester, "impersonate", "", "v1", "users", name=target.name))
    out.extend(Attributes(requester, "impersonate", "", "v1", "groups", name=g) for g in target.groups)
    if uid:
        out.append(Attributes(requester, "impersonate", "", "v1", "uids", name=uid))
    for key, values in target.extra.items():
        out.extend(Attributes(requester, "impersonate", "", "v1", "userextras", subresource=key, name=v)
                   for v in values)
    return out


def requested(headers: CIMultiDictProxy[str]) -> tuple[str, list[str], str, dict[str, tuple[str, ...]]] | None:
    """(user, groups, uid, extra) asked for by the headers, or None when the request impersonates nobody."""
    user = headers.get(USER, "")
    groups = [g for g in headers.getall(GROUP, []) if g]
    uid = headers.get(UID, "")
    extra: dict[str, tuple[str, ...]] = {}
    for name in headers:
        if name.lower().startswith(EXTRA_PREFIX.lower()):
            key = name[len(EXTRA_PREFIX):].lower()
            extra[key] = tuple(headers.getall(name, []))
    if not user and not groups and not uid and not extra:
        return None
    if not user:
        raise errors.bad_request(f"requested [{', '.join([*groups, uid, *extra])}] without impersonating a user")
    if len(groups) > MAX_VALUES or sum(len(v) for v in extra.values()) > MAX_VALUES:
        raise errors.bad_request(f"at most {MAX_VALUES} groups and {MAX_VALUES} extra values may be impersonated")
    return user, groups, uid, extra


def impersonated(user: str, groups: list[str], uid: str, extra: dict[str, tuple[str, ...]]) -> UserInfo:
    """The identity a request runs as: kube adds system:authenticated (not for anonymous), and a service
    account asked for without groups gets the service-account groups."""
    out = list(groups)
    sa = split_service_account_username(user)
    if sa is not None and not groups:
        out += [SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{sa[0]}"]
    if user != ANONYMOUS and ALL_AUTHENTICATED not in out:
        out.append(ALL_AUTHENTICATED)
    return UserInfo(user, tuple(dict.fromkeys(out)), extra, uid)


class Impersonation:
    def __init__(self, authorization: Authorization) -> None:
        self.authorization = authorization

    def middleware(self) -> Middleware:
        @web.middleware
        async def impersonate(request: web.Request,
                              handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            if is_public(request.path):
                return await handler(request)
            asked = requested(request.headers)
            if asked is None:
                return await handler(request)
            requester: UserInfo = request["user"]
            name, groups, uid, extra = asked
            target = UserInfo(name, tuple(groups), extra, uid)
            for attrs in _checks(requester, target, uid):
                await self.authorization.check(attrs)
            request["authenticated_user"] = requester
            request["user"] = impersonated(name, groups, uid, extra)
            return await handler(request)

        return impersonate
