"""A watcher fed by a Cacher: filters events through its prefix and predicate, with bookmarks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson

from kubellm.registry.storage import errors
from kubellm.registry.storage.interface import Event, EventType, Obj, WatchOptions
from kubellm.registry.storage.selection import transition

Closer = Callable[["CacheWatcher"], None]


def _encoded(memo: dict[str, bytes], key: str, obj: Obj) -> bytes:
    data = memo.get(key)
    if data is None:
        data = memo[key] = orjson.dumps(obj)
    return data


class CacheWatcher:
    """Receives (revision, type, object, previous object) from its Cacher and yields API events."""

    def __init__(self, key_of: Callable[[Obj], str], prefix: str, opts: WatchOptions, *, capacity: int,
                 current_revision: Callable[[], int], on_close: Closer, after: int = 0) -> None:
        self._key_of = key_of
        self._prefix = prefix
        self._opts = opts
        self._pred = opts.predicate
        self._everything = opts.predicate.empty()
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._capacity = capacity
        self._current_revision = current_revision
        self._on_close = on_close
        self._closed = False
        self._error: errors.StorageError | None = None
        self._after = after
        """Only changes after this revision are delivered."""
        self._sink = opts.sink
        self._waiting = False
        """The consumer is in `__anext__` waiting for an event: it has written everything it was handed."""
        self._active = 0.0
        """When the consumer last had an event (or began waiting), for the bookmark timer."""

    def offer(self, rev: int, typ: str, obj: Obj, prev: Obj | None, memo: dict[str, bytes] | None = None) -> None:
        """Called by the Cacher, in revision order, for every change under the resource. `memo` is shared
        by all watchers of one change, so its JSON is encoded once however many watchers get it."""
        if self._closed or rev <= self._after or (self._prefix and not self._key_of(obj).startswith(self._prefix)):
            return
        memo = {} if memo is None else memo
        if self._everything:  # what `transition` answers for a predicate that matches everything, without it
            event_type: EventType = "DELETED" if typ == "DELETED" else "ADDED" if prev is None else "MODIFIED"
            self._put(Event(event_type, obj, rev, _encoded(memo, "obj", obj)))
            return
        seen = transition(self._pred, None if typ == "DELETED" else obj,
                          (lambda: obj) if typ == "DELETED" else (lambda: prev) if prev is not None else None)
        if seen is None:
            return
        event_type, carries_prev = seen
        if typ == "DELETED":
            self._put(Event("DELETED", obj, rev, _encoded(memo, "obj", obj)))
        elif not carries_prev:
            self._put(Event(event_type, obj, rev, _encoded(memo, "obj", obj)))
        elif prev is not None:
            gone = {**prev, "metadata": {**prev.get("metadata", {}), "resourceVersion": str(rev)}}
            self._put(Event("DELETED", gone, rev, _encoded(memo, "gone", gone)))

    def add_initial(self, event: Event) -> None:
        self._put(event)

    def _put(self, event: Event) -> None:
        if self._waiting and self._sink is not None and self._queue.empty() and self._sink(event):
            # Handed over at once (nothing is queued before it and the consumer has written all it had): the
            # consumer stays asleep, so a change fans out to every watcher with no task switch per watcher.
            if self._opts.allow_bookmarks:
                self._active = asyncio.get_running_loop().time()
            return
        if self._queue.qsize() >= self._capacity:
            # A consumer this far behind is dropped, as kube-apiserver drops slow watchers; it re-lists.
            self.terminate(errors.Expired(message="The watch fell too far behind and was closed; "
                                                  "please list and watch again."))
            return
        self._queue.put_nowait(event)

    def terminate(self, error: errors.StorageError | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._queue.put_nowait(None)
        self._on_close(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        queue = self._queue
        if queue.empty():
            if self._closed:
                return self._finish()
            self._waiting = True
            try:
                item = await (self._next_or_bookmark() if self._opts.allow_bookmarks else queue.get())
            finally:
                self._waiting = False
        else:
            item = queue.get_nowait()
        if item is None:
            return self._finish()
        return item

    async def _next_or_bookmark(self) -> Event | None:
        """The next queued item, or a BOOKMARK once the consumer has had no event for the bookmark interval."""
        loop = asyncio.get_running_loop()
        interval = self._opts.bookmark_interval
        self._active = loop.time()
        while True:
            try:
                async with asyncio.timeout_at(self._active + interval):  # not wait_for: see etcd/watcher.py
                    return await self._queue.get()
            except TimeoutError:
                if not self._queue.empty():
                    return self._queue.get_nowait()  # queued as the timer fired: the change goes first
                if loop.time() < self._active + interval:
                    continue  # the sink took changes meanwhile: not silent for the whole interval yet
                rev = self._current_revision()
                return Event("BOOKMARK", {"metadata": {"resourceVersion": str(rev)}}, rev)

    def _finish(self) -> Event:
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        raise StopAsyncIteration

    async def close(self) -> None:
        self.terminate()
