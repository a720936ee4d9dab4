"""Logging in: username and password in, a short-lived bearer token out.

Every attempt writes a LoginRecord. Failures count on the User's status; after `max_failures` in a
row the user is LockedOut for `lockout` seconds (429 with Retry-After). Unknown users take as long
to fail as known ones. Tokens are KubeLLM JWTs (service/tokens); the signing keys live in etcd,
encrypted at rest, and a disabled user's tokens stop working at once.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from kubellm.apis import errors
from kubellm.registry.storage import errors as serr
from kubellm.registry.storage.interface import Storage
from kubellm.registry.store import Store
from kubellm.service.authn import AuthenticationError
from kubellm.service.identity import UserInfo
from kubellm.service.passwords import PasswordHasher
from kubellm.service.tokens import InMemoryRevocations, InvalidToken, KeyRing, TokenIssuer

log = structlog.get_logger(__name__)
KEYRING_KEY = "/iam.kubellm.io/signingkeys/tokens"
ISSUER = "kubellm"
AUDIENCE = "kubellm"


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def load_keyring(storage: Storage) -> KeyRing:
    """The token signing keys, created on first start; stored in etcd (encrypted at rest)."""
    try:
        return KeyRing.from_dict((await storage.get(KEYRING_KEY))["keyring"])
    except serr.KeyNotFound:
        ring = KeyRing.generate(time.time())
        try:
            await storage.create(KEYRING_KEY, {"metadata": {"name": "tokens"}, "keyring": ring.to_dict()})
            return ring
        except serr.KeyExists:  # another server instance was first
            return KeyRing.from_dict((await storage.get(KEYRING_KEY))["keyring"])


class SourceThrottle:
    """At most `limit` failed logins per source address in a sliding `window` (seconds)."""

    def __init__(self, limit: int = 20, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, source: str, now: float) -> deque[float]:
        q = self._failures.setdefault(source, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, source: str, now: float) -> int:
        q = self._recent(source, now)
        return int(q[0] + self.window - now) + 1 if len(q) >= self.limit else 0

    def failed(self, source: str, now: float) -> None:
        self._recent(source, now).append(now)
        if len(self._failures) > 10_000:  # forget the quietest sources rather than grow without bound
            for key in [k for k, v in self._failures.items() if not v][:5_000]:
                del self._failures[key]


@dataclass
class LoginService:
    users: Store
    records: Store
    hasher: PasswordHasher
    issuer: TokenIssuer
    max_failures: int = 5
    lockout: int = 300
    cached_user: Callable[[str], dict[str, Any] | None] = lambda _name: None
    """The user as the watch cache holds it (no etcd round trip on every token check)."""
    throttle: SourceThrottle = field(default_factory=SourceThrottle)
    revocations: InMemoryRevocations = field(default_factory=InMemoryRevocations)

    def __post_init__(self) -> None:
        self.issuer.revocations = self.revocations

    def logout(self, token: str) -> None:
        """Revoke a token (its jti) until it would have expired anyway."""
        try:
            claims = self.issuer.verify(token)
        except InvalidToken as exc:
            raise errors.unauthorized(f"invalid token: {exc.reason}") from None
        self.revocations.revoke(claims.jti, self.issuer.accepted_until(claims))

    def is_active(self, name: str) -> bool:
        obj = self.cached_user(name)
        if obj is None:
            return False
        status = obj.get("status") or {}
        return (obj.get("spec") or {}).get("state", "Active") == "Active" and status.get("state") != "LockedOut"

    def verify_token(self, token: str) -> UserInfo | None:
        try:
            claims = self.issuer.verify(token, is_active=self.is_active)
        except InvalidToken as exc:
            if exc.reason == "unknown signing key":
                return None  # another KubeLLM's token (e.g. the host cluster's): left to delegation
            raise AuthenticationError(exc.reason) from None
        return UserInfo(claims.sub, claims.groups, {})

    async def _record(self, username: str, success: bool, reason: str, source_ip: str, agent: str) -> None:
        body = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "LoginRecord",
                "metadata": {"generateName": f"{username[:40] or 'unknown'}-"},
                "spec": {"username": username, "success": success, "reason": reason, "sourceIP": source_ip,
                         "userAgent": agent[:256], "time": _rfc3339(time.time())}}
        try:
            await self.records.create(body)
        except errors.StatusError as exc:  # a record must never break the login itself
            log.warning("could not write a login record", reason=exc.reason)

    async def _set_status(self, name: str, change: dict[str, Any]) -> None:
        def mutate(obj: dict[str, Any]) -> dict[str, Any]:
            obj["status"] = {**(obj.get("status") or {}), **change}
            return obj

        try:
            await self.users.patch(None, name, mutate, subresource="status")
        except errors.StatusError as exc:
            log.warning("could not update the user's status", reason=exc.reason)

    async def login(self, username: str, password: str, source_ip: str, agent: str) -> dict[str, Any]:
        now = time.time()
        retry = self.throttle.retry_after(source_ip, now)
        if retry:
            await self._record(username, False, "Throttled", source_ip, agent)
            raise errors.too_many_requests("too many failed logins from this address; try again later", retry)
        try:
            return await self._login(username, password, source_ip, agent, now)
        except errors.StatusError as exc:
            if exc.code == 401:
                self.throttle.failed(source_ip, now)
            raise

    async def _login(self, username: str, password: str, source_ip: str, agent: str, now: float) -> dict[str, Any]:
        user = None
        try:
            user = await self.users.get(None, username) if username else None
        except errors.StatusError:
            user = None
        if user is None:
            await self.hasher.verify_unknown_async(password)
            await self._record(username, False, "UnknownUser", source_ip, agent)
            raise errors.unauthorized("invalid username or password")
        spec, status = user.get("spec") or {}, user.get("status") or {}
        locked_until = status.get("lockedUntil")
        if status.get("state") == "LockedOut" and locked_until:
            remaining = datetime.fromisoformat(locked_until.replace("Z", "+00:00")).timestamp() - now
            if remaining > 0:
                await self._record(username, False, "LockedOut", source_ip, agent)
                raise errors.too_many_requests("too many failed logins; try again later", int(remaining) + 1)
        ok = await self.hasher.verify_async(password, spec.get("passwordHash") or "") if spec.get(
            "passwordHash") else await self.hasher.verify_unknown_async(password)
        if not ok:
            failures = int(status.get("failedLoginCount", 0)) + 1
            change: dict[str, Any] = {"failedLoginCount": failures}
            if failures >= self.max_failures:
                change |= {"state": "LockedOut", "lockedUntil": _rfc3339(now + self.lockout)}
            await self._set_status(username, change)
            await self._record(username, False, "BadCredentials", source_ip, agent)
            raise errors.unauthorized("invalid username or password")
        if spec.get("state", "Active") != "Active":
            await self._record(username, False, "Disabled", source_ip, agent)
            raise errors.unauthorized("invalid username or password")
        token, claims = self.issuer.issue(username, spec.get("groups") or [])
        await self._set_status(username, {"state": "Active", "failedLoginCount": 0, "lockedUntil": None,
                                          "lastLoginTime": _rfc3339(now)})
        await self._record(username, True, "Succeeded", source_ip, agent)
        return {"kind": "LoginResponse", "apiVersion": "iam.kubellm.io/v1alpha1",
                "status": {"token": token, "expirationTimestamp": _rfc3339(claims.exp)}}


async def refresh_keyring(storage: Storage, issuer: TokenIssuer, now: float, rotate_after: float) -> bool:
    """Pick up the stored key ring (another instance may have rotated it) and rotate it when its active
    key is older than `rotate_after`; every instance converges on the stored ring. True if rotated here."""
    rotated = False

    async def maybe_rotate(obj: dict[str, Any]) -> dict[str, Any]:
        nonlocal rotated
        ring = KeyRing.from_dict(obj["keyring"])
        rotated = now - ring.active.created_at >= rotate_after
        if rotated:
            ring.rotate(now)
        ring.prune(now)
        return {**obj, "keyring": ring.to_dict()}

    stored = await storage.guaranteed_update(KEYRING_KEY, maybe_rotate)
    issuer.keyring = KeyRing.from_dict(stored["keyring"])
    if rotated:
        log.info("rotated the token signing key", kid=issuer.keyring.active.kid)
    return rotated


async def keep_keyring_fresh(storage: Storage, issuer: TokenIssuer, *, rotate_after: float = 86400,
                             check_every: float = 60) -> None:
    """Background task: refresh (and when due, rotate) the signing keys every `check_every` seconds."""
    import asyncio

    while True:
        await asyncio.sleep(check_every)
        try:
            await refresh_keyring(storage, issuer, time.time(), rotate_after)
        except (serr.StorageError, errors.StatusError) as exc:
            log.warning("could not refresh the token signing keys", error=type(exc).__name__)
