"""Periodic compaction of etcd history, coordinated between API server instances.

Each round bumps a shared key inside a transaction that compares its version with the one this
instance saw last; only the instance whose transaction succeeds compacts, and it compacts to the
revision recorded one interval earlier, so watchers and paginated lists keep one interval of history.
The key's value is the revision the winner compacts to: the others learn it from there when their
transaction fails (as kube-apiserver's compactor does), and `EtcdStorage.history_compacted` asks etcd
itself, so a server that did not compact answers a compacted watch start as the one that did.
"""

from __future__ import annotations

import contextlib

import structlog

from kubellm.registry.storage import errors
from kubellm.registry.storage.etcd.client import GatewayClient, b64, unb64
from kubellm.registry.storage.tasks import Periodic

log = structlog.get_logger(__name__)


class Compactor:
    def __init__(self, client: GatewayClient, prefix: str, interval: float) -> None:
        self.client = client
        self.key = b64(prefix.rstrip("/") + "/compact_rev_key")
        self.interval = interval
        self.version = 0
        self.revision = 0
        self.compacted = 0
        """etcd's compaction revision as far as this instance knows (history before it is gone): what it
        compacted to, or learned another instance compacted to, or etcd refused."""
        self.periodic = Periodic("etcd-compactor", self.compact_once, interval, run_first=True) if interval > 0 \
            else None

    async def compact_once(self) -> int | None:
        """One round; returns the revision compacted to, if this round compacted."""
        txn = {"compare": [{"key": self.key, "target": "VERSION", "result": "EQUAL", "version": str(self.version)}],
               "success": [{"request_put": {"key": self.key, "value": b64(str(self.revision))}}],
               "failure": [{"request_range": {"key": self.key}}]}
        resp = await self.client.call("/kv/txn", txn, op="compact")
        current = int(resp["header"]["revision"])
        if not resp.get("succeeded"):
            kvs = resp["responses"][0]["response_range"].get("kvs") or [{}]
            self.version = int(kvs[0].get("version", 0))
            self.revision = current
            with contextlib.suppress(ValueError):
                self.compacted = max(self.compacted, int(unb64(kvs[0].get("value", ""))))
            return None
        self.version += 1
        target, self.revision = self.revision, current
        if target == 0:
            return None
        try:
            await self.client.call("/kv/compaction", {"revision": str(target)}, op="compact")
        except errors.Expired:
            return None  # someone compacted further already
        self.compacted = max(self.compacted, target)
        log.info("compacted etcd history", revision=target)
        return target

    def start(self) -> None:
        if self.periodic is not None:
            self.periodic.start()

    async def stop(self) -> None:
        if self.periodic is not None:
            await self.periodic.stop()
