"""Watch on etcd's `/v3/watch` gateway stream.

etcd3-py's own async watch does not work on current aiohttp, so this reads the gateway's
newline-delimited JSON stream directly. Events come in revision order; each is filtered through the
selection predicate with the previous value, so an object that leaves a selector arrives as DELETED
and one that enters it as ADDED.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import structlog

from kubellm.registry.storage import errors
from kubellm.registry.storage.etcd.client import b64, b64_end, read_value, translate
from kubellm.registry.storage.interface import Event, Obj, WatchOptions, initial_events_end
from kubellm.registry.storage.selection import transition
from kubellm.registry.storage.value import PrefixTransformers

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from kubellm.registry.storage.etcd.store import EtcdStorage

TOO_OLD = "The resourceVersion for the provided watch is too old."


def _revision(resource_version: str) -> int:
    try:
        return int(resource_version)
    except ValueError as exc:
        raise errors.InvalidContinue(message=f"invalid resource version {resource_version[:64]!r}") from exc


def _decode(kv: dict[str, Any], rev: int | str, values: PrefixTransformers) -> Obj:
    obj: Obj = orjson.loads(read_value(kv, values))
    meta = obj.setdefault("metadata", {})
    meta["resourceVersion"] = str(rev)
    return obj


class EtcdWatcher:
    def __init__(self, storage: EtcdStorage, base: str, opts: WatchOptions) -> None:
        self._storage = storage
        self._values = storage.full_values
        self._base = base
        self._opts = opts
        self._pending: deque[Event] = deque()
        self._buf = b""
        self._resp: aiohttp.ClientResponse | None = None
        self._closed = False
        self.last_revision = 0
        self._last_bookmark = 0.0

    async def start(self) -> None:
        opts = self._opts
        client = self._storage.client
        if opts.resource_version in ("", "0") or opts.send_initial_events:
            resp = await client.call("/kv/range", {"key": b64(self._base), "range_end": b64_end(self._base)},
                                     op="list")
            rev = int(resp["header"]["revision"])
            if opts.send_initial_events and opts.resource_version not in ("", "0") \
                    and rev < _revision(opts.resource_version):
                raise errors.TooLargeResourceVersion(message="Too large resource version")
            for kv in resp.get("kvs") or []:
                obj = _decode(kv, kv["mod_revision"], self._values)
                if opts.predicate.matches(obj):
                    self._pending.append(Event("ADDED", obj, int(kv["mod_revision"])))
            if opts.send_initial_events:
                self._pending.append(initial_events_end(rev))
            start = rev + 1
        else:
            start = _revision(opts.resource_version) + 1
        self.last_revision = start - 1
        body = {"create_request": {"key": b64(self._base), "range_end": b64_end(self._base),
                                   "start_revision": str(start), "prev_kv": True, "progress_notify": True}}
        try:
            self._resp = await client.watch_session.post(f"{client.base}/watch", data=orjson.dumps(body))
        except (aiohttp.ClientError, OSError) as exc:
            raise errors.Unavailable(message=f"etcd unavailable: {type(exc).__name__}") from exc
        if self._resp.status != 200:
            data = await self._resp.read()
            self._resp.close()
            raise translate(orjson.loads(data) if data else {})
        # The first message confirms creation or reports that the start revision was compacted.
        try:
            first = await self._next_message(timeout=None)
            if first is None:
                raise errors.Unavailable(message="etcd closed the watch stream")
            self._handle(first)
        except BaseException:
            self._resp.close()
            raise
        self._last_bookmark = asyncio.get_running_loop().time()

    async def _next_message(self, timeout: float | None) -> dict[str, Any] | None:
        assert self._resp is not None
        while b"\n" not in self._buf:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # arrives as the read completes, and a cancelled watch would then run on.
            async with asyncio.timeout(timeout):
                chunk = await self._resp.content.readany()
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        if not line.strip():
            return await self._next_message(timeout)
        msg: dict[str, Any] = orjson.loads(line)
        return msg

    def _handle(self, msg: dict[str, Any]) -> None:
        if "error" in msg:
            raise translate(msg["error"] if isinstance(msg["error"], dict) else msg)
        result = msg.get("result") or {}
        if result.get("compact_revision") and result.get("canceled"):
            raise errors.Expired(message=TOO_OLD)
        if result.get("canceled"):
            log.warning("etcd canceled a watch", reason=str(result.get("cancel_reason", ""))[:200])
            raise errors.Unavailable(message="etcd canceled the watch")
        events = result.get("events")
        if not events:
            if not result.get("created"):
                # progress notification: everything up to the header revision has been sent
                self.last_revision = max(self.last_revision, int(result.get("header", {}).get("revision", 0)))
            return
        pred = self._opts.predicate
        for ev in events:
            kv = ev["kv"]
            rev = int(kv["mod_revision"])
            self.last_revision = rev
            raw_prev = ev.get("prev_kv")
            decoded: list[Obj] = []

            def previous(raw: Any = raw_prev, memo: list[Obj] = decoded, at: int = rev) -> Obj:
                if not memo:
                    memo.append(_decode(raw, at, self._values))
                return memo[0]

            cur = None if ev.get("type") == "DELETE" else _decode(kv, rev, self._values)
            seen = transition(pred, cur, previous if raw_prev is not None else None)
            if seen is not None:
                typ, carries_prev = seen
                self._pending.append(Event(typ, previous() if carries_prev or cur is None else cur, rev))

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        loop = asyncio.get_running_loop()
        while not self._pending:
            if self._closed or self._resp is None:
                raise StopAsyncIteration
            timeout: float | None = None
            if self._opts.allow_bookmarks:
                timeout = max(0.0, self._last_bookmark + self._opts.bookmark_interval - loop.time())
            try:
                msg = await self._next_message(timeout)
            except TimeoutError:
                self._last_bookmark = loop.time()
                return Event("BOOKMARK", {"metadata": {"resourceVersion": str(self.last_revision)}},
                             self.last_revision)
            except (aiohttp.ClientError, OSError) as exc:
                if self._closed:
                    raise StopAsyncIteration from None
                raise errors.Unavailable(message=f"watch stream failed: {type(exc).__name__}") from exc
            if msg is None:
                raise StopAsyncIteration
            self._handle(msg)
        return self._pending.popleft()

    async def close(self) -> None:
        self._closed = True
        if self._resp is not None:
            self._resp.close()
