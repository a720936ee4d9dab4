"""Logging in: username and password in, a short-lived bearer token out.

Every attempt but a throttled one writes a LoginRecord (throttled attempts are only counted in
`kubellm_login_attempts_total`, so a flood cannot fill etcd). Lockout, as KubeSphere does it
(`AuthLimitExceeded` for a while after too many failures, then Active again):

- after `max_failures` failed logins in a row a user is LockedOut for `lockout` seconds: new password
  logins answer 429 with Retry-After; tokens already issued keep working (a stranger guessing
  passwords must not end someone's sessions); when the time has passed the count starts again, and a
  successful login resets it; a background sweep turns expired lockouts back to Active;
- names that are not users count and lock exactly the same way (in memory), and every failure costs
  one etcd read and one password verification, so the answers and the timing do not tell whether a
  user exists; the failure count on the User's status is written in the background, with an atomic
  increment (`guaranteed_update`), so parallel guesses all count;
- failures per source address are throttled (`SourceThrottle`).

Tokens are KubeLLM JWTs (service/tokens) naming the user and its UID; the signing keys live in etcd,
encrypted at rest. On every request the token's user is looked up in the watch cache: its groups come
from the current User, a disabled user's tokens stop at once, and a token of a deleted user (or of an
earlier user with the same name) is refused.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import Counter

from kubellm.apis import errors
from kubellm.apis.timestamps import parse_rfc3339, rfc3339
from kubellm.app.lockout import FailureTracker, Ledger, LocalLedger, SourceThrottle
from kubellm.app.revocations import SharedRevocations
from kubellm.registry.storage import errors as serr
from kubellm.registry.storage.interface import Storage
from kubellm.registry.store import ListParams, Store
from kubellm.service.authn import AuthenticationError
from kubellm.service.identity import UserInfo
from kubellm.service.passwords import PasswordHasher
from kubellm.service.tokens import InMemoryRevocations, InvalidToken, KeyRing, TokenIssuer

log = structlog.get_logger(__name__)
KEYRING_KEY = "/iam.kubellm.io/signingkeys/tokens"
ISSUER = "kubellm"
AUDIENCE = "kubellm"
INVALID = "invalid username or password"
MAX_BACKGROUND = 1000

LOGIN_ATTEMPTS = Counter("kubellm_login_attempts_total", "Login attempts by result.", ["result"])
for _result in ("succeeded", "failed", "locked_out", "throttled"):
    LOGIN_ATTEMPTS.labels(_result)
BACKGROUND_DROPPED = Counter("kubellm_login_background_writes_dropped_total",
                             "Login records not written because too many writes were pending.")


def _timestamp(value: object) -> float:
    return parse_rfc3339(value) or 0.0


_NOT_NAME = re.compile(r"[^a-z0-9-]+")


def record_name_prefix(username: str) -> str:
    """A LoginRecord's generateName from any username: lower case, [a-z0-9-], at most 40 characters."""
    cleaned = _NOT_NAME.sub("-", username.lower()).strip("-")[:40].strip("-")
    return f"{cleaned or 'login'}-"


def stored_lock(user: dict[str, Any] | None, now: float) -> float:
    """Seconds a stored User is still locked out for (0 when it is not)."""
    status = (user or {}).get("status") or {}
    if status.get("state") != "LockedOut":
        return 0.0
    return max(0.0, _timestamp(status.get("lockedUntil")) - now)


