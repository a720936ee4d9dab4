"""The dynamic client: every verb on any resource a server offers, with plain dicts.

Resources are found through discovery: the aggregated discovery document (`apidiscovery.k8s.io/v2`, one
request for `/api` and one for `/apis`) when the server offers it, else the per group-version
`APIResourceList`s of discovery v1. The answer is cached (`ttl`, 10 minutes by default); a lookup that
finds nothing refreshes it once before failing. It speaks to KubeLLM and to any Kubernetes API server (the
member clusters' Deployments, Services and HPAs), server-side apply included:

    async with AsyncDynamicClient(Config.from_kubeconfig(path)) as dyn:
        deployments = await dyn.resource(api_version="apps/v1", kind="Deployment", namespace="default")
        await deployments.apply(manifest, field_manager="kubellm", force=True)
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import orjson

from kubellm.apis.meta.v1 import Preconditions
from kubellm.client import errors
from kubellm.client.backoff import Backoff
from kubellm.client.config import Config
from kubellm.client.resource import (
    DictCodec,
    FieldValidation,
    ObjectList,
    PatchType,
    PropagationPolicy,
    ResourceOps,
    ResourceRef,
    Selector,
    WatchEvent,
)
from kubellm.client.rest.loop import LoopThread
from kubellm.client.rest.transport import Transport

log = logging.getLogger("kubellm.client")

Obj = dict[str, Any]
DISCOVERY_V2 = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


class ResourceNotFound(errors.ClientError, LookupError):
    """Discovery does not know the resource asked for."""


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    group: str
    version: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class APIResource:
    """A resource as discovery describes it."""

    ref: ResourceRef
    singular: str = ""
    verbs: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: Mapping[str, Subresource] = field(default_factory=dict)
    preferred: bool = True
    """Whether its version is the group's preferred one."""

    @property
    def group(self) -> str:
        return self.ref.group

    @property
    def version(self) -> str:
        return self.ref.version

    @property
    def kind(self) -> str:
        return self.ref.kind

    @property
    def plural(self) -> str:
        return self.ref.plural

    @property
    def namespaced(self) -> bool:
        return self.ref.namespaced

    @property
    def api_version(self) -> str:
        return self.ref.api_version


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, sep, version = api_version.rpartition("/")
    return (group, version) if sep else ("", api_version)


def _from_aggregated(doc: Mapping[str, Any]) -> list[APIResource]:
    out: list[APIResource] = []
    for item in doc.get("items") or []:
        group = (item.get("metadata") or {}).get("name", "")
        for index, ver in enumerate(item.get("versions") or []):
            version = ver.get("version", "")
            for res in ver.get("resources") or []:
                kind = (res.get("responseKind") or {}).get("kind", "")
                subs = {
                    s.get("subresource", ""): Subresource(
                        s.get("subresource", ""), (s.get("responseKind") or {}).get("kind", ""),
                        (s.get("responseKind") or {}).get("group", group),
                        (s.get("responseKind") or {}).get("version", version), tuple(s.get("verbs") or ()))
                    for s in res.get("subresources") or []}
                out.append(APIResource(
                    ResourceRef(group, version, res.get("resource", ""), kind, res.get("scope") == "Namespaced"),
                    res.get("singularResource", ""), tuple(res.get("verbs") or ()), tuple(res.get("shortNames") or ()),
                    tuple(res.get("categories") or ()), subs, preferred=index == 0))
    return out


def _from_resource_list(doc: Mapping[str, Any], preferred: bool) -> list[APIResource]:
    group, version = _split_api_version(doc.get("groupVersion", ""))
    mains: dict[str, dict[str, Any]] = {}
    subs: dict[str, dict[str, Subresource]] = {}
    for res in doc.get("resources") or []:
        name = res.get("name", "")
        if "/" in name:
            parent, sub = name.split("/", 1)
            subs.setdefault(parent, {})[sub] = Subresource(sub, res.get("kind", ""), res.get("group", group),
                                                           res.get("version", version), tuple(res.get("verbs") or ()))
        else:
            mains[name] = res
    return [APIResource(ResourceRef(group, version, name, res.get("kind", ""), bool(res.get("namespaced"))),
                        res.get("singularName", ""), tuple(res.get("verbs") or ()),
                        tuple(res.get("shortNames") or ()), tuple(res.get("categories") or ()),
                        subs.get(name, {}), preferred)
            for name, res in mains.items()]


