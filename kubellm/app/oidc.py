"""OpenID Connect: the issuer's signing keys, discovered and refreshed in the background, and the
authenticator that accepts its ID tokens (`--oidc-issuer-url`, `--oidc-client-id`, ...)."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from kubellm.registry.storage.tasks import Periodic
from kubellm.service.authn import AuthenticationError, TokenAuthenticator
from kubellm.service.identity import UserInfo
from kubellm.service.tokens import InvalidToken, OIDCVerifier


async def fetch_jwks(issuer: str, ca_file: str | None) -> dict[str, Any]:
    ctx: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(issuer.rstrip("/") + "/.well-known/openid-configuration", ssl=ctx) as resp:
            resp.raise_for_status()
            discovery = await resp.json(content_type=None)
        if discovery.get("issuer") != issuer:
            raise ValueError("the discovery document names another issuer")
        async with session.get(discovery["jwks_uri"], ssl=ctx) as resp:
            resp.raise_for_status()
            jwks: dict[str, Any] = await resp.json(content_type=None)
            return jwks


def authenticator(verifier: OIDCVerifier) -> TokenAuthenticator:
    def verify(token: str) -> UserInfo:
        try:
            name, groups = verifier.verify(token)
        except InvalidToken as exc:
            raise AuthenticationError(exc.reason) from None
        return UserInfo(name, groups, {})

    return TokenAuthenticator(verifier.issuer, verify)


def key_refresher(verifier: OIDCVerifier, ca_file: str | None, every: float = 300) -> Periodic:
    """A job that fetches the issuer's keys now and every `every` seconds; the last good set is kept while a
    fetch fails."""

    async def refresh() -> None:
        verifier.jwks = await fetch_jwks(verifier.issuer, ca_file)

    return Periodic("oidc-keys", refresh, every, run_first=True, max_backoff=every)
