"""Leader election through a real etcd: one holder among the processes, a stopped holder hands over at once, a
dead one after its lease expires, and a restarted one (same identity) takes its key back."""

from __future__ import annotations

import asyncio
import time

from etcd_access import EtcdAccess

from kubellm.registry.storage.etcd import EtcdStorage
from kubellm.registry.storage.etcd.election import Election


async def test_one_leader_hand_over_expiry_and_restart(etcd: EtcdAccess) -> None:
    storage = EtcdStorage(etcd.config(f"/election-{time.time_ns()}", compaction_interval=0))
    client, prefix = storage.client, storage.prefix
    try:
        a, b = Election(client, prefix, "jobs", "host:a", ttl=3), Election(client, prefix, "jobs", "host:b", ttl=3)
        await a.tick()
        await b.tick()
        assert (a.leading, b.leading) == (True, False)
        await a.tick()
        await b.tick()
        assert (a.leading, b.leading) == (True, False)

        await a.stop()  # revokes its lease: the key goes, b takes it at its next try
        await b.tick()
        assert b.leading and not a.leading

        # b "dies" (no stop, no more renewals): it stops leading by itself, and a takes over once etcd expires it
        await asyncio.sleep(2.5)
        assert not b.leading
        a = Election(client, prefix, "jobs", "host:a", ttl=3)
        deadline = time.monotonic() + 10
        while not a.leading:
            assert time.monotonic() < deadline, "the dead holder's lease never expired"
            await a.tick()
            await asyncio.sleep(0.3)

        # a restarts (a new process, the same identity) while its old lease is alive: it leads again at once
        restarted = Election(client, prefix, "jobs", "host:a", ttl=3)
        await restarted.tick()
        assert restarted.leading
        other = Election(client, prefix, "jobs", "host:c", ttl=3)
        await other.tick()
        assert not other.leading
        await restarted.stop()
        await other.stop()
    finally:
        await storage.close()
