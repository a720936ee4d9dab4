"""Shared index informers, as client-go's `sharedIndexInformer` with its reflector.

One informer per resource (and selector) lists once, then keeps its indexed store (`Indexer`) equal to the
server's objects from one watch, however many handlers are registered:

- the initial list asks the server's cache (`resourceVersion=0`), as client-go does; the watch starts at
  the list's resourceVersion with bookmarks, and each event updates the store before any handler hears of
  it, so a handler (and a lister it reads) never sees a torn state;
- a watch that ends (its `timeoutSeconds`), drops, or fails (server restarting, 429, 5xx) is started again
  from the last resourceVersion seen, events and bookmarks alike, after an exponential backoff for
  failures: no relist;
- only a 410 (Expired or Gone, as an answer or an ERROR event; or a resourceVersion the server has not
  reached) makes it list again, consistently and in pages; the new list replaces the store and the
  differences reach the handlers as adds, updates and deletes (`DeletedFinalStateUnknown` for objects that
  vanished unseen);
- handlers are called in order, each from its own queue and task (a slow handler delays only itself); an
  exception is logged and the handler goes on with the next notification; periodic resync sends every
  object again as an update (`old is new`) per handler's period.

Optionally the initial state comes from a watch-list stream (`use_watch_list=True`: `sendInitialEvents`,
ended by the `k8s.io/initial-events-end` bookmark) instead of a list.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from kubellm.client import errors
from kubellm.client.backoff import Backoff
from kubellm.client.informers.store import NAMESPACE_INDEX, DeletedFinalStateUnknown, Indexer, IndexFunc
from kubellm.client.resource import (
    INITIAL_EVENTS_END,
    ResourceOps,
    Selector,
    WatchEvent,
    needs_relist,
)

log = logging.getLogger("kubellm.client.informers")

O = TypeVar("O")  # noqa: E741
H = TypeVar("H", contravariant=True)
MaybeAwaitable = Any  # a handler may return None or an awaitable


class ResourceEventHandler(Protocol[H]):
    """What an informer calls (client-go's `ResourceEventHandler`)."""

    def on_add(self, obj: H, is_in_initial_list: bool) -> MaybeAwaitable: ...

    def on_update(self, old: H, new: H) -> MaybeAwaitable: ...

    def on_delete(self, obj: H | DeletedFinalStateUnknown[H]) -> MaybeAwaitable: ...


@dataclass
class EventHandlerFuncs(Generic[O]):
    """Handlers as functions (plain or `async`); any of them may be left out."""

    add: Callable[[O], MaybeAwaitable] | None = None
    update: Callable[[O, O], MaybeAwaitable] | None = None
    delete: Callable[[O | DeletedFinalStateUnknown[O]], MaybeAwaitable] | None = None

    def on_add(self, obj: O, is_in_initial_list: bool) -> MaybeAwaitable:
        return self.add(obj) if self.add else None

    def on_update(self, old: O, new: O) -> MaybeAwaitable:
        return self.update(old, new) if self.update else None

    def on_delete(self, obj: O | DeletedFinalStateUnknown[O]) -> MaybeAwaitable:
        return self.delete(obj) if self.delete else None


@dataclass
class FilteringEventHandler(Generic[O]):
    """Passes on only objects `accept` accepts; an update in or out of the filter becomes an add or delete
    (client-go's `FilteringResourceEventHandler`)."""

    accept: Callable[[O], bool]
    handler: ResourceEventHandler[O]

    def on_add(self, obj: O, is_in_initial_list: bool) -> MaybeAwaitable:
        return self.handler.on_add(obj, is_in_initial_list) if self.accept(obj) else None

    def on_update(self, old: O, new: O) -> MaybeAwaitable:
        was, now = self.accept(old), self.accept(new)
        if was and now:
            return self.handler.on_update(old, new)
        if now:
            return self.handler.on_add(new, False)
        if was:
            return self.handler.on_delete(old)
        return None

    def on_delete(self, obj: O | DeletedFinalStateUnknown[O]) -> MaybeAwaitable:
        target = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        return self.handler.on_delete(obj) if self.accept(target) else None


Notification = tuple[str, Any, Any]
_SYNCED: Notification = ("synced", None, None)


class Registration:
    """A handler registered on an informer: whether it has received the initial state, and its removal."""

    def __init__(self, informer: SharedIndexInformer[Any], handler: ResourceEventHandler[Any],
                 resync_period: float) -> None:
        self.informer = informer
        self.handler = handler
        self.resync_period = resync_period
        self.next_resync = time.monotonic() + resync_period if resync_period > 0 else float("inf")
        self.queue: asyncio.Queue[Notification] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self._synced = False
        self.failures = 0

    def has_synced(self) -> bool:
        """The handler has been called for every object of the initial list (client-go's HasSynced)."""
        return self._synced

    def remove(self) -> None:
        self.informer.remove_event_handler(self)

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name=f"handler:{self.informer.name}")

    def offer(self, note: Notification) -> None:
        self.queue.put_nowait(note)

    async def _run(self) -> None:
        handler = self.handler
        while True:
            kind, a, b = await self.queue.get()
            try:
                if kind == "add":
                    result = handler.on_add(a, b)
                elif kind == "update":
                    result = handler.on_update(a, b)
                elif kind == "delete":
                    result = handler.on_delete(a)
                else:
                    self._synced = True
                    continue
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                log.exception("an event handler of the %s informer failed on %s; it goes on", self.informer.name,
                              kind)