class Discovery:
    """What a server serves, cached for `ttl` seconds."""

    def __init__(self, transport: Transport, ttl: float = 600.0) -> None:
        self.transport = transport
        self.ttl = ttl
        self._resources: list[APIResource] | None = None
        self._fetched = 0.0
        self._lock: asyncio.Lock | None = None
        self.aggregated: bool | None = None
        """Whether the last refresh used aggregated discovery (v2)."""

    def invalidate(self) -> None:
        self._resources = None

    async def resources(self, *, refresh: bool = False) -> list[APIResource]:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            fresh = self._resources is not None and time.monotonic() - self._fetched < self.ttl
            if refresh or not fresh:
                self._resources = await self._fetch()
                self._fetched = time.monotonic()
            assert self._resources is not None
            return self._resources

    async def _fetch(self) -> list[APIResource]:
        core = await self._get("/api", DISCOVERY_V2)
        groups = await self._get("/apis", DISCOVERY_V2)
        if core.get("kind") == "APIGroupDiscoveryList" and groups.get("kind") == "APIGroupDiscoveryList":
            self.aggregated = True
            core_items = core.get("items") or []
            for item in core_items:  # the legacy group has no name
                item.setdefault("metadata", {}).setdefault("name", "")
            return _from_aggregated({"items": [*core_items, *(groups.get("items") or [])]})
        self.aggregated = False
        lists: list[tuple[str, bool]] = [(f"/api/{v}", True) for v in core.get("versions") or []]
        for group in groups.get("groups") or []:
            preferred = (group.get("preferredVersion") or {}).get("groupVersion")
            for ver in group.get("versions") or []:
                gv = ver.get("groupVersion", "")
                lists.append((f"/apis/{gv}", gv == preferred))
        docs = await asyncio.gather(*(self._get(path) for path, _ in lists), return_exceptions=True)
        out: list[APIResource] = []
        for (path, preferred), doc in zip(lists, docs):
            if isinstance(doc, BaseException):
                if not isinstance(doc, Exception):
                    raise doc
                log.warning("discovery of %s failed: %r", path, doc)  # an unavailable aggregated API
                continue
            out.extend(_from_resource_list(doc, preferred))
        return out

    async def _get(self, path: str, accept: str | None = None) -> dict[str, Any]:
        resp = await self.transport.request("GET", path, accept=accept)
        data: dict[str, Any] = orjson.loads(resp.body)
        return data

    async def lookup(self, *, api_version: str | None = None, kind: str | None = None, group: str | None = None,
                     version: str | None = None, resource: str | None = None) -> APIResource:
        """The resource by kind or by plural (or short or singular name), within `api_version` (or
        group/version; without a version the group's preferred one). Refreshes once on a miss."""
        if api_version is not None:
            group, version = _split_api_version(api_version)
        if kind is None and resource is None:
            raise ValueError("give a kind or a resource")
        for refresh in (False, True):
            found = self._match(await self.resources(refresh=refresh), kind, group, version, resource)
            if found is not None:
                return found
        what = kind or resource
        where = f" in {group}/{version}" if version else f" in group {group!r}" if group is not None else ""
        raise ResourceNotFound(f"the server does not serve {what}{where}")

    @staticmethod
    def _match(resources: Sequence[APIResource], kind: str | None, group: str | None, version: str | None,
               resource: str | None) -> APIResource | None:
        candidates = []
        for r in resources:
            if group is not None and r.group != group:
                continue
            if version is not None and r.version != version:
                continue
            if kind is not None and r.kind != kind:
                continue
            if resource is not None and resource not in (r.plural, r.singular, *r.short_names):
                continue
            candidates.append(r)
        if not candidates:
            return None
        candidates.sort(key=lambda r: (not r.preferred, r.group != "", r.group))
        return candidates[0]


