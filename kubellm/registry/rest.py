"""REST objects: what each resource and subresource can do, as kube's registry/rest interfaces.

A served resource is a `Resource`: its main REST object and one per subresource (`status`, `scale`),
each implementing the capability protocols it supports (`Getter`, `Lister`, `Watcher`, `Creater`,
`Updater`, `Patcher`, `Applier`, `GracefulDeleter`, `CollectionDeleter`). The HTTP layer derives routes,
the verbs discovery advertises and the OpenAPI operations from these capabilities, as kube's endpoint
installer does, so a kind with status and scale needs nothing in the server: its type information declares
its status and `scale`.

This is also the one egress point for objects: everything a REST object returns (objects, lists,
watch events) has passed the strategy's output filter, which removes write-only secret fields.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from kubellm.apis import errors
from kubellm.apis.scheme import ResourceInfo, ScaleSpec
from kubellm.apis.validation import field as ferr
from kubellm.registry.storage.interface import Event, EventSink, Obj
from kubellm.registry.store import DeleteParams, ListParams, MutateFunc, Result, Store, WriteOptions
from kubellm.registry.strategy import Strategy

SCALE_GVK = ("autoscaling", "v1", "Scale")


@runtime_checkable
class Getter(Protocol):
    async def get(self, namespace: str | None, name: str, resource_version: str = "") -> Obj: ...


@runtime_checkable
class Lister(Protocol):
    async def list(self, namespace: str | None, params: ListParams) -> Obj: ...


@runtime_checkable
class Watcher(Protocol):
    async def watch(self, namespace: str | None, params: ListParams, *,
                    sink: EventSink | None = None) -> AsyncIterator[Event]:
        """The event stream; `sink`, when given, may take changes synchronously instead (`WatchOptions.sink`),
        for a consumer that writes each event's `encoded` JSON as it is: a REST object whose stream alters events
        does not pass it on."""
        ...


@runtime_checkable
class Creater(Protocol):
    async def create(self, namespace: str | None, body: Obj, options: WriteOptions) -> Result: ...


@runtime_checkable
class Updater(Protocol):
    async def update(self, namespace: str | None, name: str, body: Obj, options: WriteOptions) -> Result: ...


@runtime_checkable
class Patcher(Protocol):
    async def patch(self, namespace: str | None, name: str, mutate: MutateFunc, options: WriteOptions) -> Result: ...


@runtime_checkable
class Applier(Protocol):
    async def apply(self, namespace: str | None, name: str, body: Obj, force: bool,
                    options: WriteOptions) -> Result: ...


@runtime_checkable
class GracefulDeleter(Protocol):
    async def delete(self, namespace: str | None, name: str, params: DeleteParams) -> Result: ...


@runtime_checkable
class CollectionDeleter(Protocol):
    async def delete_collection(self, namespace: str | None, params: ListParams, delete: DeleteParams) -> Obj: ...


VERBS: tuple[tuple[str, type], ...] = (
    ("create", Creater), ("delete", GracefulDeleter), ("deletecollection", CollectionDeleter), ("get", Getter),
    ("list", Lister), ("patch", Patcher), ("update", Updater), ("watch", Watcher),
)
"""Kubernetes verbs and the capability each needs, in discovery's (alphabetical) order."""


def verbs(rest: object) -> list[str]:
    """The verbs a REST object supports."""
    return [verb for verb, capability in VERBS if isinstance(rest, capability)]


