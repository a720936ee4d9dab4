"""OpenID Connect: the issuer's signing keys, discovered and refreshed in the background, and the
authenticator that accepts its ID tokens (`--oidc-issuer-url`, `--oidc-client-id`, ...)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp
import structlog

from kubellm.service.authn import AuthenticationError, TokenAuthenticator
from kubellm.service.identity import UserInfo
from kubellm.service.tokens import InvalidToken, OIDCVerifier

log = structlog.get_logger(__name__)


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


async def keep_keys_fresh(verifier: OIDCVerifier, ca_file: str | None, every: float = 300) -> None:
    """Fetch the issuer's keys now and every `every` seconds; keep the last good set on failure."""
    while True:
        try:
            verifier.jwks = await fetch_jwks(verifier.issuer, ca_file)
        except (aiohttp.ClientError, ValueError, KeyError, TimeoutError) as exc:
            log.warning("could not fetch the OIDC issuer's keys", issuer=verifier.issuer, error=type(exc).__name__)
        await asyncio.sleep(every)
