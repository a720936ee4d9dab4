"""Consistent reads ask etcd for its current revision; concurrent ones share those reads, and none is answered
with a revision older than etcd's when it began (a real etcd, writes going on meanwhile)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from etcd_access import EtcdAccess

from kubellm.registry.storage.etcd import EtcdStorage


async def test_concurrent_revision_reads_are_shared_and_never_older_than_their_start(etcd: EtcdAccess) -> None:
    storage = EtcdStorage(etcd.config(f"/revision-reads-{time.time_ns()}", compaction_interval=0))
    writer = EtcdStorage(etcd.config(f"/revision-writes-{time.time_ns()}", compaction_interval=0))
    calls = 0
    real = storage.client.call

    async def counted(method: str, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return await real(method, payload, **kwargs)

    storage.client.call = counted  # type: ignore[method-assign]
    try:
        async def read(i: int) -> None:
            await writer.create(f"/k/{i}", {"metadata": {"name": str(i)}})
            before = await writer.current_revision()  # etcd's revision once this caller's write is in
            got = await storage.current_revision()
            assert got >= before, (got, before)

        for _ in range(3):
            await asyncio.gather(*(read(i) for i in range(_ * 100, _ * 100 + 100)))
        assert calls < 150, calls  # shared: far fewer etcd reads than callers
        assert await storage.current_revision() >= await writer.current_revision()
    finally:
        await storage.close()
        await writer.close()
