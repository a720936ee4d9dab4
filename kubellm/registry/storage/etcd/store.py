"""EtcdStorage: the storage interface on etcd's v3 gateway.

Revisions are etcd's: an object's resourceVersion is its key's mod_revision, a list's is the
revision it was read at. Writes are transactions that compare the key's create or mod revision, so
a concurrent writer always loses cleanly and a read-modify-write loop can retry.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
import structlog

from kubellm.registry.storage import errors
from kubellm.registry.storage.etcd import continue_token
from kubellm.registry.storage.etcd.client import GatewayClient, b64, b64_end, read_value, unb64
from kubellm.registry.storage.etcd.compactor import Compactor
from kubellm.registry.storage.etcd.config import EtcdConfig
from kubellm.registry.storage.etcd.watcher import EtcdWatcher
from kubellm.registry.storage.interface import (
    Deletion,
    ListOptions,
    ListResult,
    Obj,
    Preconditions,
    UpdateFunc,
    ValidateDeletion,
    WatchOptions,
)
from kubellm.registry.storage.value import PrefixTransformers

log = structlog.get_logger(__name__)

MAX_PAGE = 10_000
MAX_LIMIT = 2**63 - 1
"""etcd's range limit is an int64; a larger limit means the same as the largest (everything)."""


class _Current:
    """A key's current stored state: raw value bytes and mod revision (absent if rev == 0)."""

    __slots__ = ("raw", "rev")

    def __init__(self, raw: bytes | None, rev: int) -> None:
        self.raw = raw
        self.rev = rev

    @classmethod
    def from_kvs(cls, kvs: list[dict[str, Any]] | None, values: PrefixTransformers) -> _Current:
        if not kvs:
            return cls(None, 0)
        kv = kvs[0]
        return cls(read_value(kv, values), int(kv["mod_revision"]))

    @classmethod
    def from_cached(cls, obj: Obj | None) -> _Current | None:
        """The state a cached copy stands for (its bytes as stored, its resourceVersion), None without one."""
        meta = (obj or {}).get("metadata")
        if obj is None or not isinstance(meta, dict):
            return None
        try:
            rev = int(meta.get("resourceVersion") or 0)
        except (TypeError, ValueError):
            return None
        if rev <= 0:
            return None
        return cls(orjson.dumps({**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}), rev)

    def obj(self) -> Obj:
        assert self.raw is not None
        return with_rv(orjson.loads(self.raw), self.rev)


def with_rv(obj: Obj, rev: int | str) -> Obj:
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    meta["resourceVersion"] = str(rev)
    return obj


def encode_for_storage(obj: Obj) -> bytes:
    meta = obj.get("metadata")
    if meta is not None:
        meta.pop("resourceVersion", None)
    return orjson.dumps(obj)


def _check_preconditions(key: str, pre: Preconditions | None, obj: Obj) -> None:
    if pre is None:
        return
    meta = obj.get("metadata") or {}
    if pre.uid is not None and pre.uid != meta.get("uid"):
        raise errors.Conflict(key, f"Precondition failed: UID in precondition: {pre.uid}, "
                                   f"UID in object meta: {meta.get('uid', '')}")
    if pre.resource_version is not None and pre.resource_version != meta.get("resourceVersion"):
        raise errors.Conflict(key, f"Precondition failed: ResourceVersion in precondition: "
                                   f"{pre.resource_version}, ResourceVersion in object meta: "
                                   f"{meta.get('resourceVersion', '')}")


def _retrieve(task: asyncio.Task[int]) -> None:
    if not task.cancelled():
        task.exception()


