"""The authentication filter: every request but the public paths (health, version, login, console files) needs an
identity, else 401."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from kubellm.apis import errors
from kubellm.service.authn import AuthenticationError, Chain, Credentials, bearer_token
from kubellm.service.identity import UserInfo

PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/login", "/logout", "/console")
"""Paths served without an identity: health, version, logging in and out, and the web console's static files
(its API calls carry the bearer token from /login like any other client's)."""


def is_public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


def peer_certificate(request: web.Request) -> bytes | None:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der


class TokenDelegate(Protocol):
    async def authenticate(self, token: str) -> UserInfo | None: ...


class Authentication:
    def __init__(self, chain: Chain, delegate: TokenDelegate | None = None) -> None:
        self.chain = chain
        self.delegate = delegate
        # A connection presents the same certificate on every request: identities from certificates
        # alone are cached (headers and tokens are read on every request).
        self._by_certificate = functools.lru_cache(maxsize=1024)(self._certificate_only)

    def _certificate_only(self, der: bytes) -> UserInfo | None:
        return self.chain.authenticate(Credentials(peer_certificate=der))

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        der = peer_certificate(request)
        headers = request.headers
        if der is not None and "Authorization" not in headers:
            # A client certificate alone names the user (headers never override it); only a front-proxy
            # certificate, which names nobody by itself, goes on to read the request headers.
            by_cert = self._by_certificate(der)
            if by_cert is not None:
                return by_cert
        creds = Credentials(peer_certificate=der, headers=headers,
                            header_values=lambda name: headers.getall(name, []))
        user = self.chain.authenticate(creds)
        token = bearer_token(creds)
        if user is None and token:
            if self.delegate is not None:
                user = await self.delegate.authenticate(token)
            if user is None:
                raise AuthenticationError("unrecognised bearer token")  # never anonymous
        return user

    def authenticate_token(self, token: str) -> UserInfo | None:
        """For TokenReview: the identity behind a bearer token, or None."""
        try:
            return self.chain.authenticate(Credentials(headers={"Authorization": f"Bearer {token}"}))
        except AuthenticationError:
            return None

    def middleware(self) -> Middleware:
        @web.middleware
        async def authenticate(request: web.Request,
                               handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            if is_public(request.path):
                return await handler(request)
            try:
                user = await self.authenticate(request)
            except AuthenticationError:
                user = None
            if user is None:
                raise errors.unauthorized()
            request["user"] = user
            return await handler(request)

        return authenticate
