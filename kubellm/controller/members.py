"""Connections to the member clusters, shared by the controllers that act on them.

A `Member` is one cluster as a controller sees it: a dynamic client built from the Cluster's credentials
(read through its `credentials` subresource, the only way they leave the API server) and informers of the
kinds the controllers manage there, narrowed by a label selector to the objects KubeLLM made. Changes
to those objects reach `on_change(cluster, obj)`, which maps them to keys of the controllers' queues, so
a Deployment edited by hand on a member, or a pod that turns Ready there, is reconciled at once without
polling.

A member is connected on first use and kept while the Cluster's `metadata.generation` stays the same
(credentials, endpoint and CA are spec: a change makes a new connection). A member that cannot be
reached keeps its informers retrying with backoff; `synced` tells whether its caches can be trusted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from kubellm.client import DeletedFinalStateUnknown, EventHandlerFuncs, ResourceRef, SharedIndexInformer, errors
from kubellm.client.dynamic import AsyncDynamicClient, AsyncDynamicResource
from kubellm.client.informers import AsyncDynamicInformerFactory
from kubellm.client.resource import ResourceOps
from kubellm.controller.cluster import connection

log = structlog.get_logger(__name__)

DEPLOYMENTS = ResourceRef("apps", "v1", "deployments", "Deployment", True)
SERVICES = ResourceRef("", "v1", "services", "Service", True)
PODS = ResourceRef("", "v1", "pods", "Pod", True)
HPAS = ResourceRef("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True)
PVCS = ResourceRef("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True)
NAMESPACES = ResourceRef("", "v1", "namespaces", "Namespace", False)
INSTANCE_INDEX = "instance"
"""Index of every member informer: `<namespace>/<app.kubernetes.io/name>/<app.kubernetes.io/instance>` (the
recommended labels the controllers put on what they make), so an LLMService's pods are a lookup, not a scan."""


def instance_of(obj: Any) -> list[str]:
    meta = obj.get("metadata") or {} if isinstance(obj, dict) else {}
    labels = meta.get("labels") or {}
    app, instance = labels.get("app.kubernetes.io/name"), labels.get("app.kubernetes.io/instance")
    return [f"{meta.get('namespace') or ''}/{app}/{instance}"] if app and instance else []

OnChange = Callable[[str, dict[str, Any]], None]


@dataclass
class Member:
    name: str
    generation: int
    client: AsyncDynamicClient
    informers: AsyncDynamicInformerFactory
    watched: dict[ResourceRef, SharedIndexInformer[dict[str, Any]]] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)
    """Namespaces applied on the member through this connection (each once, not once per object in it)."""

    def resource(self, ref: ResourceRef, namespace: str = "") -> AsyncDynamicResource:
        return self.client.resource_for(ref, namespace)

    def cached(self, ref: ResourceRef, namespace: str, name: str) -> dict[str, Any] | None:
        """The member's object as last seen by its informer (None: absent, or `ref` not watched)."""
        informer = self.watched.get(ref)
        if informer is None:
            return None
        obj = informer.indexer.get_by_key(f"{namespace}/{name}" if ref.namespaced else name)
        return obj if isinstance(obj, dict) else None

    def instance_objects(self, ref: ResourceRef, namespace: str, app: str, instance: str) -> list[dict[str, Any]]:
        """The cached objects of kind `ref` labelled as `app`'s `instance` in `namespace`."""
        informer = self.watched.get(ref)
        if informer is None:
            return []
        return [o for o in informer.indexer.by_index(INSTANCE_INDEX, f"{namespace}/{app}/{instance}")
                if isinstance(o, dict)]

    @property
    def synced(self) -> bool:
        return all(i.has_synced() for i in self.watched.values())

    async def close(self) -> None:
        await self.informers.shutdown()
        await self.client.close()


