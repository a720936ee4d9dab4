"""Cacher: the objects of one resource kept in memory by a single watch on the wrapped storage."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import structlog

from kubellm.registry.storage import errors
from kubellm.registry.storage.cacher.watcher import CacheWatcher
from kubellm.registry.storage.interface import (
    Event,
    ListOptions,
    ListResult,
    Obj,
    ProgressRequester,
    Storage,
    Watcher,
    WatchOptions,
    initial_events_end,
)
from kubellm.registry.storage.tasks import cancel_and_wait

log = structlog.get_logger(__name__)


def key_of(obj: Obj) -> str:
    """The object's key below its resource root: `<namespace>/<name>` or `<name>`."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


@dataclass
class _Change:
    rev: int
    type: str
    obj: Obj
    prev: Obj | None


class Cacher:
    def __init__(self, storage: Storage, root: str, *, history: int = 2000, watcher_capacity: int = 10_000,
                 retry_delay: float = 1.0) -> None:
        self.storage = storage
        self.root = root
        self.objects: dict[str, Obj] = {}
        self.revision = 0
        self.history: deque[_Change] = deque(maxlen=history)
        self.window_start = 0
        """Every change after this revision is in `history`."""
        self.watchers: set[CacheWatcher] = set()
        self.ready = asyncio.Event()
        self._capacity = watcher_capacity
        self._retry_delay = retry_delay
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        """Set (and replaced) whenever the revision advances, for `wait_until`."""
        self._watcher: Watcher | None = None

    async def wait_until(self, revision: int, timeout: float = 3.0) -> bool:
        """Wait until the cache has seen `revision`; False if it has not within `timeout`. A cache behind asks
        its watch for progress, so a revision reached by writes elsewhere in etcd is learned at once, not at the
        next bookmark."""
        if self.revision >= revision and self.ready.is_set():
            return True
        if isinstance(self._watcher, ProgressRequester):
            await self._watcher.request_progress()
        try:
            async with asyncio.timeout(timeout):
                while self.revision < revision or not self.ready.is_set():
                    await self._progress.wait()
        except TimeoutError:
            return False
        return True

    def _advanced(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"cacher:{self.root}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self._reset()

    def _reset(self) -> None:
        self.ready.clear()
        for w in list(self.watchers):
            w.terminate()
        self.watchers.clear()

    async def _run(self) -> None:
        while True:
            try:
                await self._sync()
            except asyncio.CancelledError:
                raise
            except errors.StorageError as exc:
                log.warning("watch cache restarting", root=self.root, error=exc.message or type(exc).__name__)
            except Exception:
                log.exception("watch cache failed; restarting", root=self.root)
            self._reset()
            await asyncio.sleep(self._retry_delay)

    async def _sync(self) -> None:
        listed = await self.storage.get_list(self.root, ListOptions())
        self.objects = {key_of(o): o for o in listed.items}
        self.revision = self.window_start = int(listed.resource_version)
        self.history.clear()
        watcher = await self.storage.watch(self.root, WatchOptions(resource_version=listed.resource_version,
                                                                   allow_bookmarks=True, bookmark_interval=1.0))
        self._watcher = watcher
        self.ready.set()
        self._advanced()
        log.info("watch cache ready", root=self.root, objects=len(self.objects), revision=self.revision)
        try:
            async for ev in watcher:
                self._apply(ev)
        finally:
            self._watcher = None
            await watcher.close()
        raise errors.Unavailable(message="the watch on the wrapped storage ended")

    def _apply(self, ev: Event) -> None:
        if ev.type == "BOOKMARK":
            self.revision = max(self.revision, ev.revision)
            self._advanced()
            return
        key = key_of(ev.object)
        prev = self.objects.get(key)
        if ev.type == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = ev.object
        if len(self.history) == self.history.maxlen:
            self.window_start = self.history[0].rev
        self.history.append(_Change(ev.revision, ev.type, ev.object, prev))
        self.revision = ev.revision
        memo: dict[str, bytes] = {}
        for w in list(self.watchers):
            w.offer(ev.revision, ev.type, ev.object, prev, memo)
        self._advanced()

    # --- reads ---------------------------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        """The cached object, or None (also while the cache is (re)syncing)."""
        return self.objects.get(key) if self.ready.is_set() else None

    def list(self, prefix: str, opts: ListOptions) -> ListResult:
        pred = opts.predicate
        items = [o for k, o in sorted(self.objects.items()) if k.startswith(prefix) and pred.matches(o)]
        return ListResult(items, str(self.revision))

    def watch(self, prefix: str, opts: WatchOptions) -> CacheWatcher | None:
        """A watcher served from memory, or None when the start is outside what the cache holds."""
        rv = opts.resource_version
        initial = rv == "0" or opts.send_initial_events  # the caller made sure the cache is new enough
        start = self.revision if initial else int(rv)
        if start < self.window_start:
            return None
        w = CacheWatcher(key_of, prefix, opts, capacity=self._capacity, current_revision=lambda: self.revision,
                         on_close=self.watchers.discard, after=start)
        if initial:
            for k, o in sorted(self.objects.items()):
                if k.startswith(prefix) and opts.predicate.matches(o):
                    w.add_initial(Event("ADDED", o, int(o["metadata"]["resourceVersion"])))
            if opts.send_initial_events:
                w.add_initial(initial_events_end(start))
        else:
            for change in self.history:
                if change.rev > start:
                    w.offer(change.rev, change.type, change.obj, change.prev)
        self.watchers.add(w)
        return w
