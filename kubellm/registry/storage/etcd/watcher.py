"""Watch on the gateway's `/v3/watch` stream, as a websocket.

etcd3-py's own async watch does not work on current aiohttp, so this speaks to the gateway directly. A plain
POST cannot be used for more than the create request (the gateway reads the whole request body before it
answers), so the watch is the gateway's websocket form of the stream: the create request goes up, and
later `progress_request`s, to which etcd answers with a progress notification (the revision everything has
been sent up to).

That is the stream's keep-alive: a stream silent for `watch_progress_interval` asks for progress, and one
that then stays silent for `request_timeout` more is dead (a stalled member, a half-open connection); like
one that broke or ended, it is re-established from the last revision delivered, on the first endpoint that
answers, so a consumer sees no gap. Only etcd's own answers end a watch: a start that was compacted (410),
a start newer than etcd's revision (504 Too large resource version), a cancelled watch.

Events come in revision order; each is filtered through the selection predicate with the previous value,
so an object that leaves a selector arrives as DELETED and one that enters it as ADDED.
"""

from __future__ import annotations

import asyncio
import random
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
PROGRESS_REQUEST = orjson.dumps({"progress_request": {}}).decode()
MAX_RECONNECT_DELAY = 2.0


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


class _StreamLost(Exception):
    """The websocket broke, ended, or stayed silent past the keep-alive: re-establish the watch."""


