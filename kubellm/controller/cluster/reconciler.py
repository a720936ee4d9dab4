"""The Cluster controller's reconcile: probe the member, write the status, come back after the interval.

Each Cluster is read through its `credentials` subresource (the only way the stored credentials leave the API
server; the manager's role grants it), connected to with a client kept per Cluster until where or how it
connects changes, and probed (`probe.probe`). The status (`status.probed` / `status.failed`) is written by
server-side apply to `/status` under one field manager; `lastProbeTime` moves with every successful probe, so
it is the cluster's heartbeat. Events tell the Ready transitions. The key comes back after the probe interval
with up to 20 % jitter, so many clusters do not probe in step; status writes do not enqueue it again (the
controller watches spec changes only).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from kubellm.apis.cluster.v1alpha1 import GROUP, VERSION
from kubellm.client import errors
from kubellm.client.dynamic import AsyncDynamicClient
from kubellm.client.resource import ResourceOps
from kubellm.controller.cluster import connection, status
from kubellm.controller.cluster.probe import ProbeFailure, probe
from kubellm.controller.conditions import find
from kubellm.controller.runtime.events import NORMAL, WARNING, EventRecorder
from kubellm.controller.runtime.reconciler import Result

log = structlog.get_logger(__name__)

FIELD_MANAGER = "kubellm-cluster-controller"
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True)
class ClusterOptions:
    probe_interval: float = 10.0
    """Seconds between probes of one cluster (plus up to 20 % jitter)."""
    probe_timeout: float = 5.0
    """Deadline of each call of a probe."""
    stale_after: float = 20.0
    """Seconds without a successful probe before Ready turns False (ProbeStale)."""
    expiry_warning: timedelta = timedelta(days=30)
    """How early CredentialsExpiringSoon turns True."""
    jitter: float = 0.2

    def problems(self) -> list[str]:
        out = []
        if self.probe_interval <= 0 or self.probe_timeout <= 0:
            out.append("probe-interval and probe-timeout must be positive")
        if self.stale_after < self.probe_interval:
            out.append("stale-after must be at least the probe interval")
        if self.expiry_warning.total_seconds() < 0:
            out.append("credentials-expiry-warning must not be negative")
        return out

    def timing(self) -> status.Timing:
        return status.Timing(self.probe_interval, self.stale_after, self.expiry_warning)


@dataclass
class _Connection:
    fingerprint: str
    client: AsyncDynamicClient


@dataclass
class ClusterReconciler:
    clusters: ResourceOps[Any]
    """The clientset's Cluster verbs (typed or dynamic: only JSON calls are used)."""
    recorder: EventRecorder
    options: ClusterOptions = field(default_factory=ClusterOptions)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _connections: dict[str, _Connection] = field(default_factory=dict)

    async def reconcile(self, key: str) -> Result:
        opts = self.options
        try:
            cluster = await self.clusters.request_json("GET", key, "credentials", timeout=opts.probe_timeout * 2)
        except errors.NotFound:
            await self._forget(key)
            return Result()
        meta = cluster.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            await self._forget(key)
            return Result()
        old = cluster.get("status") or {}
        generation = int(meta.get("generation") or 0)
        expiry = connection.expiry(cluster)
        endpoint = (cluster.get("spec") or {}).get("apiEndpoint", "")
        try:
            client = await self._client(key, cluster)
            observed = await probe(client, endpoint, opts.probe_timeout)
            new = status.probed(old, observed, self.now(), expiry, opts.timing(), generation)
        except connection.CredentialsError as exc:
            failure = ProbeFailure("InvalidCredentials", f"{exc}: write usable credentials to the Cluster",
                                   reachable=False, definitive=True)
            new = status.failed(old, failure, self.now(), expiry, opts.timing(), generation)
        except ProbeFailure as failure:
            log.info("cluster probe failed", cluster=key, reason=failure.reason, error=failure.message)
            new = status.failed(old, failure, self.now(), expiry, opts.timing(), generation)
        await self.clusters.apply({"apiVersion": API_VERSION, "kind": "Cluster", "metadata": {"name": key},
                                   "status": new}, field_manager=FIELD_MANAGER, force=True, subresource="status",
                                  timeout=opts.probe_timeout * 2)
        self._tell(cluster, old, new)
        return Result(requeue_after=opts.probe_interval * (1 + random.uniform(0, opts.jitter)))

    def _tell(self, cluster: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> None:
        before = find(old.get("conditions") or [], status.READY)
        after = find(new.get("conditions") or [], status.READY)
        if after is None or (before is not None and (before.get("status"), before.get("reason")) ==
                             (after.get("status"), after.get("reason"))):
            return
        if after.get("status") == "True":
            self.recorder.event(cluster, NORMAL, "ClusterReady", after.get("message", ""))
        else:
            self.recorder.event(cluster, WARNING, after.get("reason") or "ClusterNotReady", after.get("message", ""))

    async def _client(self, key: str, cluster: dict[str, Any]) -> AsyncDynamicClient:
        digest = connection.fingerprint(cluster)
        current = self._connections.get(key)
        if current is not None and current.fingerprint == digest:
            return current.client
        config = connection.client_config(cluster, timeout=self.options.probe_timeout)
        await self._forget(key)
        client = AsyncDynamicClient(config)
        self._connections[key] = _Connection(digest, client)
        return client

    async def _forget(self, key: str) -> None:
        current = self._connections.pop(key, None)
        if current is not None:
            await current.client.close()

    async def close(self) -> None:
        for key in list(self._connections):
            await self._forget(key)
