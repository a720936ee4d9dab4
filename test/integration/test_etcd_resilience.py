"""etcd misbehaving, against real etcd processes (issue #12): a stalled etcd (SIGSTOP) fails calls at their
deadline, a silent watch stream is re-established from its last revision, endpoints fail over, storage starts
before etcd does, a watch from a future revision is refused, and every server on one etcd answers a compacted
watch start alike.

The stalled etcd is this module's own (the session's etcd is shared by every test); a TCP forwarder in front of
an etcd plays a network that stops carrying a connection's bytes without closing it, or a host that accepts
connections and never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from etcd_access import EtcdAccess
from samples import make
from test_store import KINDS

from kubellm.apis import errors as api_errors
from kubellm.app.etcd_pki import ensure_etcd_pki
from kubellm.registry.options import RegistryOptions
from kubellm.registry.registry import build_stores
from kubellm.registry.storage import errors
from kubellm.registry.storage.cacher import CachedStorage
from kubellm.registry.storage.etcd import EtcdConfig, EtcdStorage
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd, free_port
from kubellm.registry.storage.interface import Event, ListOptions, Obj, Watcher, WatchOptions
from kubellm.registry.store import ListParams, Store

ROOT = "/g/things/"


def thing(name: str, **spec: int) -> Obj:
    return {"apiVersion": "g/v1", "kind": "Thing", "metadata": {"name": name, "namespace": "ns1"}, "spec": spec}


def rv(obj: Obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def next_events(w: Watcher, n: int, timeout: float) -> list[Event]:
    got: list[Event] = []
    async with asyncio.timeout(timeout):
        async for ev in w:
            if ev.type != "BOOKMARK":
                got.append(ev)
            if len(got) == n:
                break
    return got


# --- a TCP forwarder that can misbehave ------------------------------------------------------------------------


class Forwarder:
    """Forwards 127.0.0.1:<port> to a target port. `freeze()` stops carrying bytes on the connections open now
    (a silent, half-open stream; new connections still work); with `blackhole`, connections are accepted and
    never answered (a host that is up and does nothing)."""

    def __init__(self, target_port: int, *, blackhole: bool = False) -> None:
        self.target_port = target_port
        self.blackhole = blackhole
        self.port = 0
        self.connections = 0
        self._frozen: list[asyncio.Event] = []
        self._held: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> Forwarder:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.blackhole:
            self._held.append(writer)
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._held += [writer, up_writer]
        carry = asyncio.Event()
        carry.set()
        self._frozen.append(carry)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pipe(src, dst, carry))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, carry: asyncio.Event) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                await carry.wait()
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(Exception):
            dst.close()

    def freeze(self) -> None:
        for carry in self._frozen:
            carry.clear()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for w in self._held:
            w.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


# --- fixtures ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnEtcd:
    access: EtcdAccess
    server: EmbeddedEtcd

    def config(self, prefix: str, **kwargs: Any) -> EtcdConfig:
        return self.access.config(prefix, **kwargs)

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """etcd stopped (SIGSTOP) inside the block: connections stay open, nothing answers."""
        proc = self.server.process
        assert proc is not None
        proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            proc.send_signal(signal.SIGCONT)


@pytest.fixture
async def own_etcd(tmp_path: Path) -> AsyncIterator[OwnEtcd]:
    """An etcd of this test alone (it may be stopped), without progress notifications of its own."""
    tls = ensure_etcd_pki(tmp_path / "pki")
    server = EmbeddedEtcd(tmp_path / "data", progress_notify_interval="60s", tls=tls)
    endpoint = await server.start()
    try:
        yield OwnEtcd(EtcdAccess(endpoint, tls), server)
    finally:
        await server.stop()


def prefix() -> str:
    return f"/res-{uuid.uuid4().hex[:12]}"


# --- 3. deadlines -----------------------------------------------------------------------------------------------


async def test_calls_to_a_stalled_etcd_fail_at_their_deadline(own_etcd: OwnEtcd) -> None:
    storage = EtcdStorage(own_etcd.config(prefix(), compaction_interval=0, request_timeout=0.5, list_timeout=1.0,
                                          healthcheck_timeout=0.3))
    stores = {s.info.kind: s for s in build_stores(storage, RegistryOptions()).values()}
    llm: Store = stores["LLMService"]
    try:
        created = await storage.create(ROOT + "ns1/a", thing("a"))
        with own_etcd.stalled():
            for call, limit in ((storage.get(ROOT + "ns1/a"), 0.5), (storage.create(ROOT + "ns1/b", thing("b")), 0.5),
                                (storage.get_list(ROOT, ListOptions()), 1.0), (storage.check_health(), 0.3)):
                started = time.monotonic()
                with pytest.raises(errors.Timeout):
                    async with asyncio.timeout(10):  # the old client waited for the stall to end
                        await call
                assert limit <= time.monotonic() - started < limit + 1.5
            # through the Store: a 504 Timeout Status, as kube-apiserver answers a storage deadline
            with pytest.raises(api_errors.StatusError) as exc:
                async with asyncio.timeout(10):
                    await llm.get("ns1", "x")
            assert (exc.value.code, exc.value.reason) == (504, "Timeout")
            with pytest.raises(api_errors.StatusError) as exc:
                async with asyncio.timeout(10):
                    await llm.create(make(KINDS["LLMService"], "qwen"), namespace="ns1")
            assert (exc.value.code, exc.value.reason) == (504, "Timeout")
        # the stall over, the same storage works again
        assert rv(await storage.get(ROOT + "ns1/a")) == rv(created)
    finally:
        await storage.close()


async def test_a_silent_watch_stream_is_reestablished_from_its_last_revision(etcd: EtcdAccess) -> None:
    """The connection stops carrying bytes without closing (a partition, a dead proxy): the watch asks etcd for
    progress, gets no answer, and watches again from where it was on a new connection; nothing is lost."""
    port = int(etcd.endpoint.rsplit(":", 1)[1])
    forwarder = await Forwarder(port).start()
    p = prefix()
    direct = EtcdStorage(etcd.config(p, compaction_interval=0))
    watching = EtcdStorage(EtcdAccess(forwarder.endpoint(), etcd.tls).config(
        p, compaction_interval=0, request_timeout=1.0, watch_progress_interval=0.3))
    try:
        w = await watching.watch(ROOT, WatchOptions(resource_version=str(await direct.current_revision())))
        a = await direct.create(ROOT + "ns1/a", thing("a"))
        assert [(e.type, e.revision) for e in await next_events(w, 1, 5)] == [("ADDED", rv(a))]
        forwarder.freeze()
        b = await direct.create(ROOT + "ns1/b", thing("b"))
        a2 = await direct.guaranteed_update(ROOT + "ns1/a", _set(n=1))
        got = await next_events(w, 2, 10)  # the old watcher waited forever on the frozen stream
        assert [(e.type, e.object["metadata"]["name"], e.revision) for e in got] == [
            ("ADDED", "b", rv(b)), ("MODIFIED", "a", rv(a2))]
        assert w.reconnects == 1  # type: ignore[attr-defined]
        await w.close()
    finally:
        await direct.close()
        await watching.close()
        await forwarder.close()


async def test_a_watch_resumes_after_etcd_stalled(own_etcd: OwnEtcd) -> None:
    """SIGSTOP: the stream goes silent, re-establishing fails while etcd is stopped; after SIGCONT the watch goes
    on from its last revision and the cache over it keeps serving the same watchers."""
    p = prefix()
    storage = EtcdStorage(own_etcd.config(p, compaction_interval=0, request_timeout=0.5,
                                          watch_progress_interval=0.3))
    cached = CachedStorage(storage, [ROOT])
    cached.start()
    try:
        await asyncio.wait_for(cached.wait_ready(), 10)
        w = await cached.watch(ROOT, WatchOptions(resource_version=str(await storage.current_revision())))
        with own_etcd.stalled():
            await asyncio.sleep(2.0)  # several keep-alive rounds and failed re-connections
        created = await storage.create(ROOT + "ns1/a", thing("a"))
        assert [(e.type, e.revision) for e in await next_events(w, 1, 10)] == [("ADDED", rv(created))]
        await w.close()
    finally:
        await cached.close()


# --- 4. endpoints, start-up --------------------------------------------------------------------------------------


async def test_every_endpoint_is_used_with_failover(etcd: EtcdAccess) -> None:
    port = int(etcd.endpoint.rsplit(":", 1)[1])
    blackhole = await Forwarder(port, blackhole=True).start()
    refused = f"https://127.0.0.1:{free_port()}"
    endpoints = (blackhole.endpoint(), refused, etcd.endpoint)
    started = time.monotonic()
    # etcd3-py's client made a blocking call to the first endpoint here and failed with AttributeError
    storage = EtcdStorage(dataclasses.replace(etcd.config(prefix(), compaction_interval=0, dial_timeout=0.3),
                                              endpoints=endpoints))
    assert time.monotonic() - started < 0.2 and blackhole.connections == 0  # nothing happens before a call
    try:
        async with asyncio.timeout(5):
            created = await storage.create(ROOT + "ns1/a", thing("a"))
            assert storage.client.active == 2  # remembered: later calls go there first
            assert rv(await storage.get(ROOT + "ns1/a")) == rv(created)
            w = await storage.watch(ROOT, WatchOptions(resource_version=str(rv(created) - 1)))
            assert [e.revision for e in await next_events(w, 1, 5)] == [rv(created)]
            await w.close()
        assert blackhole.connections == 1
    finally:
        await storage.close()
        await blackhole.close()


async def test_storage_starts_before_etcd_and_serves_once_it_is_up(tmp_path: Path) -> None:
    tls = ensure_etcd_pki(tmp_path / "pki")
    server = EmbeddedEtcd(tmp_path / "data", tls=tls)
    access = EtcdAccess(server.endpoint, tls)
    storage = EtcdStorage(access.config(prefix(), compaction_interval=0))
    cached = CachedStorage(storage, [ROOT], retry_delay=0.1)  # type: ignore[arg-type]
    try:
        started = time.monotonic()
        with pytest.raises(errors.Unavailable):
            await storage.check_health()
        assert time.monotonic() - started < 1
        cached.start()  # the cache keeps trying
        waiting = asyncio.get_running_loop().create_task(storage.wait_until_healthy())
        await asyncio.sleep(0.5)
        assert not waiting.done() and not cached.cachers[ROOT].ready.is_set()
        await server.start()
        await asyncio.wait_for(waiting, 10)
        await asyncio.wait_for(cached.wait_ready(), 10)
        created = await cached.create(ROOT + "ns1/a", thing("a"))
        assert rv(await cached.get(ROOT + "ns1/a")) == rv(created)
    finally:
        await cached.close()
        await server.stop()


# --- 5. a watch from a future revision ---------------------------------------------------------------------------


async def test_a_watch_from_a_future_revision_is_refused(storage: EtcdStorage) -> None:
    """As a list at that revision is (504 Too large resource version), so a client resuming against a restored
    etcd lists again; the old code accepted it and stayed silent until the revision came."""
    current = await storage.current_revision()
    started = time.monotonic()
    with pytest.raises(errors.TooLargeResourceVersion) as exc:
        await asyncio.wait_for(storage.watch(ROOT, WatchOptions(resource_version=str(current + 1000))), 10)
    assert time.monotonic() - started < 3
    assert (exc.value.requested, exc.value.current) == (current + 1000, current)
    assert exc.value.message == f"Too large resource version: {current + 1000}, current: {current}"
    # the current revision is fine, and delivers what comes next
    w = await storage.watch(ROOT, WatchOptions(resource_version=str(current)))
    created = await storage.create(ROOT + "ns1/a", thing("a"))
    assert [e.revision for e in await next_events(w, 1, 5)] == [rv(created)]
    await w.close()


async def test_a_get_at_a_future_revision_is_refused(storage: EtcdStorage) -> None:
    """A get with a resourceVersion means "not older than" it (as a list's NotOlderThan does): from a revision etcd
    has not reached it is 504 Too large resource version, never the older object of now (the fault suite found the
    get answering with what etcd has, on etcd and on the cache alike)."""
    created = await storage.create(ROOT + "ns1/a", thing("a"))
    current = await storage.current_revision()
    with pytest.raises(errors.TooLargeResourceVersion) as exc:
        await storage.get(ROOT + "ns1/a", str(current + 1000))
    assert (exc.value.requested, exc.value.current) == (current + 1000, current)
    for version in ("", "0", str(rv(created)), str(current)):
        assert rv(await storage.get(ROOT + "ns1/a", version)) == rv(created)
    with pytest.raises(errors.InvalidContinue):
        await storage.get(ROOT + "ns1/a", "x1")


async def test_a_store_answers_a_future_watch_as_kube_apiserver(storage: EtcdStorage) -> None:
    llm = {s.info.kind: s for s in build_stores(storage, RegistryOptions()).values()}["LLMService"]
    future = await storage.current_revision() + 1000
    with pytest.raises(api_errors.StatusError) as exc:
        await llm.watch("ns1", ListParams(resource_version=str(future)))
    status = exc.value.status
    assert (status["code"], status["reason"]) == (504, "Timeout")
    assert status["message"].startswith(f"Too large resource version: {future}, current: ")
    assert status["details"]["retryAfterSeconds"] == 1
    assert status["details"]["causes"] == [{"reason": "ResourceVersionTooLarge",
                                            "message": "Too large resource version"}]


async def test_a_watch_ahead_of_the_cache_but_not_of_etcd_is_served(etcd_storage: EtcdStorage) -> None:
    cached = CachedStorage(etcd_storage, [ROOT])
    cached.start()
    try:
        await cached.wait_ready()
        cacher = cached.cachers[ROOT]
        other = await etcd_storage.create("/g/other/ns1/x", thing("x"))  # etcd moves on; this cache need not
        assert cacher.revision < rv(other)
        started = time.monotonic()
        w = await cached.watch(ROOT, WatchOptions(resource_version=str(rv(other))))
        assert time.monotonic() - started < 1 and w in cacher.watchers
        created = await etcd_storage.create(ROOT + "ns1/a", thing("a"))
        assert [e.revision for e in await next_events(w, 1, 5)] == [rv(created)]
        await w.close()
    finally:
        for c in cached.cachers.values():
            await c.stop()


# --- 6. compaction, as every server sees it ---------------------------------------------------------------------


async def test_two_servers_answer_a_compacted_watch_start_alike(etcd: EtcdAccess) -> None:
    """Two storage + cache stacks on one etcd and one prefix, as two kubellm-apiservers: whichever compacts, a
    watch from before the compaction is 410 on both, and one from after it is served on both."""
    p = prefix()
    stacks = []
    for _ in range(2):
        s = CachedStorage(EtcdStorage(etcd.config(p, compaction_interval=0)), [ROOT])
        s.start()
        await s.wait_ready()
        stacks.append(s)
    a, b = stacks
    try:
        first = await a.create(ROOT + "ns1/o", thing("o"))
        for n in range(5):
            last = await a.guaranteed_update(ROOT + "ns1/o", _set(n=n))
        for s in stacks:
            assert await s.cachers[ROOT].wait_until(rv(last))
        await a.storage.compact(rv(last) - 1)  # server a compacts; b is not told
        assert b.compacted_revision < rv(last) - 1
        for s in stacks:
            with pytest.raises(errors.Expired):
                w = await s.watch(ROOT, WatchOptions(resource_version=str(rv(first))))
                try:
                    await next_events(w, 1, 5)
                finally:
                    await w.close()
        assert b.compacted_revision >= rv(first) + 2  # b learned it from etcd
        for s in stacks:  # the compaction revision's own changes are still there
            w = await s.watch(ROOT, WatchOptions(resource_version=str(rv(last) - 2)))
            assert w in s.cachers[ROOT].watchers  # served from memory
            assert [e.revision for e in await next_events(w, 1, 5)] == [rv(last) - 1]
            await w.close()
    finally:
        for s in stacks:
            await s.close()


async def test_a_server_learns_the_compaction_of_another_from_the_shared_key(etcd: EtcdAccess) -> None:
    p = prefix()
    a = EtcdStorage(etcd.config(p, compaction_interval=0))
    b = EtcdStorage(etcd.config(p, compaction_interval=0))
    try:
        await a.compactor.compact_once()  # a records a revision, b tries and learns a was first
        await b.compactor.compact_once()
        await a.create(ROOT + "ns1/o", thing("o"))
        target = await a.compactor.compact_once()
        assert target is not None and a.compacted_revision == target
        assert await b.compactor.compact_once() is None  # a was first again
        assert b.compacted_revision == target
    finally:
        await a.close()
        await b.close()


def _set(**spec: int) -> Callable[[Obj], Awaitable[Obj]]:
    async def update(o: Obj) -> Obj:
        o["spec"] = spec
        return o
    return update