@dataclass
class InformerStats:
    """What an informer did (for tests, metrics and benchmarks)."""

    lists: int = 0
    relists_after_expired: int = 0
    watches: int = 0
    watch_errors: int = 0
    events: int = 0
    bookmarks: int = 0
    last_error: str = ""
    started_at: float = field(default_factory=time.monotonic)
    synced_at: float | None = None


class SharedIndexInformer(Generic[O]):
    def __init__(self, source: ResourceOps[O], *, label_selector: Selector = None, field_selector: Selector = None,
                 resync_period: float = 0.0, indexers: Mapping[str, IndexFunc] | None = None,
                 watch_timeout: int = 300, page_size: int = 500, initial_resource_version: str = "0",
                 use_watch_list: bool = False, backoff: Callable[[], Backoff] = Backoff,
                 watch_read_timeout: float | None = None) -> None:
        self.source = source
        self.name = f"{source.ref}" + (f" in {source.namespace}" if source.namespace else "")
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.default_resync = resync_period
        self.watch_timeout = watch_timeout
        self.page_size = page_size
        self.initial_resource_version = initial_resource_version
        self.use_watch_list = use_watch_list
        self.watch_read_timeout = watch_read_timeout
        self._backoff = backoff
        meta = source.codec.meta
        self.indexer: Indexer[O] = Indexer(source.key, {NAMESPACE_INDEX: lambda obj: [meta(obj)[0]]})
        if indexers:
            self.indexer.add_indexers(indexers)
        self.stats = InformerStats()
        self._registrations: list[Registration] = []
        self._rv = ""
        self._synced = False
        self._synced_event: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._need_list = True

    # --- handlers -------------------------------------------------------------------------------------------

    def add_event_handler(self, handler: ResourceEventHandler[O], resync_period: float | None = None) -> Registration:
        """Register `handler`; if the informer already has objects, it is first told of each as an add.
        Safe to call from any thread."""
        if self._loop is not None and self._loop.is_running() and not self._in_loop():
            future = asyncio.run_coroutine_threadsafe(self._add_async(handler, resync_period), self._loop)
            return future.result()
        return self._add(handler, resync_period)

    async def _add_async(self, handler: ResourceEventHandler[O], resync_period: float | None) -> Registration:
        return self._add(handler, resync_period)

    def _in_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _add(self, handler: ResourceEventHandler[O], resync_period: float | None) -> Registration:
        period = self.default_resync if resync_period is None else resync_period
        reg = Registration(self, handler, period)
        self._registrations.append(reg)
        if self._synced:
            for obj in self.indexer.list():
                reg.offer(("add", obj, True))
            reg.offer(_SYNCED)
        if self._loop is not None:
            reg.start()
            if self._wakeup is not None:
                self._wakeup.set()
        return reg

    def remove_event_handler(self, reg: Registration) -> None:
        if reg in self._registrations:
            self._registrations.remove(reg)
        if reg.task is not None:
            reg.task.cancel()

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    def _distribute(self, note: Notification) -> None:
        for reg in self._registrations:
            reg.queue.put_nowait(note)

    # --- state ----------------------------------------------------------------------------------------------

    def has_synced(self) -> bool:
        """The initial list is in the store."""
        return self._synced

    @property
    def last_sync_resource_version(self) -> str:
        return self._rv

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        if self._synced:
            return True
        if self._synced_event is None:
            raise RuntimeError(f"the {self.name} informer is not started")
        try:
            async with asyncio.timeout(timeout):
                await self._synced_event.wait()
        except TimeoutError:
            return False
        return True

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start listing and watching (in the running event loop)."""
        if self._tasks:
            return
        self._loop = asyncio.get_running_loop()
        self._synced_event = asyncio.Event()
        self._wakeup = asyncio.Event()
        if self._synced:
            self._synced_event.set()
        for reg in self._registrations:
            reg.start()
        self._tasks = [self._loop.create_task(self._run(), name=f"reflector:{self.name}"),
                       self._loop.create_task(self._resync_loop(), name=f"resync:{self.name}")]

    @property
    def started(self) -> bool:
        return self._synced_event is not None

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not all(t.done() for t in self._tasks)

    async def stop(self) -> None:
        tasks = self._tasks + [r.task for r in self._registrations if r.task is not None]
        self._tasks = []
        for reg in self._registrations:
            reg.task = None
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._loop = None

    async def run(self) -> None:
        """Start and run until cancelled."""
        self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    # --- the reflector --------------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self._backoff()
        self._need_list = True
        expired = False
        while True:
            if self._need_list and not self.use_watch_list:
                try:
                    await self._list(expired)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._failed("list", exc)
                    expired = expired or needs_relist(exc)
                    await asyncio.sleep(backoff.next())
                    continue
                expired = False
            started = time.monotonic()
            events_before = self.stats.events + self.stats.bookmarks + self.stats.lists
            try:
                # with watch-list, a stream that starts without a resourceVersion brings the state first
                await self._watch(initial=self._need_list)
                quiet = self.stats.events + self.stats.bookmarks + self.stats.lists == events_before
                if quiet and time.monotonic() - started < 1.0:
                    await asyncio.sleep(backoff.next())  # a server that ends every watch at once
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if needs_relist(exc):
                    self.stats.relists_after_expired += 1
                    log.info("%s informer: %s; listing again", self.name, exc)
                    self._need_list = expired = True
                    continue
                self._failed("watch", exc)
                await asyncio.sleep(backoff.next())

    def _failed(self, what: str, exc: BaseException) -> None:
        self.stats.watch_errors += 1
        self.stats.last_error = f"{what}: {exc!r}"
        level = logging.INFO if isinstance(exc, errors.TransportError | errors.ClientTimeout) else logging.WARNING
        log.log(level, "%s informer: %s failed: %r", self.name, what, exc)

    async def _list(self, expired: bool) -> None:
        rv = "" if expired or not self.initial_resource_version else (self._rv or self.initial_resource_version)
        items, list_rv = await self.source.list_all(label_selector=self.label_selector,
                                                    field_selector=self.field_selector, resource_version=rv,
                                                    page_size=0 if rv == "0" else self.page_size)
        self.stats.lists += 1
        self._replace(items, list_rv)
        self._need_list = False

    async def _watch(self, *, initial: bool) -> None:
        timeout = int(self.watch_timeout * (1.0 + random.random()))
        self.stats.watches += 1
        source = self.source
        collected: dict[str, O] | None = {} if initial else None
        rv = "" if initial else self._rv
        stream = source.watch_stream(label_selector=self.label_selector, field_selector=self.field_selector,
                                     resource_version=rv, allow_bookmarks=True, timeout_seconds=timeout,
                                     send_initial_events=initial, read_timeout=self.watch_read_timeout)
        async with contextlib.aclosing(stream):  # its connection closes with it, also when the informer stops
            async for event in stream:
                if collected is not None:
                    if event.type == "BOOKMARK" and _initial_events_end(source, event.object):
                        self._replace(list(collected.values()), source.resource_version(event.object))
                        self.stats.lists += 1
                        self._need_list = False
                        collected = None
                    elif event.type != "BOOKMARK":
                        collected[source.key(event.object)] = event.object
                    continue
                self._handle(event)

    def _handle(self, event: WatchEvent[O]) -> None:
        obj = event.object
        source = self.source
        if event.type == "BOOKMARK":
            self.stats.bookmarks += 1
            self._rv = source.resource_version(obj) or self._rv
            return
        self.stats.events += 1
        key = source.key(obj)
        if event.type == "DELETED":
            old = self.indexer.remove(key)
            self._distribute(("delete", obj, None))
        else:
            old = self.indexer.put(key, obj)
            self._distribute(("add", obj, False) if old is None else ("update", old, obj))
        self._rv = source.resource_version(obj) or self._rv

    def _replace(self, items: list[O], resource_version: str) -> None:
        source = self.source
        fresh = {source.key(o): o for o in items}
        old = self.indexer.replace(fresh)
        initial = not self._synced
        rv_of = source.resource_version
        for key, obj in fresh.items():
            prev = old.get(key)
            if prev is None:
                self._distribute(("add", obj, initial))
            elif rv_of(prev) != rv_of(obj):
                self._distribute(("update", prev, obj))
        for key, prev in old.items():
            if key not in fresh:
                self._distribute(("delete", DeletedFinalStateUnknown(key, prev), None))
        self._rv = resource_version
        if not self._synced:
            self._synced = True
            self.stats.synced_at = time.monotonic()
            self._distribute(_SYNCED)
            if self._synced_event is not None:
                self._synced_event.set()

    async def _resync_loop(self) -> None:
        assert self._wakeup is not None
        while True:
            due = [r.next_resync for r in self._registrations if r.resync_period > 0]
            delay = max(0.0, min(due) - time.monotonic()) if due else None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wakeup.wait()
            if not self._synced:
                continue
            now = time.monotonic()
            for reg in self._registrations:
                if reg.resync_period > 0 and reg.next_resync <= now:
                    reg.next_resync = now + reg.resync_period
                    for obj in self.indexer.list():
                        reg.offer(("update", obj, obj))


def _initial_events_end(source: ResourceOps[Any], obj: Any) -> bool:
    if isinstance(obj, dict):
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
    else:
        annotations = getattr(getattr(obj, "metadata", None), "annotations", None) or {}
    return str(annotations.get(INITIAL_EVENTS_END, "")).lower() == "true"