class EtcdStorage:
    def __init__(self, config: EtcdConfig, values: PrefixTransformers | None = None) -> None:
        self.config = config
        self.values = values or PrefixTransformers()
        """Encryption at rest, by key prefix (relative to the storage prefix, as the Store's keys are)."""
        self.client = GatewayClient(config)
        self.prefix = config.prefix.rstrip("/")
        self.full_values = PrefixTransformers(tuple((self.prefix + p, t) for p, t in self.values.rules))
        """The transformers keyed by full etcd keys (the configured rules are relative to the prefix)."""
        self.compactor = Compactor(self.client, self.prefix, config.compaction_interval)
        self._revision_next: asyncio.Task[int] | None = None
        """The revision read callers join: not sent to etcd yet (it waits for the one in flight to return)."""
        self._revision_sent: asyncio.Task[int] | None = None

    def start_compactor(self) -> None:
        """Compact history every `compaction_interval` seconds (five minutes by default)."""
        self.compactor.start()

    def full_key(self, key: str) -> str:
        return self.prefix + key

    def relative(self, full: str) -> str:
        """A full etcd key as the Store names it (below the storage prefix)."""
        return full[len(self.prefix):] if full.startswith(self.prefix) else full

    def _seal(self, full: str, data: bytes) -> bytes:
        return self.full_values.to_storage(full, data) if self.values.rules else data

    async def _range(self, full: str, **extra: Any) -> dict[str, Any]:
        return await self.client.call("/kv/range", {"key": b64(full), **extra}, op="get")

    async def _current(self, full: str) -> _Current:
        resp = await self._range(full)
        return _Current.from_kvs(resp.get("kvs"), self.full_values)

    def _encode(self, key: str, obj: Obj) -> bytes:
        data = encode_for_storage(obj)
        if len(data) > self.config.max_object_bytes:
            raise errors.RequestTooLarge(key, f"the object is too large: {len(data)} bytes, the limit is "
                                              f"{self.config.max_object_bytes} bytes")
        return data

    async def create(self, key: str, obj: Obj) -> Obj:
        full = self.full_key(key)
        k = b64(full)
        txn = {
            "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": k, "value": b64(self._seal(full, self._encode(key, obj)))}}],
        }
        resp = await self.client.call("/kv/txn", txn, op="create")
        if not resp.get("succeeded"):
            raise errors.KeyExists(key)
        return with_rv(obj, resp["header"]["revision"])

    async def get(self, key: str, resource_version: str = "") -> Obj:
        """The object as etcd has it now (a linearizable read). A `resource_version` other than "" and "0" asks for
        a state not older than it: one etcd has not reached is refused (504 Too large resource version, as a list's
        NotOlderThan is), never answered with the older state of now."""
        requested = 0
        if resource_version not in ("", "0"):
            try:
                requested = int(resource_version)
                if not 0 <= requested <= continue_token.MAX_REVISION:
                    raise ValueError("not an etcd revision")
            except ValueError as exc:
                raise errors.InvalidContinue(message=f"invalid resource version {resource_version[:64]!r}") from exc
        resp = await self._range(self.full_key(key))
        if requested and requested > (current := int(resp["header"]["revision"])):
            raise errors.TooLargeResourceVersion(key, requested=requested, current=current)
        cur = _Current.from_kvs(resp.get("kvs"), self.full_values)
        if cur.raw is None:
            raise errors.KeyNotFound(key)
        return cur.obj()

    async def guaranteed_update(self, key: str, try_update: UpdateFunc, *,
                                preconditions: Preconditions | None = None,
                                ignore_not_found: bool = False, cached_existing: Obj | None = None) -> Obj:
        full = self.full_key(key)
        k = b64(full)
        # from the cache's copy the first attempt needs no read: the transaction compares its mod revision, and
        # its failure branch returns the stored state (kube-apiserver's cachedExistingObject)
        cur = _Current.from_cached(cached_existing)
        current = cur is None
        if cur is None:
            cur = await self._current(full)
        while True:
            try:
                if cur.raw is None:
                    if not ignore_not_found:
                        raise errors.KeyNotFound(key)
                    existing: Obj = {}
                else:
                    existing = cur.obj()
                    _check_preconditions(key, preconditions, existing)
                new = await try_update(existing)
                data = self._encode(key, new)
            except Exception:
                if current:
                    raise
                cur, current = await self._current(full), True  # the copy may be stale: decide on the stored state
                continue
            if cur.raw is not None and data == cur.raw:
                if not current:  # unchanged from a copy: the stored state may differ
                    cur, current = await self._current(full), True
                    continue
                return with_rv(new, cur.rev)
            compare = ({"key": k, "target": "MOD", "result": "EQUAL", "mod_revision": str(cur.rev)}
                       if cur.raw is not None else
                       {"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"})
            txn = {"compare": [compare], "success": [{"request_put": {"key": k, "value": b64(self._seal(full, data))}}],
                   "failure": [{"request_range": {"key": k}}]}
            resp = await self.client.call("/kv/txn", txn, op="update")
            if resp.get("succeeded"):
                return with_rv(new, resp["header"]["revision"])
            cur, current = _Current.from_kvs(resp["responses"][0]["response_range"].get("kvs"), self.full_values), True

    async def delete(self, key: str, *, preconditions: Preconditions | None = None,
                     validate_deletion: ValidateDeletion | None = None) -> Deletion:
        full = self.full_key(key)
        k = b64(full)
        cur = await self._current(full)
        while True:
            if cur.raw is None:
                raise errors.KeyNotFound(key)
            existing = cur.obj()
            _check_preconditions(key, preconditions, existing)
            if validate_deletion is not None and not await validate_deletion(existing):
                return Deletion(existing, deleted=False)
            txn = {"compare": [{"key": k, "target": "MOD", "result": "EQUAL", "mod_revision": str(cur.rev)}],
                   "success": [{"request_delete_range": {"key": k}}],
                   "failure": [{"request_range": {"key": k}}]}
            resp = await self.client.call("/kv/txn", txn, op="delete")
            if resp.get("succeeded"):
                return Deletion(with_rv(existing, resp["header"]["revision"]), deleted=True)
            cur = _Current.from_kvs(resp["responses"][0]["response_range"].get("kvs"), self.full_values)

    async def get_list(self, prefix: str, opts: ListOptions) -> ListResult:
        base = self.full_key(prefix if prefix.endswith("/") else prefix + "/")
        range_end = b64_end(base)
        rev = 0
        min_rev = 0
        start = base
        if opts.continue_token:
            rev, suffix = continue_token.decode(opts.continue_token)
            start = base + suffix
        elif opts.resource_version not in ("", "0"):
            try:
                requested = int(opts.resource_version)
                if not 0 <= requested <= continue_token.MAX_REVISION:
                    raise ValueError("not an etcd revision")
            except ValueError as exc:
                raise errors.InvalidContinue(message=f"invalid resource version {opts.resource_version[:64]!r}") \
                    from exc
            if opts.resource_version_match == "Exact":
                rev = requested
            else:
                min_rev = requested
        pred = opts.predicate
        limit = min(max(opts.limit, 0), MAX_LIMIT)
        page = limit if limit else 0
        items: list[Obj] = []
        remaining: int | None = None
        last_key = ""
        has_more = False
        first = True
        while True:
            req: dict[str, Any] = {"key": b64(start), "range_end": range_end}
            if rev:
                req["revision"] = str(rev)
            if page:
                req["limit"] = str(page)
            resp = await self.client.call("/kv/range", req, op="list")
            if not rev:
                rev = int(resp["header"]["revision"])
                if min_rev > rev:
                    raise errors.TooLargeResourceVersion(requested=min_rev, current=rev)
            kvs = resp.get("kvs") or []
            if first and limit and pred.empty():
                remaining = int(resp.get("count", 0)) - len(kvs)
            first = False
            stopped_early = False
            for i, kv in enumerate(kvs):
                obj = with_rv(orjson.loads(read_value(kv, self.full_values)), kv["mod_revision"])
                last_key = unb64(kv["key"]).decode()
                if pred.matches(obj):
                    items.append(obj)
                    if limit and len(items) >= limit:
                        stopped_early = i < len(kvs) - 1
                        break
            has_more = stopped_early or bool(resp.get("more"))
            if not limit or len(items) >= limit or not has_more:
                break
            start = last_key + "\x00"
            page = min(page * 2, MAX_PAGE)
        token = ""
        if limit and has_more:
            token = continue_token.encode(rev, last_key[len(base):] + "\x00")
        if not token:
            remaining = None
        return ListResult(items, str(rev), token, remaining if remaining else None)

    async def watch(self, prefix: str, opts: WatchOptions) -> EtcdWatcher:
        base = self.full_key(prefix if prefix.endswith("/") else prefix + "/")
        watcher = EtcdWatcher(self, base, opts)
        await watcher.start()
        return watcher

    async def count(self, prefix: str) -> int:
        base = self.full_key(prefix if prefix.endswith("/") else prefix + "/")
        resp = await self.client.call("/kv/range", {"key": b64(base), "range_end": b64_end(base),
                                                    "count_only": True}, op="count")
        return int(resp.get("count", 0))

    async def current_revision(self) -> int:
        """etcd's current revision, from a read sent after this call began (what a consistent read needs).
        Concurrent callers share reads: a caller joins the next read as long as it has not been sent, and that
        read is sent once the one in flight has returned; under load one etcd call answers many consistent
        reads, and no caller is answered with a revision older than its own start."""
        if self._revision_next is None:
            self._revision_next = asyncio.ensure_future(self._read_revision(self._revision_sent))
            self._revision_next.add_done_callback(_retrieve)  # every caller may have gone (cancelled) meanwhile
        return await asyncio.shield(self._revision_next)

    async def _read_revision(self, in_flight: asyncio.Task[int] | None) -> int:
        if in_flight is not None and not in_flight.done():
            await asyncio.wait([in_flight])
        self._revision_next, self._revision_sent = None, asyncio.current_task()
        resp = await self.client.call("/kv/range", {"key": b64(self.prefix + "/"), "count_only": True})
        return int(resp["header"]["revision"])

    async def compact(self, revision: int) -> None:
        await self.client.call("/kv/compaction", {"revision": str(revision), "physical": False}, op="compact")
        self.learn_compaction(revision)

    @property
    def compacted_revision(self) -> int:
        return self.compactor.compacted

    def learn_compaction(self, revision: int) -> None:
        """etcd's history before `revision` is known to be gone (from this instance's compaction, another's
        record under compact_rev_key, or etcd refusing an older revision)."""
        self.compactor.compacted = max(self.compactor.compacted, revision)

    async def history_compacted(self, resource_version: int) -> bool:
        """Whether a watch from `resource_version` would be refused as compacted, as etcd answers it: a
        count-only range at the first revision such a watch needs, so every server on this etcd, whichever
        compacted, answers the same."""
        if resource_version + 1 < self.compactor.compacted:
            return True
        try:
            await self.client.call("/kv/range", {"key": self.compactor.key, "revision": str(resource_version + 1),
                                                 "count_only": True}, op="get")
        except errors.Expired:
            self.learn_compaction(resource_version + 2)
            return True
        except errors.TooLargeResourceVersion:
            return False  # nothing after it exists yet, so nothing after it was compacted
        return False

    async def check_health(self) -> None:
        await self.client.call("/kv/range", {"key": b64(self.prefix + "/health"), "count_only": True},
                               timeout=self.config.healthcheck_timeout)

    async def wait_until_healthy(self, *, max_delay: float = 5.0) -> None:
        """Return once etcd answers (any endpoint), retrying with backoff and a log line per failure: the server
        starts whether or not etcd is up yet."""
        delay = 0.2
        while True:
            try:
                await self.check_health()
                return
            except errors.Unavailable as exc:
                log.warning("waiting for etcd", endpoints=list(self.config.endpoints), error=exc.message)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, max_delay)

    async def close(self) -> None:
        await self.compactor.stop()
        await self.client.close()
