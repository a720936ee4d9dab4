"""Cacher: the objects of one resource kept in memory by a single watch on the wrapped storage."""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import structlog

from kubellm.registry.storage import errors
from kubellm.registry.storage.cacher.watcher import CacheWatcher
from kubellm.registry.storage.etcd import continue_token
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


def prefix_end(prefix: str) -> str:
    """The first string after every string that starts with a non-empty `prefix` (etcd's range end)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


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
        self._keys: list[str] = []
        """The keys of `objects`, sorted (etcd's key order: code points order as UTF-8 bytes do)."""
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
        self._keys = sorted(self.objects)  # already in key order: linear
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
            if self.objects.pop(key, None) is not None:
                del self._keys[bisect.bisect_left(self._keys, key)]
        else:
            if prev is None:
                bisect.insort(self._keys, key)
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

    def _span(self, prefix: str, start: str = "") -> tuple[int, int]:
        """Positions in `_keys` of the keys under `prefix`, from `start` on (binary search, not a scan)."""
        lo = bisect.bisect_left(self._keys, max(prefix, start))
        return lo, bisect.bisect_left(self._keys, prefix_end(prefix), lo) if prefix else len(self._keys)

    def _in_order(self, prefix: str) -> Iterator[Obj]:
        lo, hi = self._span(prefix)
        objects = self.objects
        return (objects[k] for k in self._keys[lo:hi])

    def list(self, prefix: str, opts: ListOptions) -> ListResult:
        pred = opts.predicate
        found = self._in_order(prefix)
        items = list(found) if pred.empty() else [o for o in found if pred.matches(o)]
        return ListResult(items, str(self.revision))

    def holds(self, revision: int) -> bool:
        """Whether the state at `revision` can be rebuilt from memory: the current one, minus the changes after it."""
        return self.ready.is_set() and self.window_start <= revision <= self.revision

    def list_page(self, prefix: str, revision: int, limit: int, opts: ListOptions, start: str = "") -> ListResult:
        """One page of a list at `revision` (which `holds`), as the wrapped etcd storage answers it: `limit` items
        from the key `start` on, a continue token when any key follows the last one, and the count of the keys
        after the page when there is no selector."""
        changed: dict[str, Obj | None] = {}  # key -> its state at `revision` (None: absent), for keys changed since
        end = prefix_end(prefix) if prefix else ""
        lower = max(prefix, start)
        for change in reversed(self.history):
            if change.rev <= revision:
                break
            k = key_of(change.obj)
            if k >= lower and (not end or k < end):
                changed[k] = change.prev  # the earliest change after `revision` wins: its prev is the state then
        lo, hi = self._span(prefix, start)
        sorted_keys = self._keys  # walked by position, not sliced: a page costs the page wherever it starts
        current = (k for k in map(sorted_keys.__getitem__, range(lo, hi)) if k not in changed)
        then = sorted(k for k, o in changed.items() if o is not None)
        keys = _merge(current, then)
        pred = opts.predicate
        items: list[Obj] = []
        last = ""
        for k in keys:
            obj = changed[k] if k in changed else self.objects[k]
            if obj is None or not pred.matches(obj):
                continue
            items.append(obj)
            last = k
            if len(items) >= limit:
                break
        if len(items) < limit or next(keys, None) is None:
            return ListResult(items, str(revision))
        remaining = None
        if pred.empty():
            after = last + "\x00"
            a, b = self._span(prefix, after)
            remaining = b - a - sum(1 for k in changed if k >= after and k in self.objects) + \
                sum(1 for k in then if k >= after)
        token = continue_token.encode(revision, last[len(prefix):] + "\x00")
        return ListResult(items, str(revision), token, remaining or None)

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
            for o in self._in_order(prefix):
                if opts.predicate.matches(o):
                    w.add_initial(Event("ADDED", o, int(o["metadata"]["resourceVersion"])))
            if opts.send_initial_events:
                w.add_initial(initial_events_end(start))
        else:
            for change in self.history:
                if change.rev > start:
                    w.offer(change.rev, change.type, change.obj, change.prev)
        self.watchers.add(w)
        return w


def _merge(a: Iterator[str], b: list[str]) -> Iterator[str]:
    """Two ascending, disjoint key sequences as one; `b` is short (the keys changed in the window)."""
    i = 0
    for k in a:
        while i < len(b) and b[i] < k:
            yield b[i]
            i += 1
        yield k
    yield from b[i:]
