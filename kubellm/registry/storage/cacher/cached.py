"""CachedStorage: a Storage that answers from Cachers where it can and from the wrapped storage otherwise."""

from __future__ import annotations

from collections.abc import Iterable

from kubellm.registry.storage import errors
from kubellm.registry.storage.cacher.cacher import Cacher
from kubellm.registry.storage.etcd import continue_token
from kubellm.registry.storage.etcd.store import MAX_LIMIT
from kubellm.registry.storage.interface import (
    Deletion,
    ListOptions,
    ListResult,
    Obj,
    Preconditions,
    Storage,
    UpdateFunc,
    ValidateDeletion,
    Watcher,
    WatchOptions,
)


def _root(prefix: str) -> str:
    return prefix if prefix.endswith("/") else prefix + "/"


class CachedStorage:
    consistent_list_wait = 3.0
    """How long a consistent list waits for the cache to reach etcd's revision before etcd answers (kube's 3 s)."""
    consistent_get_wait = 0.25
    """The same for a consistent get (etcd answers one object as fast as the cache catches up)."""

    def __init__(self, storage: Storage, roots: Iterable[str], **cacher_options: int) -> None:
        self.storage = storage
        self.cachers = {_root(r): Cacher(storage, _root(r), **cacher_options) for r in roots}

    def start(self) -> None:
        for c in self.cachers.values():
            c.start()

    async def wait_ready(self) -> None:
        for c in self.cachers.values():
            await c.ready.wait()

    def _cacher(self, key_or_prefix: str) -> tuple[Cacher, str] | None:
        for root, cacher in self.cachers.items():
            if key_or_prefix.startswith(root) and cacher.ready.is_set():
                return cacher, key_or_prefix[len(root):]
        return None

    def _fresh_enough(self, cacher: Cacher, resource_version: str, match: str) -> bool:
        if resource_version == "0":
            return True
        if match == "NotOlderThan" or (match == "" and resource_version):
            try:
                return int(resource_version) <= cacher.revision
            except ValueError:
                return False
        return False

    # --- reads that the cache can serve ----------------------------------------------------------------

    async def _consistent(self, cacher: Cacher, timeout: float) -> bool:
        """Whether the cache holds etcd's state as of now (a consistent read from memory, KEP-2340): etcd's current
        revision (a quorum read of nothing but the revision), then the cache up to it within `timeout`."""
        return await cacher.wait_until(await self.storage.current_revision(), timeout)

    async def get(self, key: str, resource_version: str = "") -> Obj:
        found = self._cacher(key)
        if found is not None:
            cacher, below = found
            if self._fresh_enough(cacher, resource_version, "") or (
                    resource_version == "" and await self._consistent(cacher, self.consistent_get_wait)):
                obj = cacher.get(below)
                if obj is not None:
                    return obj
                if resource_version == "":
                    raise errors.KeyNotFound(key)  # absent at a revision not older than the request
        return await self.storage.get(key, resource_version)

    async def get_list(self, prefix: str, opts: ListOptions) -> ListResult:
        found = self._cacher(_root(prefix))
        if found is None:
            return await self.storage.get_list(prefix, opts)
        cacher, below = found
        if opts.continue_token:
            return await self._next_page(cacher, below, prefix, opts)
        if opts.limit > 0 and opts.resource_version not in ("", "0"):
            return await self.storage.get_list(prefix, opts)  # a page at a given revision: etcd's
        if self._fresh_enough(cacher, opts.resource_version, opts.resource_version_match) or (
                opts.resource_version == "" and await self._consistent(cacher, self.consistent_list_wait)):
            if opts.limit > 0:
                return cacher.list_page(below, cacher.revision, min(opts.limit, MAX_LIMIT), opts)
            return cacher.list(below, opts)
        return await self.storage.get_list(prefix, opts)

    async def _next_page(self, cacher: Cacher, below: str, prefix: str, opts: ListOptions) -> ListResult:
        """A page after the first, from memory when the cache can rebuild the list's revision (its window of changes
        reaches back to it) and etcd still has it (a compacted one is etcd's to refuse, 410, on every server alike);
        from etcd otherwise. Served from memory, a page costs the page, where etcd counts every key after it."""
        revision, start = continue_token.decode(opts.continue_token)
        if cacher.holds(revision) and opts.limit > 0 and not await self.storage.history_compacted(revision - 1) \
                and cacher.holds(revision):
            return cacher.list_page(below, revision, min(opts.limit, MAX_LIMIT), opts, below + start)
        return await self.storage.get_list(prefix, opts)

    async def watch(self, prefix: str, opts: WatchOptions) -> Watcher:
        found = self._cacher(_root(prefix))
        rv = opts.resource_version
        if found is None or not (rv or opts.send_initial_events):
            return await self.storage.watch(prefix, opts)
        cacher, below = found
        if opts.send_initial_events:
            # the initial state must be at least as new as the resource version asked for, or than etcd's
            # current revision when none is given (a consistent start), as a list would be; kube's cacher waits
            # for that as long (3 s), then the wrapped storage answers (504 Too large resource version if etcd
            # has not reached it either)
            target = int(rv) if rv not in ("", "0") else await self.storage.current_revision() if not rv else 0
            if await cacher.wait_until(target):
                watcher = cacher.watch(below, opts)
                if watcher is not None:
                    return watcher
            return await self.storage.watch(prefix, opts)
        if rv == "0":
            # Start from a state at least as new as the watch request (read-your-writes), as a consistent
            # read of the current revision would; rare next to events, so worth a round trip.
            if await cacher.wait_until(await self.storage.current_revision()):
                watcher = cacher.watch(below, opts)
                if watcher is not None:
                    return watcher
            return await self.storage.watch(prefix, opts)
        try:
            requested = int(rv)
        except ValueError:
            return await self.storage.watch(prefix, opts)  # refused there
        if requested > cacher.revision:
            # Ahead of the cache: fine if etcd has reached it (the cache delivers what comes after it), refused
            # if etcd has not (a restored etcd, a made-up version), as a list at that revision is, so a client
            # lists again instead of waiting on a revision that may mean other changes when it comes.
            current = await self.storage.current_revision()
            if requested > current:
                raise errors.TooLargeResourceVersion(requested=requested, current=current)
        elif await self._compacted(cacher, requested):
            return await self.storage.watch(prefix, opts)  # etcd answers: 410, on every server alike
        watcher = cacher.watch(below, opts)
        if watcher is not None:
            return watcher
        return await self.storage.watch(prefix, opts)

    async def _compacted(self, cacher: Cacher, requested: int) -> bool:
        """Whether etcd has compacted the history after `requested`: a start the wrapped storage refuses (410) is
        never served from memory, whichever server compacted. Asked of etcd when the start needs history (it
        is before the cache's revision); if etcd cannot answer, what this server knows of compaction decides."""
        if requested + 1 < self.storage.compacted_revision:
            return True
        if requested >= cacher.revision:
            return False
        try:
            return await self.storage.history_compacted(requested)
        except errors.Unavailable:
            return False

    @property
    def compacted_revision(self) -> int:
        return self.storage.compacted_revision

    async def history_compacted(self, resource_version: int) -> bool:
        return await self.storage.history_compacted(resource_version)

    # --- everything else goes to the wrapped storage ---------------------------------------------------

    async def create(self, key: str, obj: Obj) -> Obj:
        return await self.storage.create(key, obj)

    async def guaranteed_update(self, key: str, try_update: UpdateFunc, *,
                                preconditions: Preconditions | None = None, ignore_not_found: bool = False,
                                cached_existing: Obj | None = None) -> Obj:
        """Starts from the cache's copy when it has one (see `Storage.guaranteed_update`)."""
        if cached_existing is None and (found := self._cacher(key)) is not None:
            cached_existing = found[0].get(found[1])
        return await self.storage.guaranteed_update(key, try_update, preconditions=preconditions,
                                                    ignore_not_found=ignore_not_found, cached_existing=cached_existing)

    async def delete(self, key: str, *, preconditions: Preconditions | None = None,
                     validate_deletion: ValidateDeletion | None = None) -> Deletion:
        return await self.storage.delete(key, preconditions=preconditions, validate_deletion=validate_deletion)

    async def count(self, prefix: str) -> int:
        return await self.storage.count(prefix)

    async def current_revision(self) -> int:
        return await self.storage.current_revision()

    async def compact(self, revision: int) -> None:
        await self.storage.compact(revision)

    async def check_health(self) -> None:
        await self.storage.check_health()

    async def close(self) -> None:
        for c in self.cachers.values():
            await c.stop()
        await self.storage.close()
