"""Shared informer factories: one informer (one list, one watch) per resource, however many callers ask.

`AsyncInformerFactory` runs in the caller's event loop; `BlockingInformerFactory` runs its informers on the
blocking clientset's private loop thread (handlers are then called on that thread; listers may be read
from any thread). The generated `SharedInformerFactory` classes add typed accessors per group and version
(`factory.model_v1alpha1.llmservices().informer()` / `.lister()`); `DynamicInformerFactory` serves any
resource as dicts (`factory.for_resource(ref)`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from kubellm.client.backoff import Backoff
from kubellm.client.informers.informer import SharedIndexInformer
from kubellm.client.informers.lister import ClusterScopedLister, NamespacedLister
from kubellm.client.informers.store import IndexFunc
from kubellm.client.resource import DictCodec, ModelCodec, ObjectCodec, ResourceOps, ResourceRef, Selector
from kubellm.client.rest.loop import LoopThread
from kubellm.client.rest.transport import Transport

O = TypeVar("O")  # noqa: E741
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class InformerOptions:
    """How the factory's informers list and watch (see `SharedIndexInformer`)."""

    watch_timeout: int = 300
    """Each watch asks the server to end it after 1-2 times this many seconds (then it is resumed)."""
    page_size: int = 500
    """Page size of the consistent lists after a 410."""
    initial_resource_version: str = "0"
    """The first list reads the server's cache ("0", as client-go); "" reads consistently."""
    use_watch_list: bool = False
    """Take the initial state from a watch-list stream (`sendInitialEvents`) instead of a list."""
    backoff: Callable[[], Backoff] = Backoff
    watch_read_timeout: float | None = None


class InformerFactory:
    def __init__(self, transport: Transport, *, namespace: str = "", resync_period: float = 0.0,
                 label_selector: Selector = None, field_selector: Selector = None,
                 indexers: Mapping[str, IndexFunc] | None = None, options: InformerOptions | None = None) -> None:
        self.transport = transport
        self.namespace = namespace
        self.resync_period = resync_period
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.indexers = dict(indexers or {})
        self.options = options or InformerOptions()
        self._informers: dict[ResourceRef, SharedIndexInformer[Any]] = {}

    def informer_for(self, ref: ResourceRef, object_codec: ObjectCodec[O]) -> SharedIndexInformer[O]:
        """The informer of `ref`, made on first use."""
        informer = self._informers.get(ref)
        if informer is None:
            opts = self.options
            informer = SharedIndexInformer(
                ResourceOps(self.transport, ref, object_codec, self.namespace), label_selector=self.label_selector,
                field_selector=self.field_selector, resync_period=self.resync_period, indexers=self.indexers,
                watch_timeout=opts.watch_timeout, page_size=opts.page_size,
                initial_resource_version=opts.initial_resource_version, use_watch_list=opts.use_watch_list,
                backoff=opts.backoff, watch_read_timeout=opts.watch_read_timeout)
            self._informers[ref] = informer
        return informer

    def typed_informer(self, ref: ResourceRef, model: type[M]) -> SharedIndexInformer[M]:
        return self.informer_for(ref, ModelCodec(model))

    @property
    def informers(self) -> dict[ResourceRef, SharedIndexInformer[Any]]:
        return dict(self._informers)

    def _start(self) -> None:
        for informer in self._informers.values():
            informer.start()

    async def _start_async(self) -> None:
        self._start()

    async def _wait_for_cache_sync(self, timeout: float | None) -> dict[ResourceRef, bool]:
        refs = [ref for ref, informer in self._informers.items() if informer.started]
        results = await asyncio.gather(*(self._informers[r].wait_for_sync(timeout) for r in refs))
        return dict(zip(refs, results))

    async def _shutdown(self) -> None:
        await asyncio.gather(*(i.stop() for i in self._informers.values()))


class AsyncInformerFactory(InformerFactory):
    def start(self) -> None:
        """Start every informer asked for so far that is not running (call again after asking for more)."""
        self._start()

    async def wait_for_cache_sync(self, timeout: float | None = None) -> dict[ResourceRef, bool]:
        """Wait until every started informer has its initial list (or `timeout` passed): by resource,
        whether it synced."""
        return await self._wait_for_cache_sync(timeout)

    async def shutdown(self) -> None:
        await self._shutdown()


class BlockingInformerFactory(InformerFactory):
    def __init__(self, transport: Transport, loop: LoopThread, **kwargs: Any) -> None:
        super().__init__(transport, **kwargs)
        self.loop = loop

    def start(self) -> None:
        self.loop.run(self._start_async())

    def wait_for_cache_sync(self, timeout: float | None = None) -> dict[ResourceRef, bool]:
        return self.loop.run(self._wait_for_cache_sync(timeout))

    def shutdown(self) -> None:
        self.loop.run(self._shutdown())


class ResourceInformer(Generic[O]):
    """An informer and a lister of one resource, from a factory (what the generated accessors return for
    typed resources and `for_resource` for dynamic ones)."""

    def __init__(self, factory: InformerFactory, ref: ResourceRef, object_codec: ObjectCodec[O]) -> None:
        self._factory = factory
        self.ref = ref
        self._codec = object_codec

    def informer(self) -> SharedIndexInformer[O]:
        return self._factory.informer_for(self.ref, self._codec)

    def namespaced_lister(self) -> NamespacedLister[O]:
        return NamespacedLister(self.informer().indexer, self._codec.labels)

    def cluster_lister(self) -> ClusterScopedLister[O]:
        return ClusterScopedLister(self.informer().indexer, self._codec.labels)

    def lister(self) -> NamespacedLister[O] | ClusterScopedLister[O]:
        return self.namespaced_lister() if self.ref.namespaced else self.cluster_lister()


class DynamicInformerFactoryMixin:
    def for_resource(self: Any, ref: ResourceRef) -> ResourceInformer[dict[str, Any]]:
        """The informer and lister of any resource, as dicts (find `ref` with the dynamic client's
        discovery: `await dyn.resource_ref(api_version="apps/v1", kind="Deployment")`)."""
        return ResourceInformer(self, ref, DictCodec())


class AsyncDynamicInformerFactory(DynamicInformerFactoryMixin, AsyncInformerFactory):
    """Informers of any resource, as dicts, in the caller's event loop."""


class DynamicInformerFactory(DynamicInformerFactoryMixin, BlockingInformerFactory):
    """Informers of any resource, as dicts, on a blocking dynamic client's loop thread."""
