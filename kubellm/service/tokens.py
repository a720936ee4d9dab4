"""KubeLLM-issued bearer tokens: JWTs signed with a rotating key ring.

This is the only module that imports python-jose.

Decisions:

- **HS256** with 32 random bytes per key (HS384/HS512 with 48/64 bytes are accepted too). Only this
  server issues and verifies these tokens, so a shared secret is enough, and it keeps keys small and
  verification cheap; the key ring is meant to be stored encrypted (`KeyRing.to_dict`). Should another
  party ever need to verify tokens, switch to ES256 and publish the public keys.
- The key is chosen by the header's `kid` only, and the signature is checked with
  `algorithms=[that key's algorithm]`: `alg: none`, another HMAC size or an asymmetric algorithm
  (key confusion) never verify. The header's `alg` must also equal the key's algorithm.
- Claims: `iss, aud, sub, uid, iat, nbf, exp, jti`. A token names its user and that user's UID, never
  groups: the verifier's caller reads the groups from the current User object on every request, and
  refuses a token whose UID is not the current user's (a user deleted and created again).
  exp/nbf/iat are checked against the `now` passed in, with a small leeway (30 s by default) for clock
  skew between replicas.
- Rotation: `KeyRing.rotate(now)` makes a new active key; the previous one stops signing and keeps
  verifying for `verify_grace` seconds, which must cover the token lifetime (checked by TokenIssuer).
- Revocation goes through the `Revocations` protocol (by `jti`); `InMemoryRevocations` forgets an
  entry once the token it names could no longer verify anyway (`TokenIssuer.accepted_until`).
- Every failure is `InvalidToken(reason)`, where reason is a short fixed string meant for logs and
  audit; it never contains the token or any claim value. The HTTP layer answers 401 either way.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from jose import jws
from jose.exceptions import JOSEError

__all__ = [
    "Claims",
    "InMemoryRevocations",
    "InvalidToken",
    "KeyRing",
    "OIDCVerifier",
    "Revocations",
    "SigningKey",
    "TokenIssuer",
]

MIN_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
"""Supported algorithms and the secret size each needs (the hash output size, RFC 7518 §3.2)."""

MAX_TOKEN_LENGTH = 8192
"""Longer bearer tokens are refused before any parsing."""


class InvalidToken(Exception):
    """A token that must not authenticate anyone. `reason` is safe to log (no token, no claims)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, read before anything is verified (to pick the key); InvalidToken
    for anything that is not a bounded three-part token with a JSON object header."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise InvalidToken("malformed token")
    try:
        header = json.loads(_b64decode(token.split(".", 1)[0]))
    except (ValueError, RecursionError):
        raise InvalidToken("malformed token") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed token")
    return header


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class SigningKey:
    """One key of the ring. Active while `retired_at` is None; verifies until `expires_at` (if set)."""

    kid: str
    algorithm: str
    secret: bytes = field(repr=False)
    created_at: float
    retired_at: float | None = None
    expires_at: float | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in MIN_SECRET_BYTES:
            raise ValueError(f"unsupported signing algorithm {self.algorithm!r}")
        if len(self.secret) < MIN_SECRET_BYTES[self.algorithm]:
            raise ValueError(f"{self.algorithm} needs a secret of at least {MIN_SECRET_BYTES[self.algorithm]} bytes")
        if not self.kid:
            raise ValueError("a signing key needs a kid")

    @classmethod
    def generate(cls, now: float, algorithm: str = "HS256") -> SigningKey:
        if algorithm not in MIN_SECRET_BYTES:
            raise ValueError(f"unsupported signing algorithm {algorithm!r}")
        return cls(
            kid=secrets.token_urlsafe(12),
            algorithm=algorithm,
            secret=secrets.token_bytes(MIN_SECRET_BYTES[algorithm]),
            created_at=now,
        )

    def verifies_at(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "alg": self.algorithm,
            "secret": _b64encode(self.secret),
            "createdAt": self.created_at,
            "retiredAt": self.retired_at,
            "expiresAt": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SigningKey:
        try:
            return cls(
                kid=str(data["kid"]),
                algorithm=str(data["alg"]),
                secret=_b64decode(str(data["secret"])),
                created_at=float(data["createdAt"]),
                retired_at=None if data.get("retiredAt") is None else float(data["retiredAt"]),
                expires_at=None if data.get("expiresAt") is None else float(data["expiresAt"]),
            )
        except (KeyError, TypeError, binascii.Error) as e:
            raise ValueError(f"malformed signing key: {type(e).__name__}") from None


class KeyRing:
    """The active signing key and the retired keys that still verify."""

    def __init__(self, active: SigningKey, previous: Iterable[SigningKey] = (), *, verify_grace: float = 86400) -> None:
        if active.retired_at is not None:
            raise ValueError("the active key must not be retired")
        self.verify_grace = verify_grace
        self._active = active
        self._previous = list(previous)
        kids = [active.kid, *(k.kid for k in self._previous)]
        if len(set(kids)) != len(kids):
            raise ValueError("duplicate kid in key ring")

    @classmethod
    def generate(cls, now: float, *, algorithm: str = "HS256", verify_grace: float = 86400) -> KeyRing:
        return cls(SigningKey.generate(now, algorithm), verify_grace=verify_grace)

    @property
    def active(self) -> SigningKey:
        return self._active

    @property
    def keys(self) -> list[SigningKey]:
        return [self._active, *self._previous]

    def get(self, kid: str, now: float) -> SigningKey | None:
        """The key named `kid` if it may verify at `now`."""
        for key in self.keys:
            if key.kid == kid:
                return key if key.verifies_at(now) else None
        return None

    def rotate(self, now: float) -> SigningKey:
        """Make a new active key; the old one verifies for `verify_grace` more seconds. Drops expired keys."""
        old = replace(self._active, retired_at=now, expires_at=now + self.verify_grace)
        new = SigningKey.generate(now, self._active.algorithm)
        self._previous = [k for k in [old, *self._previous] if k.verifies_at(now)]
        self._active = new
        return new

    def prune(self, now: float) -> None:
        self._previous = [k for k in self._previous if k.verifies_at(now)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, secrets included (base64url): store it encrypted."""
        return {
            "version": 1,
            "verifyGrace": self.verify_grace,
            "active": self._active.to_dict(),
            "previous": [k.to_dict() for k in self._previous],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyRing:
        if data.get("version") != 1:
            raise ValueError("unsupported key ring version")
        try:
            return cls(
                SigningKey.from_dict(data["active"]),
                [SigningKey.from_dict(k) for k in data.get("previous", [])],
                verify_grace=float(data["verifyGrace"]),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"malformed key ring: {type(e).__name__}") from None


@dataclass(frozen=True)
class Claims:
    iss: str
    aud: tuple[str, ...]
    sub: str
    uid: str
    iat: int
    nbf: int
    exp: int
    jti: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "iss": self.iss,
            "aud": self.aud[0] if len(self.aud) == 1 else list(self.aud),
            "sub": self.sub,
            "uid": self.uid,
            "iat": self.iat,
            "nbf": self.nbf,
            "exp": self.exp,
            "jti": self.jti,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Claims:
        """Parse a verified payload strictly; InvalidToken("malformed claims") on any wrong shape."""
        if not isinstance(data, dict):
            raise InvalidToken("malformed claims")
        aud = data.get("aud")
        auds = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
        ok = (
            all(isinstance(data.get(k), str) and data[k] for k in ("iss", "sub", "uid", "jti"))
            and bool(auds)
            and all(isinstance(a, str) for a in auds)
            and all(_number(data.get(k)) for k in ("iat", "nbf", "exp"))
        )
        if not ok:
            raise InvalidToken("malformed claims")
        return cls(
            iss=data["iss"],
            aud=auds,
            sub=data["sub"],
            uid=data["uid"],
            iat=int(data["iat"]),
            nbf=int(data["nbf"]),
            exp=int(data["exp"]),
            jti=data["jti"],
        )


class Revocations(Protocol):
    def is_revoked(self, jti: str) -> bool: ...


class InMemoryRevocations:
    """Revoked token ids, each kept until the moment after which its token could not verify anyway."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}

    def revoke(self, jti: str, until: float) -> None:
        """Revoke `jti`; `until` should be `TokenIssuer.accepted_until(claims)`."""
        self._until[jti] = max(until, self._until.get(jti, until))

    def is_revoked(self, jti: str) -> bool:
        until = self._until.get(jti)
        if until is None:
            return False
        if self._clock() >= until:
            del self._until[jti]
            return False
        return True

    def prune(self) -> None:
        now = self._clock()
        self._until = {jti: until for jti, until in self._until.items() if until > now}

    def __len__(self) -> int:
        return len(self._until)


class TokenIssuer:
    """Issues and verifies KubeLLM bearer tokens. Times are Unix seconds."""

    def __init__(
        self,
        keyring: KeyRing,
        issuer: str,
        audience: str,
        ttl: int,
        *,
        leeway: int = 30,
        revocations: Revocations | None = None,
    ) -> None:
        if ttl <= 0 or leeway < 0:
            raise ValueError("ttl must be positive and leeway not negative")
        if keyring.verify_grace < ttl + leeway:
            raise ValueError("the key ring's verify_grace must cover the token ttl plus leeway")
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self.leeway = leeway
        self.revocations = revocations

    def issue(self, username: str, uid: str, now: float | None = None) -> tuple[str, Claims]:
        if not username or not uid:
            raise ValueError("a token needs a username and the user's UID")
        issued = int(time.time() if now is None else now)
        claims = Claims(
            iss=self.issuer,
            aud=(self.audience,),
            sub=username,
            uid=uid,
            iat=issued,
            nbf=issued,
            exp=issued + self.ttl,
            jti=secrets.token_urlsafe(16),
        )
        key = self.keyring.active
        token: str = jws.sign(
            claims.to_dict(), key.secret, headers={"kid": key.kid, "typ": "JWT"}, algorithm=key.algorithm
        )
        return token, claims

    def accepted_until(self, claims: Claims) -> float:
        """The time from which `verify` refuses this token for expiry (how long a revocation must last)."""
        return float(claims.exp + self.leeway)

    def verify(
        self,
        token: str,
        now: float | None = None,
        is_active: Callable[[Claims], bool] | None = None,
    ) -> Claims:
        """The token's claims, or InvalidToken. `is_active(claims)` False refuses the token (the user is
        disabled, gone, or another user of the same name)."""
        at = time.time() if now is None else now
        header = _header(token)
        kid = header.get("kid")
        key = self.keyring.get(kid, at) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("unknown signing key")
        if header.get("alg") != key.algorithm:
            raise InvalidToken("algorithm not allowed")
        try:
            payload = jws.verify(token, key.secret, algorithms=[key.algorithm])
        except JOSEError:
            raise InvalidToken("bad signature") from None
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError):
            raise InvalidToken("malformed claims") from None
        claims = Claims.from_dict(data)
        if claims.iss != self.issuer:
            raise InvalidToken("wrong issuer")
        if self.audience not in claims.aud:
            raise InvalidToken("wrong audience")
        if at >= claims.exp + self.leeway:
            raise InvalidToken("expired")
        if at < claims.nbf - self.leeway:
            raise InvalidToken("not yet valid")
        if at < claims.iat - self.leeway:
            raise InvalidToken("issued in the future")
        if self.revocations is not None and self.revocations.is_revoked(claims.jti):
            raise InvalidToken("revoked")
        if is_active is not None and not is_active(claims):
            raise InvalidToken("user not active")
        return claims


# --- OIDC ID tokens ---------------------------------------------------------------------------------------

OIDC_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256")


@dataclass
class OIDCVerifier:
    """ID tokens from an OpenID Connect issuer, verified with its published keys (JWKS), as
    kube-apiserver's `--oidc-*` authenticator: issuer and audience (client ID) must match, the key is
    chosen by `kid` among the issuer's keys, only asymmetric algorithms are accepted, and the user name
    and groups come from the configured claims (with optional prefixes)."""

    issuer: str
    client_id: str
    username_claim: str = "sub"
    username_prefix: str | None = None
    groups_claim: str = ""
    groups_prefix: str = ""
    leeway: int = 30
    jwks: dict[str, Any] = field(default_factory=dict)
    """The issuer's key set ({"keys": [...]}) as last fetched."""

    def verify(self, token: str, now: float | None = None) -> tuple[str, tuple[str, ...]]:
        """(user name, groups) of a valid ID token, or InvalidToken."""
        at = time.time() if now is None else now
        header = _header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in OIDC_ALGORITHMS:
            raise InvalidToken("algorithm not allowed")
        keys = [k for k in self.jwks.get("keys") or []
                if isinstance(k, dict) and (kid is None or k.get("kid") == kid)]
        if not keys:
            raise InvalidToken("unknown signing key")
        payload: bytes | None = None
        for key in keys:
            try:
                payload = jws.verify(token, key, algorithms=[alg])
                break
            except JOSEError:
                continue
        if payload is None:
            raise InvalidToken("bad signature")
        try:
            claims = json.loads(payload)
        except ValueError:
            raise InvalidToken("malformed claims") from None
        if not isinstance(claims, dict):
            raise InvalidToken("malformed claims")
        if claims.get("iss") != self.issuer:
            raise InvalidToken("wrong issuer")
        aud = claims.get("aud")
        if self.client_id not in (aud if isinstance(aud, list) else [aud]):
            raise InvalidToken("wrong audience")
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or at > exp + self.leeway:
            raise InvalidToken("expired")
        if isinstance(nbf, int | float) and at + self.leeway < nbf:
            raise InvalidToken("not yet valid")
        name = claims.get(self.username_claim)
        if not isinstance(name, str) or not name:
            raise InvalidToken("malformed claims")
        if self.username_claim == "email" and claims.get("email_verified") is False:
            raise InvalidToken("malformed claims")
        prefix = self.username_prefix
        if prefix is None:
            prefix = "" if self.username_claim == "email" else f"{self.issuer}#"
        groups: tuple[str, ...] = ()
        if self.groups_claim:
            raw = claims.get(self.groups_claim, [])
            values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
            groups = tuple(f"{self.groups_prefix}{g}" for g in values if isinstance(g, str))
        return f"{prefix}{name}", groups