class AsyncDynamicResource(ResourceOps[Obj]):
    """Every verb of one resource, on dicts, in one namespace ("" for all, on namespaced resources)."""

    def __init__(self, transport: Transport, info: APIResource, namespace: str = "") -> None:
        super().__init__(transport, info.ref, DictCodec(), namespace)
        self.info = info

    def with_namespace(self, namespace: str) -> Self:
        return type(self)(self.transport, self.info, namespace)


class AsyncDynamicClient:
    """The asyncio dynamic client (one connection pool; discovery cached)."""

    def __init__(self, config: Config | None = None, *, transport: Transport | None = None,
                 discovery_ttl: float = 600.0) -> None:
        self.config = config if config is not None else (transport.config if transport else Config.load())
        self.transport = transport or Transport(self.config)
        self.discovery = Discovery(self.transport, discovery_ttl)

    async def resource(self, *, api_version: str | None = None, kind: str | None = None, group: str | None = None,
                       version: str | None = None, resource: str | None = None,
                       namespace: str = "") -> AsyncDynamicResource:
        """A resource found by discovery (see `Discovery.lookup`)."""
        info = await self.discovery.lookup(api_version=api_version, kind=kind, group=group, version=version,
                                           resource=resource)
        return AsyncDynamicResource(self.transport, info, namespace)

    def resource_for(self, ref: ResourceRef, namespace: str = "") -> AsyncDynamicResource:
        """A resource known in advance (no discovery)."""
        return AsyncDynamicResource(self.transport, APIResource(ref), namespace)

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


