"""Leader election through etcd, for background work that must run in one process at a time.

Every API server process (each worker of each replica) on an etcd takes part. A process holds the key
`<prefix>/leases/<name>` when it put the key itself, attached to a lease of its own, in a transaction that
succeeds only while the key does not exist. The holder keeps its lease alive every ttl/3 seconds; a process
that has not renewed for 2/3 of the ttl stops leading by itself, before etcd can expire its lease and let
another take over. A holder that stops revokes its lease (the key goes with it); one that dies leaves the
key until the lease expires, unless it comes back first: a process that finds its own identity in the key
(the same host, state directory and worker) takes the key over with its new lease at once. The work gated by
`leading` is idempotent (sweeps over stored objects), so the rare overlap of a partitioned holder and its
successor costs a duplicate run, never a wrong result.
"""

from __future__ import annotations

import contextlib
import time

import structlog

from kubellm.registry.storage import errors
from kubellm.registry.storage.etcd.client import GatewayClient, b64, unb64
from kubellm.registry.storage.tasks import Periodic

log = structlog.get_logger(__name__)


class Election:
    def __init__(self, client: GatewayClient, prefix: str, name: str, identity: str, ttl: int = 15) -> None:
        self.client = client
        self.name = name
        self.key = b64(f"{prefix.rstrip('/')}/leases/{name}")
        self.identity = identity
        self.ttl = ttl
        self.lease = 0
        self._holder = False
        self._renewed = 0.0
        self.periodic = Periodic(f"leader-election-{name}", self.tick, ttl / 3, run_first=True, jitter=0.05)

    @property
    def leading(self) -> bool:
        return self._holder and time.monotonic() - self._renewed < self.ttl * 2 / 3

    async def tick(self) -> None:
        """Renew this process's lease (or take a new one), then try to hold the key."""
        if self.lease:
            resp = await self.client.call("/lease/keepalive", {"ID": str(self.lease)}, op="lease")
            if int(resp.get("result", {}).get("TTL", 0)) > 0:
                self._renewed = time.monotonic()
                if self._holder:
                    return
            else:
                if self._holder:
                    log.warning("lost the leader lease", election=self.name)
                self.lease, self._holder = 0, False
        if not self.lease:
            grant = await self.client.call("/lease/grant", {"TTL": str(self.ttl)}, op="lease")
            self.lease, self._renewed = int(grant["ID"]), time.monotonic()
        txn = {"compare": [{"key": self.key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
               "success": [{"request_put": {"key": self.key, "value": b64(self.identity), "lease": str(self.lease)}}],
               "failure": [{"request_range": {"key": self.key}}]}
        resp = await self.client.call("/kv/txn", txn, op="lease")
        if resp.get("succeeded"):
            self._holder = True
            log.info("became the leader", election=self.name, identity=self.identity)
            return
        kv = (resp["responses"][0]["response_range"].get("kvs") or [{}])[0]
        if unb64(kv.get("value", "")) != self.identity.encode():
            self._holder = False
        elif int(kv.get("lease", 0)) == self.lease:
            self._holder = True
        else:  # this identity's key from before a restart: ours again, with the new lease
            txn = {"compare": [{"key": self.key, "target": "MOD", "result": "EQUAL",
                                "mod_revision": kv.get("mod_revision", "0")}],
                   "success": [{"request_put": {"key": self.key, "value": b64(self.identity),
                                                "lease": str(self.lease)}}]}
            self._holder = bool((await self.client.call("/kv/txn", txn, op="lease")).get("succeeded"))
            if self._holder:
                log.info("became the leader again after a restart", election=self.name, identity=self.identity)

    def start(self) -> None:
        self.periodic.start()

    async def stop(self) -> None:
        await self.periodic.stop()
        if self.lease:
            lease, self.lease, self._holder = self.lease, 0, False
            with contextlib.suppress(errors.StorageError, OSError):
                await self.client.call("/lease/revoke", {"ID": str(lease)}, op="lease", timeout=2)
