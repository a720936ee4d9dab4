"""Password hashing (argon2id) and the password policy.

This is the only module that imports passlib (the maintained `libpass` fork, imported as `passlib`,
with the argon2-cffi backend).

Decisions:

- **argon2id** with OWASP's minimum recommended profile by default: 19 MiB memory, 2 passes,
  1 lane (about 50 ms on a current core). Every hash records its own parameters, so raising them
  later only needs `needs_rehash` at the next successful login.
- Passwords are **NFKC-normalized** before hashing and verifying (NIST SP 800-63B §5.1.1.2), so the
  same password typed on different keyboards or input methods verifies. The policy measures the
  normalized form too.
- At most `MAX_PASSWORD_LENGTH` characters (passlib's own limit): `hash` raises `ValueError` above it,
  `verify` returns False, so a huge login body cannot cost more than a normal one.
- The async variants run in the default thread pool (`asyncio.to_thread`); argon2-cffi releases the
  GIL. Peak memory is about `memory_cost` KiB times the number of concurrent hashes, which the pool
  size bounds (`min(32, cpus + 4)` threads by default).
- `verify_unknown` verifies against a dummy hash with the same parameters, computed once, so a login
  for a user that does not exist costs the same time as one with a wrong password.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import unicodedata
from dataclasses import dataclass

from passlib.hash import argon2

__all__ = ["MAX_PASSWORD_LENGTH", "POLICY_MAX_LENGTH", "PasswordHasher", "PasswordPolicy"]

MAX_PASSWORD_LENGTH = 4096
"""Characters (after normalization); passlib refuses longer secrets."""
POLICY_MAX_LENGTH = 1024
"""The default policy's longest password; the login endpoint refuses longer ones before any work."""


def _normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


class PasswordHasher:
    """argon2id hashing with configurable cost.

    `memory_cost` is in KiB (at least 8 * `parallelism`), `time_cost` the number of passes. Tests can
    use `PasswordHasher(memory_cost=8, time_cost=1)`, which hashes in well under a millisecond.
    """

    def __init__(
        self,
        *,
        memory_cost: int = 19 * 1024,
        time_cost: int = 2,
        parallelism: int = 1,
        salt_size: int = 16,
        digest_size: int = 32,
    ) -> None:
        if parallelism < 1 or time_cost < 1 or memory_cost < 8 * parallelism:
            raise ValueError("argon2 needs parallelism >= 1, time_cost >= 1 and memory_cost >= 8 * parallelism KiB")
        self.memory_cost = memory_cost
        self.time_cost = time_cost
        self.parallelism = parallelism
        self._handler = argon2.using(
            type="ID",
            memory_cost=memory_cost,
            time_cost=time_cost,
            parallelism=parallelism,
            salt_size=salt_size,
            digest_size=digest_size,
        )
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    def hash(self, password: str) -> str:
        """A new `$argon2id$...` hash with a random salt. ValueError if the password is too long."""
        secret = _normalize(password)
        if len(secret) > MAX_PASSWORD_LENGTH:
            raise ValueError(f"password must be at most {MAX_PASSWORD_LENGTH} characters long")
        result: str = self._handler.hash(secret)
        return result

    def verify(self, password: str, hash: str) -> bool:
        """Whether `password` matches `hash` (constant-time comparison, as passlib does).

        A malformed or non-argon2 hash, or an over-long password, is simply False.
        """
        secret = _normalize(password)
        if len(secret) > MAX_PASSWORD_LENGTH:
            return False
        try:
            return bool(self._handler.verify(secret, hash))
        except (ValueError, TypeError):
            return False

    def needs_rehash(self, hash: str) -> bool:
        """True when `hash` was made with other parameters (or is not a valid argon2 hash)."""
        try:
            return bool(self._handler.needs_update(hash))
        except (ValueError, TypeError):
            return True

    def verify_unknown(self, password: str) -> bool:
        """Spend the time of a verification for a user that does not exist; always False."""
        self.verify(password, self._dummy())
        return False

    async def hash_async(self, password: str) -> str:
        return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, password: str, hash: str) -> bool:
        return await asyncio.to_thread(self.verify, password, hash)

    async def verify_unknown_async(self, password: str) -> bool:
        return await asyncio.to_thread(self.verify_unknown, password)

    def _dummy(self) -> str:
        # Computed once, on first use, with this hasher's parameters (so it costs what a real one does).
        if self._dummy_hash is None:
            with self._dummy_lock:
                if self._dummy_hash is None:
                    self._dummy_hash = self.hash(secrets.token_urlsafe(32))
        return self._dummy_hash


@dataclass(frozen=True)
class PasswordPolicy:
    """Rules for a new password. `check` returns the problems as field-error details (no password echoed).

    - `must be at least N characters long`: length (after NFKC normalization) below `min_length`;
      length is what makes a password hard to guess, so there are no character-class rules.
    - `must be at most N characters long`: above `max_length` (never above `MAX_PASSWORD_LENGTH`).
    - `must not be the same as the username`: equal ignoring case.
    - `must not contain the username`: the username (3 characters or more, so a one-letter name does
      not forbid that letter) appears anywhere in it, ignoring case.
    """

    min_length: int = 12
    max_length: int = POLICY_MAX_LENGTH

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length <= MAX_PASSWORD_LENGTH:
            raise ValueError(f"need 1 <= min_length <= max_length <= {MAX_PASSWORD_LENGTH}")

    def check(self, password: str, username: str = "") -> list[str]:
        problems: list[str] = []
        secret = _normalize(password)
        if len(secret) < self.min_length:
            problems.append(f"must be at least {self.min_length} characters long")
        if len(secret) > self.max_length:
            problems.append(f"must be at most {self.max_length} characters long")
        name = _normalize(username).casefold()
        folded = secret.casefold()
        if name and folded == name:
            problems.append("must not be the same as the username")
        elif len(name) >= 3 and name in folded:
            problems.append("must not contain the username")
        return problems