class DynamicResource:
    """The blocking flavour of `AsyncDynamicResource`: the same verbs, run on the client's loop thread."""

    def __init__(self, ops: AsyncDynamicResource, loop: LoopThread) -> None:
        self.ops = ops
        self._loop = loop

    @property
    def info(self) -> APIResource:
        return self.ops.info

    @property
    def namespace(self) -> str:
        return self.ops.namespace

    def with_namespace(self, namespace: str) -> DynamicResource:
        return DynamicResource(self.ops.with_namespace(namespace), self._loop)

    def get(self, name: str, *, subresource: str | None = None, resource_version: str | None = None,
            timeout: float | None = None) -> Obj:
        return self._loop.run(self.ops.get(name, subresource=subresource, resource_version=resource_version,
                                           timeout=timeout))

    def list(self, *, label_selector: Selector = None, field_selector: Selector = None, limit: int | None = None,
             continue_: str | None = None, resource_version: str | None = None,
             resource_version_match: str | None = None, timeout: float | None = None) -> ObjectList[Obj]:
        return self._loop.run(self.ops.list(
            label_selector=label_selector, field_selector=field_selector, limit=limit, continue_=continue_,
            resource_version=resource_version, resource_version_match=resource_version_match, timeout=timeout))

    def iter(self, *, label_selector: Selector = None, field_selector: Selector = None, page_size: int = 500,
             timeout: float | None = None) -> Iterator[Obj]:
        return self._loop.iterate(self.ops.iter(label_selector=label_selector, field_selector=field_selector,
                                                page_size=page_size, timeout=timeout))

    def create(self, obj: Obj, *, dry_run: bool = False, field_manager: str | None = None,
               field_validation: FieldValidation | None = None, timeout: float | None = None) -> Obj:
        return self._loop.run(self.ops.create(obj, dry_run=dry_run, field_manager=field_manager,
                                              field_validation=field_validation, timeout=timeout))

    def update(self, obj: Obj, *, subresource: str | None = None, dry_run: bool = False,
               field_manager: str | None = None, field_validation: FieldValidation | None = None,
               timeout: float | None = None) -> Obj:
        return self._loop.run(self.ops.update(obj, subresource=subresource, dry_run=dry_run,
                                              field_manager=field_manager, field_validation=field_validation,
                                              timeout=timeout))

    def patch(self, name: str, patch: Mapping[str, Any] | Sequence[Mapping[str, Any]], *,
              patch_type: PatchType | None = None, subresource: str | None = None, dry_run: bool = False,
              field_manager: str | None = None, field_validation: FieldValidation | None = None,
              timeout: float | None = None) -> Obj:
        return self._loop.run(self.ops.patch(name, patch, patch_type=patch_type, subresource=subresource,
                                             dry_run=dry_run, field_manager=field_manager,
                                             field_validation=field_validation, timeout=timeout))

    def apply(self, config: Mapping[str, Any], *, field_manager: str, force: bool = False,
              subresource: str | None = None, dry_run: bool = False, timeout: float | None = None) -> Obj:
        return self._loop.run(self.ops.apply(config, field_manager=field_manager, force=force,
                                             subresource=subresource, dry_run=dry_run, timeout=timeout))

    def delete(self, name: str, *, preconditions: Preconditions | Mapping[str, str] | None = None,
               propagation_policy: PropagationPolicy | None = None, grace_period_seconds: int | None = None,
               dry_run: bool = False, timeout: float | None = None) -> Obj | None:
        return self._loop.run(self.ops.delete(name, preconditions=preconditions,
                                              propagation_policy=propagation_policy,
                                              grace_period_seconds=grace_period_seconds, dry_run=dry_run,
                                              timeout=timeout))

    def delete_collection(self, *, label_selector: Selector = None, field_selector: Selector = None,
                          propagation_policy: PropagationPolicy | None = None,
                          grace_period_seconds: int | None = None, dry_run: bool = False,
                          timeout: float | None = None) -> builtins.list[Obj]:
        return self._loop.run(self.ops.delete_collection(
            label_selector=label_selector, field_selector=field_selector, propagation_policy=propagation_policy,
            grace_period_seconds=grace_period_seconds, dry_run=dry_run, timeout=timeout))

    def watch(self, *, label_selector: Selector = None, field_selector: Selector = None,
              resource_version: str | None = None, timeout_seconds: int | None = None, bookmarks: bool = False,
              relist_on_expired: bool = True, backoff: Backoff | None = None) -> Iterator[WatchEvent[Obj]]:
        return self._loop.iterate(self.ops.watch(
            label_selector=label_selector, field_selector=field_selector, resource_version=resource_version,
            timeout_seconds=timeout_seconds, bookmarks=bookmarks, relist_on_expired=relist_on_expired,
            backoff=backoff))


class DynamicClient:
    """The blocking dynamic client: the asyncio one, run on a private event loop thread."""

    def __init__(self, config: Config | None = None, *, discovery_ttl: float = 600.0) -> None:
        self.loop = LoopThread("kubellm-dynamic-client")
        self.aio = AsyncDynamicClient(config, discovery_ttl=discovery_ttl)
        self.config = self.aio.config
        self.transport = self.aio.transport
        self.discovery = self.aio.discovery

    def resource(self, *, api_version: str | None = None, kind: str | None = None, group: str | None = None,
                 version: str | None = None, resource: str | None = None, namespace: str = "") -> DynamicResource:
        ops = self.loop.run(self.aio.resource(api_version=api_version, kind=kind, group=group, version=version,
                                              resource=resource, namespace=namespace))
        return DynamicResource(ops, self.loop)

    def resource_for(self, ref: ResourceRef, namespace: str = "") -> DynamicResource:
        return DynamicResource(self.aio.resource_for(ref, namespace), self.loop)

    def resources(self, *, refresh: bool = False) -> builtins.list[APIResource]:
        return self.loop.run(self.discovery.resources(refresh=refresh))

    def close(self) -> None:
        self.loop.close(self.aio.close())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