class _Egress:
    """Objects leave through `_out`: the strategy's output filter (write-only fields removed)."""

    strategy: Strategy

    def _out(self, obj: Obj) -> Obj:
        return self.strategy.for_output(obj)

    def _result(self, result: Result) -> Result:
        result.object = self._out(result.object)
        return result

    def _list(self, listed: Obj) -> Obj:
        if not self.strategy.hidden_fields:
            return listed
        return {**listed, "items": [self._out(o) for o in listed["items"]]}

    async def _events(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        hidden = bool(self.strategy.hidden_fields)
        try:
            async for ev in events:
                if hidden and ev.type != "BOOKMARK":
                    ev.object, ev.encoded = self._out(ev.object), None
                yield ev
        finally:
            await events.aclose()  # type: ignore[attr-defined]


class _ObjectREST(_Egress):
    """REST over the resource's own objects (its kind), read through the Store."""

    kind: tuple[str, str, str]

    def __init__(self, store: Store) -> None:
        self.store = store
        self.strategy = store.strategy
        self.kind = (store.info.group, store.info.version, store.info.kind)

    async def get(self, namespace: str | None, name: str, resource_version: str = "") -> Obj:
        return self._out(await self.store.get(namespace, name, resource_version))


class MainREST(_ObjectREST):
    """The resource itself: every verb."""

    async def list(self, namespace: str | None, params: ListParams) -> Obj:
        return self._list(await self.store.list(namespace, params))

    async def watch(self, namespace: str | None, params: ListParams, *,
                    sink: EventSink | None = None) -> AsyncIterator[Event]:
        # hidden fields are removed here, on the way out: a change handed to the sink would bypass that
        direct = sink if not self.strategy.hidden_fields else None
        return self._events(await self.store.watch(namespace, params, sink=direct))

    async def create(self, namespace: str | None, body: Obj, options: WriteOptions) -> Result:
        return self._result(await self.store.create(body, namespace=namespace, options=options))

    async def update(self, namespace: str | None, name: str, body: Obj, options: WriteOptions) -> Result:
        return self._result(await self.store.update(namespace, name, body, options=options))

    async def patch(self, namespace: str | None, name: str, mutate: MutateFunc, options: WriteOptions) -> Result:
        return self._result(await self.store.patch(namespace, name, mutate, options=options))

    async def apply(self, namespace: str | None, name: str, body: Obj, force: bool,
                    options: WriteOptions) -> Result:
        return self._result(await self.store.apply(namespace, name, body, force=force, options=options))

    async def delete(self, namespace: str | None, name: str, params: DeleteParams) -> Result:
        return self._result(await self.store.delete(namespace, name, params))

    async def delete_collection(self, namespace: str | None, params: ListParams, delete: DeleteParams) -> Obj:
        return self._list(await self.store.delete_collection(namespace, params, delete))


class StatusREST(_ObjectREST):
    """The status subresource: get, and writes that change only the status."""

    async def update(self, namespace: str | None, name: str, body: Obj, options: WriteOptions) -> Result:
        return self._result(await self.store.update(namespace, name, body, options=options, subresource="status"))

    async def patch(self, namespace: str | None, name: str, mutate: MutateFunc, options: WriteOptions) -> Result:
        return self._result(await self.store.patch(namespace, name, mutate, options=options, subresource="status"))

    async def apply(self, namespace: str | None, name: str, body: Obj, force: bool,
                    options: WriteOptions) -> Result:
        return self._result(await self.store.apply(namespace, name, body, force=force, options=options,
                                                   subresource="status"))


class SecretsREST:
    """The object with its secret fields (`ResourceInfo.secrets_subresource`): get only, and the one path by which
    they leave the server. The audit log still redacts them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.kind = (store.info.group, store.info.version, store.info.kind)

    async def get(self, namespace: str | None, name: str, resource_version: str = "") -> Obj:
        return await self.store.get(namespace, name, resource_version)


def _dig(obj: Obj, path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


class ScaleREST:
    """The scale subresource: the resource's replica counts and selector as an autoscaling/v1 Scale, at the
    paths its strategy declares (as a CustomResourceDefinition's scale subresource)."""

    kind = SCALE_GVK

    def __init__(self, store: Store, spec: ScaleSpec) -> None:
        self.store = store
        self.spec = spec

    def to_scale(self, obj: Obj) -> Obj:
        meta = obj.get("metadata", {})
        scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                      if k in meta}
        return {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": scale_meta,
                "spec": {"replicas": _dig(obj, self.spec.spec_replicas) or 0},
                "status": {"replicas": _dig(obj, self.spec.status_replicas) or 0,
                           "selector": _dig(obj, self.spec.label_selector) or ""}}

    async def get(self, namespace: str | None, name: str, resource_version: str = "") -> Obj:
        return self.to_scale(await self.store.get(namespace, name, resource_version))

    async def update(self, namespace: str | None, name: str, body: Obj, options: WriteOptions) -> Result:
        if not isinstance(body, dict) or body.get("kind") not in (None, "Scale"):
            raise errors.bad_request("the body of the request must be an autoscaling/v1 Scale")
        replicas = (body.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise errors.invalid("Scale", "autoscaling", name,
                                 [ferr.type_invalid("spec.replicas", replicas, "must be of type integer")])
        if replicas < 0:
            raise errors.invalid("Scale", "autoscaling", name,
                                 [ferr.invalid("spec.replicas", replicas, "must be greater than or equal to 0")])
        rv = (body.get("metadata") or {}).get("resourceVersion")
        head, _, last = self.spec.spec_replicas.rpartition(".")
        info = self.store.info

        def set_replicas(current: Obj) -> Obj:
            if rv and rv != current["metadata"].get("resourceVersion"):
                raise errors.conflict(info.plural, info.group, name, errors.OPTIMISTIC_LOCK_MSG)
            node = current
            for part in head.split(".") if head else []:
                node = node.setdefault(part, {})
            node[last] = replicas
            return current

        result = await self.store.patch(namespace, name, set_replicas, options=options)
        result.object = self.to_scale(result.object)
        return result

    async def patch(self, namespace: str | None, name: str, mutate: MutateFunc, options: WriteOptions) -> Result:
        out = mutate(await self.get(namespace, name))
        return await self.update(namespace, name, await out if isinstance(out, Awaitable) else out, options)


REST = MainREST | StatusREST | ScaleREST | SecretsREST


@dataclass(frozen=True)
class ServedSubresource:
    """What a subresource offers, for discovery and OpenAPI: its name, the kind it reads and writes, verbs."""

    name: str
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...]
    applies: bool
    """Whether it takes server-side apply patches."""


@dataclass(frozen=True)
class Served:
    """What a resource offers (hashable, so documents built from it can be cached)."""

    info: ResourceInfo
    verbs: tuple[str, ...]
    applies: bool
    subresources: tuple[ServedSubresource, ...]

    @property
    def group(self) -> str:
        return self.info.group

    @property
    def version(self) -> str:
        return self.info.version


@dataclass
class Resource:
    """A served resource: its type information, strategy, and REST objects by subresource ("" = main)."""

    info: ResourceInfo
    strategy: Strategy
    store: Store
    rest: dict[str, REST] = field(default_factory=dict)

    @classmethod
    def of(cls, store: Store) -> Resource:
        rest: dict[str, REST] = {"": MainREST(store)}
        if store.info.has_status:
            rest["status"] = StatusREST(store)
        if store.info.scale is not None:
            rest["scale"] = ScaleREST(store, store.info.scale)
        if store.info.secrets_subresource:
            rest[store.info.secrets_subresource] = SecretsREST(store)
        return cls(store.info, store.strategy, store, rest)

    @property
    def main(self) -> MainREST:
        main = self.rest[""]
        assert isinstance(main, MainREST)
        return main

    def describe(self) -> Served:
        """The verbs and subresources this resource serves, derived from its REST objects' capabilities."""
        subs = tuple(ServedSubresource(name, *r.kind, tuple(verbs(r)), isinstance(r, Applier))
                     for name, r in self.rest.items() if name)
        return Served(self.info, tuple(verbs(self.main)), isinstance(self.main, Applier), subs)