def count_failure(status: dict[str, Any], now: float, max_failures: int, lockout: float) -> dict[str, Any]:
    """The status after one more failed login: an expired lock starts the count again."""
    count = int(status.get("failedLoginCount") or 0)
    locked = status.get("state") == "LockedOut"
    if locked and _timestamp(status.get("lockedUntil")) <= now:
        count, locked = 0, False
    count += 1
    out = {**status, "failedLoginCount": count}
    if locked:
        return out
    if count >= max_failures:
        return out | {"state": "LockedOut", "lockedUntil": rfc3339(now + lockout)}
    return out | {"state": "Active", "lockedUntil": None}


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
    cached_user: Callable[[str], dict[str, Any] | None] = lambda _name: None
    """The user as the watch cache holds it (no etcd round trip on every token check)."""
    throttle: SourceThrottle = field(default_factory=SourceThrottle)
    ledger: Ledger | None = None
    """Where failures are counted: None, this process (`tracker` and `throttle`); a worker's, the supervisor."""
    revocations: InMemoryRevocations = field(default_factory=InMemoryRevocations)
    shared: SharedRevocations | None = None
    """Revocations kept in etcd for every instance (feeding `revocations`); None: this process only."""
    tracker: FailureTracker = field(init=False)
    _pending: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.issuer.revocations = self.revocations
        self.tracker = FailureTracker(self.max_failures, self.lockout)
        if self.ledger is None:
            self.ledger = LocalLedger(self.tracker, self.throttle)

    # --- tokens ------------------------------------------------------------------------------------

    async def logout(self, token: str) -> None:
        """Revoke a token (its jti) until it would have expired anyway: here at once, and on every instance
        through etcd when the revocations are shared (answered once etcd has it)."""
        try:
            claims = self.issuer.verify(token)
        except InvalidToken as exc:
            raise errors.unauthorized(f"invalid token: {exc.reason}") from None
        until = self.issuer.accepted_until(claims)
        if self.shared is None:
            self.revocations.revoke(claims.jti, until)
            return
        try:
            await self.shared.revoke(claims.jti, until)
        except serr.StorageError as exc:
            log.warning("could not store a token revocation", error=type(exc).__name__)
            raise errors.service_unavailable("the revocation could not be stored; try again") from None

    def verify_token(self, token: str) -> UserInfo | None:
        try:
            claims = self.issuer.verify(token)
        except InvalidToken as exc:
            if exc.reason == "unknown signing key":
                return None  # another KubeLLM's token (e.g. the host cluster's): left to delegation
            raise AuthenticationError(exc.reason) from None
        user = self.cached_user(claims.sub)
        if user is None:
            raise AuthenticationError("user not found")
        meta, spec = user.get("metadata") or {}, user.get("spec") or {}
        if meta.get("uid") != claims.uid:
            raise AuthenticationError("token of another user of that name")
        if spec.get("state", "Active") != "Active":
            raise AuthenticationError("user not active")
        groups = tuple(g for g in spec.get("groups") or () if isinstance(g, str))
        return UserInfo(claims.sub, groups, {}, claims.uid)

    # --- background writes -------------------------------------------------------------------------

    def _later(self, work: Coroutine[Any, Any, None], *, droppable: bool = True) -> None:
        """Write after answering; never more than MAX_BACKGROUND writes pending (records beyond are dropped
        and counted; a status update that cannot wait in line is written anyway)."""
        if droppable and len(self._pending) >= MAX_BACKGROUND:
            work.close()
            BACKGROUND_DROPPED.inc()
            return
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        """Wait for the pending background writes (tests and shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _record(self, username: str, success: bool, reason: str, source_ip: str, agent: str) -> None:
        body = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "LoginRecord",
                "metadata": {"generateName": record_name_prefix(username)},
                "spec": {"username": username, "success": success, "reason": reason, "sourceIP": source_ip,
                         "userAgent": agent[:256], "time": rfc3339(time.time())}}
        try:
            await self.records.create(body)
        except errors.StatusError as exc:  # a record must never break the login itself
            log.warning("could not write a login record", reason=exc.reason)

    async def _patch_status(self, name: str, mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        def apply(obj: dict[str, Any]) -> dict[str, Any]:
            obj["status"] = mutate(dict(obj.get("status") or {}))
            return obj

        try:
            await self.users.patch(None, name, apply, subresource="status")
        except errors.StatusError as exc:
            log.warning("could not update the user's status", reason=exc.reason)

    async def _count_failure(self, name: str, now: float) -> None:
        await self._patch_status(name, lambda st: count_failure(st, now, self.max_failures, self.lockout))

    async def sweep_expired_lockouts(self, now: float | None = None) -> int:
        """Turn users whose lockout has ended back to Active (count reset). Returns how many."""
        at = time.time() if now is None else now
        listed = await self.users.list(None, ListParams(field_selector="status.state=LockedOut",
                                                        resource_version="0"))
        done = 0
        for user in listed["items"]:
            if stored_lock(user, at) > 0:
                continue

            def unlock(st: dict[str, Any]) -> dict[str, Any]:
                if st.get("state") != "LockedOut" or _timestamp(st.get("lockedUntil")) > at:
                    return st
                return {**st, "state": "Active", "failedLoginCount": 0, "lockedUntil": None}

            await self._patch_status(user["metadata"]["name"], unlock)
            done += 1
        return done

    # --- login -------------------------------------------------------------------------------------

    async def _lookup(self, username: str) -> dict[str, Any] | None:
        """The user from etcd (one read, whether or not it exists), or None."""
        try:
            return await self.users.get(None, username)
        except errors.StatusError:
            return None

    async def login(self, username: str, password: str, source_ip: str, agent: str) -> dict[str, Any]:
        now = time.time()
        assert self.ledger is not None
        retry, tracked = await self.ledger.check(username, source_ip, now)
        if retry:
            LOGIN_ATTEMPTS.labels("throttled").inc()
            raise errors.too_many_requests("too many failed logins from this address; try again later", retry)
        user = await self._lookup(username)
        locked = max(tracked, stored_lock(user, now))
        if locked > 0:
            LOGIN_ATTEMPTS.labels("locked_out").inc()
            self._later(self._record(username, False, "LockedOut", source_ip, agent))
            raise errors.too_many_requests("too many failed logins; try again later", int(locked) + 1)
        spec = (user or {}).get("spec") or {}
        stored_hash = spec.get("passwordHash")
        if stored_hash:
            ok = await self.hasher.verify_async(password, stored_hash)
        else:
            ok = await self.hasher.verify_unknown_async(password)
        active = spec.get("state", "Active") == "Active"
        if user is not None and ok and active:
            return await self._succeeded(user, source_ip, agent, now)
        await self.ledger.failed(username, source_ip, now)
        reason = "UnknownUser" if user is None else "Disabled" if ok else "BadCredentials"
        if user is not None and not ok:
            self._later(self._count_failure(username, now), droppable=False)
        self._later(self._record(username, False, reason, source_ip, agent))
        LOGIN_ATTEMPTS.labels("failed").inc()
        raise errors.unauthorized(INVALID)

    async def _succeeded(self, user: dict[str, Any], source_ip: str, agent: str, now: float) -> dict[str, Any]:
        name, uid = user["metadata"]["name"], user["metadata"]["uid"]
        token, claims = self.issuer.issue(name, uid)
        assert self.ledger is not None
        await self.ledger.succeeded(name)
        await self._patch_status(name, lambda st: {**st, "state": "Active", "failedLoginCount": 0,
                                                   "lockedUntil": None, "lastLoginTime": rfc3339(now)})
        self._later(self._record(name, True, "Succeeded", source_ip, agent))
        LOGIN_ATTEMPTS.labels("succeeded").inc()
        return {"kind": "LoginResponse", "apiVersion": "iam.kubellm.io/v1alpha1",
                "status": {"token": token, "expirationTimestamp": rfc3339(claims.exp)}}


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
