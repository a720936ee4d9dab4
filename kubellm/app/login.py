"""Logging in: username and password in, a short-lived bearer token out.

Every attempt writes a LoginRecord. Failures count on the User's status; after `max_failures` in a
row the user is LockedOut for `lockout` seconds (429 with Retry-After). Unknown users take as long
to fail as known ones. Tokens are KubeLLM JWTs (service/tokens); the signing keys live in etcd,
encrypted at rest, and a disabled user's tokens stop working at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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
from kubellm.service.tokens import InvalidToken, KeyRing, TokenIssuer

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


@dataclass
class LoginService:
    users: Store
    records: Store
    hasher: PasswordHasher
    issuer: TokenIssuer
    max_failures: int = 5
    lockout: int = 300

    def user_object(self, name: str) -> dict[str, Any] | None:
        cacher = getattr(self.users.storage, "cachers", {}).get("/iam.kubellm.io/users/")
        if cacher is not None and cacher.ready.is_set():
            obj: dict[str, Any] | None = cacher.objects.get(name)
            return obj
        return None

    def is_active(self, name: str) -> bool:
        obj = self.user_object(name)
        if obj is None:
            return False
        status = obj.get("status") or {}
        return (obj.get("spec") or {}).get("state", "Active") == "Active" and status.get("state") != "LockedOut"

    def verify_token(self, token: str) -> UserInfo:
        try:
            claims = self.issuer.verify(token, is_active=self.is_active)
        except InvalidToken as exc:
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