class Members:
    def __init__(self, clusters: ResourceOps[Any], *, kinds: Iterable[ResourceRef], label_selector: str,
                 on_change: OnChange | None = None, timeout: float = 10.0) -> None:
        self.clusters = clusters
        self.kinds = tuple(kinds)
        self.label_selector = label_selector
        self.on_change = on_change
        self.timeout = timeout
        self._members: dict[str, Member] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def route(self, key_of: Callable[[dict[str, Any]], str | None], enqueue: Callable[[str], None]) -> None:
        """Send every member object change to `enqueue(key_of(obj))` (objects it maps to None are ignored)."""

        def changed(_cluster: str, obj: dict[str, Any]) -> None:
            key = key_of(obj)
            if key is not None:
                enqueue(key)

        self.on_change = changed

    def get(self, name: str) -> Member | None:
        return self._members.get(name)

    def names(self) -> list[str]:
        return sorted(self._members)

    async def connect(self, name: str, generation: int) -> Member:
        """The member `name`, connected (and its informers started) if it is not yet at `generation`;
        `connection.CredentialsError` or the client's errors when its credentials cannot be read or used. The
        connection is kept while `generation` is not newer than the one its credentials were read at."""
        current = self._members.get(name)
        if current is not None and current.generation >= generation:
            return current  # a lister behind the credentials read is no reason to reconnect
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            current = self._members.get(name)
            if current is not None and current.generation >= generation:
                return current
            cluster = await self.clusters.request_json("GET", name, "credentials", timeout=self.timeout)
            config = connection.client_config(cluster, timeout=self.timeout)
            client = AsyncDynamicClient(config)
            factory = AsyncDynamicInformerFactory(client.transport, label_selector=self.label_selector)
            member = Member(name, int((cluster.get("metadata") or {}).get("generation") or generation), client,
                            factory)
            for ref in self.kinds:
                informer = factory.for_resource(ref).informer()
                informer.add_indexers({INSTANCE_INDEX: instance_of})
                informer.add_event_handler(self._handler(name))
                member.watched[ref] = informer
            factory.start()
            # a first look at what the member runs, so the caller does not act on empty caches; a member
            # that does not answer in time is used anyway (`synced` says so) and its informers keep trying
            await asyncio.gather(*(i.wait_for_sync(self.timeout) for i in member.watched.values()))
            if current is not None:
                await current.close()
            self._members[name] = member
            log.info("member connected", cluster=name, generation=member.generation)
            return member

    async def usable(self, name: str, cluster: Mapping[str, Any] | None, *,
                     synced: bool = True) -> tuple[Member | None, str]:
        """The member of the Cluster `cluster` (as the lister has it) ready to act on, or None and why not (for a
        status message): the Cluster is gone, its credentials do not connect, or (with `synced`) its caches are
        not filled yet."""
        if cluster is None:
            return None, f"Cluster {name} no longer exists"
        try:
            member = await self.connect(name, int((cluster.get("metadata") or {}).get("generation") or 0))
        except (errors.ClientError, connection.CredentialsError) as exc:
            return None, f"cannot connect to {name}: {exc}"
        if synced and not member.synced:
            unsynced = [f"{informer.name}: {informer.stats.last_error}" if informer.stats.last_error
                        else informer.name for informer in member.watched.values() if not informer.has_synced()]
            return None, f"reading the state of {name}" + (f" ({'; '.join(unsynced)})" if unsynced else "")
        return member, ""

    def _handler(self, cluster: str) -> EventHandlerFuncs[dict[str, Any]]:
        def changed(obj: dict[str, Any] | DeletedFinalStateUnknown[dict[str, Any]]) -> None:
            target = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
            if isinstance(target, dict) and self.on_change is not None:
                self.on_change(cluster, target)

        return EventHandlerFuncs(add=changed, update=lambda _old, new: changed(new), delete=changed)

    async def forget(self, name: str) -> None:
        member = self._members.pop(name, None)
        if member is not None:
            await member.close()
            log.info("member disconnected", cluster=name)

    async def close(self) -> None:
        for name in list(self._members):
            await self.forget(name)
