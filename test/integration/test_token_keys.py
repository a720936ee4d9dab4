"""Token signing keys: stored in etcd, rotated when due, old tokens valid through the grace period."""

from __future__ import annotations

import time

from kubellm.app.login import AUDIENCE, ISSUER, KEYRING_KEY, load_keyring, refresh_keyring
from kubellm.registry.storage.etcd import EtcdStorage
from kubellm.service.tokens import TokenIssuer


async def test_keys_are_shared_rotated_and_still_verify(storage: EtcdStorage) -> None:
    ring = await load_keyring(storage)
    assert (await load_keyring(storage)).active.kid == ring.active.kid  # created once, then read
    a = TokenIssuer(ring, ISSUER, AUDIENCE, ttl=600)
    b = TokenIssuer(await load_keyring(storage), ISSUER, AUDIENCE, ttl=600)  # a second server
    token, _ = a.issue("alice", "uid-alice")
    now = time.time()
    assert not await refresh_keyring(storage, a, now, rotate_after=86400)  # not due yet
    assert await refresh_keyring(storage, a, now + 90000, rotate_after=86400)
    assert a.keyring.active.kid != ring.active.kid
    await refresh_keyring(storage, b, now + 90001, rotate_after=86400)  # the other server picks it up
    assert b.keyring.active.kid == a.keyring.active.kid
    assert b.verify(token, now=now + 60).sub == "alice"  # old tokens verify during the grace period
    new_token, _ = b.issue("bob", "uid-bob", now=now + 90002)
    assert a.verify(new_token, now=now + 90003).sub == "bob"
    assert "keyring" in await storage.get(KEYRING_KEY)
