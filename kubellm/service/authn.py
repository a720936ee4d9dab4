"""Authenticators: who is making a request, from its client certificate, front-proxy headers or token.

Nothing here knows HTTP: the server hands each request's `Credentials` (the verified peer certificate
and the headers) to `Chain.authenticate`, which returns a `UserInfo` or None (anonymous).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID

from kubellm.service.identity import UserInfo


@dataclass(frozen=True)
class Credentials:
    peer_certificate: bytes | None = None
    """DER of the client certificate the TLS layer verified against one of the trusted client CAs."""
    headers: Mapping[str, str] = field(default_factory=dict)
    header_values: Callable[[str], list[str]] = lambda _name: []
    """All values of a header (front-proxy headers may repeat)."""


class AuthenticationError(Exception):
    """Credentials were presented but are not acceptable (401)."""


def _names(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def _issued_by(cert: x509.Certificate, cas: Sequence[x509.Certificate]) -> bool:
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, Exception):
            continue
        return True
    return False


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


@dataclass(frozen=True)
class X509Authenticator:
    """A client certificate signed by the client CA: CN is the user, each O a group."""

    client_cas: tuple[x509.Certificate, ...]

    def authenticate(self, creds: Credentials) -> UserInfo | None:
        if creds.peer_certificate is None:
            return None
        cert = x509.load_der_x509_certificate(creds.peer_certificate)
        if not _issued_by(cert, self.client_cas):
            return None
        cn = _names(cert, NameOID.COMMON_NAME)
        if not cn or not cn[0]:
            raise AuthenticationError("client certificate has no common name")
        return UserInfo(cn[0], tuple(_names(cert, NameOID.ORGANIZATION_NAME)), {})


@dataclass(frozen=True)
class RequestHeaderAuthenticator:
    """Front-proxy headers (the aggregator's X-Remote-User/Group/Extra-*), trusted only when the request
    came with a certificate signed by the request-header CA and, if names are configured, one of them."""

    cas: tuple[x509.Certificate, ...]
    allowed_names: tuple[str, ...] = ()
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)

    def authenticate(self, creds: Credentials) -> UserInfo | None:
        if creds.peer_certificate is None or not self.cas:
            return None
        cert = x509.load_der_x509_certificate(creds.peer_certificate)
        if not _issued_by(cert, self.cas):
            return None
        cn = _names(cert, NameOID.COMMON_NAME)
        if self.allowed_names and (not cn or cn[0] not in self.allowed_names):
            raise AuthenticationError("the front-proxy certificate is not one of the allowed names")
        user = next((creds.headers[h] for h in self.username_headers if creds.headers.get(h)), "")
        if not user:
            return None
        groups: list[str] = []
        for h in self.group_headers:
            groups.extend(v for v in creds.header_values(h) if v)
        extra: dict[str, tuple[str, ...]] = {}
        for name in creds.headers:
            for prefix in self.extra_prefixes:
                if name.lower().startswith(prefix.lower()):
                    key = unquote(name[len(prefix):]).lower()  # the proxy percent-encodes keys
                    extra[key] = tuple(creds.header_values(name))
        return UserInfo(user, tuple(groups), extra)


class Authenticator(Protocol):
    def authenticate(self, creds: Credentials) -> UserInfo | None: ...


@dataclass(frozen=True)
class Chain:
    """The first authenticator that recognises the credentials decides; none means anonymous."""

    authenticators: tuple[Authenticator, ...]

    def authenticate(self, creds: Credentials) -> UserInfo | None:
        for a in self.authenticators:
            user = a.authenticate(creds)
            if user is not None:
                return _with_authenticated_group(user)
        return None


def _with_authenticated_group(user: UserInfo) -> UserInfo:
    if "system:authenticated" in user.groups:
        return user
    return UserInfo(user.name, (*user.groups, "system:authenticated"), user.extra)


def bearer_token(creds: Credentials) -> str:
    scheme, _, token = creds.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def unverified_issuer(token: str) -> str:
    """The `iss` claim of a JWT, read without verifying anything: only to pick the authenticator."""
    parts = token.split(".")
    if len(parts) != 3:
        return ""
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return ""
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss if isinstance(iss, str) else ""


@dataclass(frozen=True)
class TokenAuthenticator:
    """`Authorization: Bearer <token>` issued by `issuer` (KubeLLM's own, or an OIDC provider); a token
    from this issuer that fails verification is refused (401); tokens of other issuers are left to the
    next authenticator."""

    issuer: str
    verify: Callable[[str], UserInfo | None]
    """The identity, None for a token this authenticator does not own after all, AuthenticationError if bad."""

    def authenticate(self, creds: Credentials) -> UserInfo | None:
        token = bearer_token(creds)
        if not token or unverified_issuer(token) != self.issuer:
            return None
        return self.verify(token)