class EtcdWatcher:
    def __init__(self, storage: EtcdStorage, base: str, opts: WatchOptions) -> None:
        self._storage = storage
        self._config = storage.config
        self._values = storage.full_values
        self._base = base
        self._opts = opts
        self._pending: deque[Event] = deque()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._endpoint = 0
        self._closed = False
        self.last_revision = 0
        """Every change up to this revision has been delivered (from events and progress notifications)."""
        self.reconnects = 0
        self._last_bookmark = 0.0
        self._last_heard = 0.0
        self._progress_asked: float | None = None

    async def start(self) -> None:
        opts = self._opts
        client = self._storage.client
        if opts.resource_version in ("", "0") or opts.send_initial_events:
            resp = await client.call("/kv/range", {"key": b64(self._base), "range_end": b64_end(self._base)},
                                     op="list")
            rev = int(resp["header"]["revision"])
            if opts.send_initial_events and opts.resource_version not in ("", "0") \
                    and rev < _revision(opts.resource_version):
                raise errors.TooLargeResourceVersion(requested=_revision(opts.resource_version), current=rev)
            for kv in resp.get("kvs") or []:
                obj = _decode(kv, kv["mod_revision"], self._values)
                if opts.predicate.matches(obj):
                    self._pending.append(Event("ADDED", obj, int(kv["mod_revision"])))
            if opts.send_initial_events:
                self._pending.append(initial_events_end(rev))
            self.last_revision = rev
        else:
            self.last_revision = _revision(opts.resource_version)
        await self._connect()
        self._last_bookmark = asyncio.get_running_loop().time()

    async def _connect(self) -> None:
        """Open the stream at `last_revision + 1` and read etcd's answer to the create request: created, or
        cancelled because that revision was compacted. A start etcd has not reached is refused here."""
        try:
            await self._open()
        except (aiohttp.ClientError, OSError, _StreamLost) as exc:
            raise errors.Unavailable(message=f"etcd watch failed: {type(exc).__name__}") from exc

    async def _open(self) -> None:
        ws, endpoint = await self._storage.client.open_watch()
        try:
            body = {"create_request": {"key": b64(self._base), "range_end": b64_end(self._base),
                                       "start_revision": str(self.last_revision + 1), "prev_kv": True,
                                       "progress_notify": True}}
            await ws.send_str(orjson.dumps(body).decode())
            try:
                async with asyncio.timeout(self._config.request_timeout):
                    first = await self._receive(ws)
            except TimeoutError as exc:
                raise errors.Timeout(message=f"etcd did not answer within {self._config.request_timeout:g}s") \
                    from exc
            if first is None:
                raise errors.Unavailable(message="etcd closed the watch stream")
            self._handle(first)
            header = (first.get("result") or {}).get("header") or {}
            if self.last_revision > int(header.get("revision", 0)):
                # etcd (or the member that answered) is behind the start: a restored etcd, or a resourceVersion
                # never issued. A linearizable read tells a lagging member from a store that is really behind.
                current = await self._storage.current_revision()
                if self.last_revision > current:
                    raise errors.TooLargeResourceVersion(requested=self.last_revision, current=current)
        except BaseException:
            await ws.close()
            raise
        self._ws, self._endpoint = ws, endpoint
        self._last_heard = asyncio.get_running_loop().time()
        self._progress_asked = None

    @staticmethod
    async def _receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any] | None:
        """The next message of the stream; None when it closed."""
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                data = msg.data
                if not data.strip():
                    continue
                decoded: dict[str, Any] = orjson.loads(data)
                return decoded
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return None
            if msg.type == aiohttp.WSMsgType.ERROR:
                raise _StreamLost(f"watch stream failed: {type(msg.data).__name__}")

    def _handle(self, msg: dict[str, Any]) -> None:
        if "error" in msg:
            raise translate(msg["error"] if isinstance(msg["error"], dict) else msg)
        result = msg.get("result") or {}
        if result.get("compact_revision") and result.get("canceled"):
            self._storage.learn_compaction(int(result["compact_revision"]))
            raise errors.Expired(message=TOO_OLD)
        if result.get("canceled"):
            log.warning("etcd canceled a watch", reason=str(result.get("cancel_reason", ""))[:200])
            raise errors.Unavailable(message="etcd canceled the watch")
        events = result.get("events")
        if not events:
            if not result.get("created"):
                # progress notification: everything up to the header revision has been sent
                revision = int(result.get("header", {}).get("revision", 0))
                if revision > self.last_revision:
                    self.last_revision = revision
                    if self._opts.allow_bookmarks:  # told at once: a reader may be waiting for this revision
                        self._last_bookmark = asyncio.get_running_loop().time()
                        self._pending.append(Event("BOOKMARK", {"metadata": {"resourceVersion": str(revision)}},
                                                   revision))
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
            if self._closed:
                raise StopAsyncIteration
            if self._ws is None:
                await self._reconnect()
                continue
            now = loop.time()
            bookmark_due = self._last_bookmark + self._opts.bookmark_interval if self._opts.allow_bookmarks \
                else None
            if self._progress_asked is None:
                keepalive_due = self._last_heard + self._config.watch_progress_interval
            else:
                keepalive_due = self._progress_asked + self._config.request_timeout
            due = keepalive_due if bookmark_due is None else min(keepalive_due, bookmark_due)
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                # arrives as the read completes, and a cancelled watch would then run on.
                async with asyncio.timeout(max(0.0, due - now)):
                    msg = await self._receive(self._ws)
                if msg is None:
                    raise _StreamLost("etcd closed the watch stream")
            except TimeoutError:
                now = loop.time()
                if bookmark_due is not None and now >= bookmark_due:
                    self._last_bookmark = now
                    return Event("BOOKMARK", {"metadata": {"resourceVersion": str(self.last_revision)}},
                                 self.last_revision)
                if now >= keepalive_due:
                    await self._keepalive()
                continue
            except (_StreamLost, aiohttp.ClientError, OSError) as exc:
                if self._closed:
                    raise StopAsyncIteration from None
                await self._lost(str(exc) or type(exc).__name__)
                continue
            self._last_heard = loop.time()
            self._progress_asked = None
            try:
                self._handle(msg)
            except errors.StorageError as exc:
                if type(exc) is not errors.Unavailable:
                    raise
                await self._lost(exc.message)  # an error from the gateway mid-stream, e.g. a member shutting down
        return self._pending.popleft()

    async def request_progress(self) -> None:
        """Ask etcd now for the revision everything has been delivered up to (a BOOKMARK follows when bookmarks
        were asked for); nothing when a request is already out or the stream is being re-established."""
        if self._ws is None or self._progress_asked is not None:
            return
        try:
            await self._ws.send_str(PROGRESS_REQUEST)
        except (aiohttp.ClientError, OSError, ConnectionError):
            return  # the reading side finds the stream lost
        self._progress_asked = asyncio.get_running_loop().time()

    async def _keepalive(self) -> None:
        """The stream has been silent: ask etcd for progress, or give it up if the last request went unanswered."""
        assert self._ws is not None
        if self._progress_asked is not None:
            await self._lost(f"no answer from etcd for {self._config.request_timeout:g}s")
            return
        try:
            await self._ws.send_str(PROGRESS_REQUEST)
        except (aiohttp.ClientError, OSError, ConnectionError) as exc:
            await self._lost(f"watch stream failed: {type(exc).__name__}")
            return
        self._progress_asked = asyncio.get_running_loop().time()

    async def _lost(self, why: str) -> None:
        log.warning("etcd watch stream lost; re-establishing it", prefix=self._storage.relative(self._base),
                    revision=self.last_revision, reason=why)
        ws, self._ws = self._ws, None
        if ws is not None:
            self._storage.client.skip(self._endpoint)
            await ws.close()

    async def _reconnect(self) -> None:
        """Re-establish the stream from the last revision delivered, retrying (with backoff) while etcd cannot be
        reached; etcd's own refusals (compacted, future revision) end the watch."""
        delay = 0.1
        while not self._closed:
            try:
                await self._connect()
            except (errors.Expired, errors.TooLargeResourceVersion, errors.InvalidContinue):
                raise
            except errors.Unavailable as exc:
                log.info("etcd watch not re-established yet", prefix=self._storage.relative(self._base),
                         error=exc.message or type(exc).__name__)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, MAX_RECONNECT_DELAY)
                continue
            self.reconnects += 1
            log.info("etcd watch re-established", prefix=self._storage.relative(self._base),
                     revision=self.last_revision)
            return

    async def close(self) -> None:
        self._closed = True
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
