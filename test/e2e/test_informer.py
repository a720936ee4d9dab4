"""Informers keep an exact mirror of the server's objects, whatever happens between them and the server.

The test runs its own etcd and its own kubellm-apiserver on it (a fixed port, the same state directory), so it
can stop and start the API server under the informers, and compact etcd itself. The informers reach the
server through a TCP proxy the test can cut; writers reach it directly. Two informers run side by side: one
that lists (client-go's default) and one that takes its state from watch-list streams. Phases:

1. 1,000 creates, updates (merge patch, PUT, status, apply) and deletes by 8 concurrent writers;
2. the API server restarts: the informers resume their watch, no list;
3. the proxy is cut while writers change objects, then restored: resumed without a list (history allows);
4. the proxy is cut, writers change and delete objects, the server stops, etcd is compacted past the
   informers' resourceVersion, the server starts, the proxy is restored: a 410, one list, and the same set.

After each phase the informers' stores and the mirrors their handlers keep are compared with a fresh
consistent list, object by object; handlers check they never see a store older than their event.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import APIServer, running_apiserver

from kubellm.apis.meta.v1 import ObjectMeta
from kubellm.apis.model.v1alpha1 import LLMService, LLMServiceSpec
from kubellm.app.etcd_pki import ensure_etcd_pki
from kubellm.client import (
    AlreadyExists,
    Config,
    Conflict,
    DeletedFinalStateUnknown,
    EventHandlerFuncs,
    InformerOptions,
    NotFound,
    SharedIndexInformer,
)
from kubellm.client import codec as client_codec
from kubellm.client.aio import ClientSet, SharedInformerFactory
from kubellm.client.backoff import Backoff
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd, free_port

NAMESPACES = ("inf-a", "inf-b")
WRITERS = 8
NAMES_PER_WRITER = 30


# --- a TCP proxy the test can cut ------------------------------------------------------------------------------


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.open = True
        self.pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self.pairs.add(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self.pairs.discard(pair)

    def cut(self) -> None:
        self.open = False
        for down, up in list(self.pairs):
            down.transport.abort()
            up.transport.abort()

    def restore(self) -> None:
        self.open = True

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


# --- the servers -------------------------------------------------------------------------------------------------


@dataclass
class Servers:
    state: Path
    etcd: EmbeddedEtcd
    port: int
    args: tuple[str, ...]
    server: APIServer | None = None
    _cm: contextlib.AbstractContextManager[APIServer] | None = None

    def start(self) -> APIServer:
        self._cm = running_apiserver(self.state, *self.args)
        self.server = self._cm.__enter__()
        return self.server

    def stop(self) -> None:
        cm, self._cm = self._cm, None
        if cm is not None:
            cm.__exit__(None, None, None)

    async def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision; the revision."""
        ctx = self.etcd.ssl_context()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx or False)) as session:
            key = base64.b64encode(b"/informer-test/bump").decode()
            async with session.post(f"{self.etcd.endpoint}/v3/kv/put", json={"key": key, "value": key}) as r:
                revision = int((await r.json())["header"]["revision"])
            async with session.post(f"{self.etcd.endpoint}/v3/kv/compaction",
                                    json={"revision": str(revision), "physical": True}) as r:
                assert r.status == 200, await r.text()
        return revision


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    tls = ensure_etcd_pki(tmp_path / "etcd-pki")
    etcd = EmbeddedEtcd(tmp_path / "etcd", progress_notify_interval="1s", tls=tls)
    endpoint = await etcd.start()
    port = free_port()
    args = ("--etcd-servers", endpoint, "--etcd-cafile", str(tls.ca_file), "--etcd-certfile", str(tls.client_cert),
            "--etcd-keyfile", str(tls.client_key), "--secure-port", str(port))
    state = tmp_path / "state"
    state.mkdir()
    s = Servers(state, etcd, port, args)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        await etcd.stop()


# --- mirrors ----------------------------------------------------------------------------------------------------


@dataclass
class Mirror:
    """What an informer's handler saw, applied in order; and any torn state it noticed."""

    informer: SharedIndexInformer[LLMService]
    objects: dict[str, LLMService] = field(default_factory=dict)
    torn: list[str] = field(default_factory=list)
    deletes_unknown: int = 0

    def _check(self, obj: LLMService) -> None:
        key = f"{obj.metadata.namespace}/{obj.metadata.name}"
        stored = self.informer.indexer.get_by_key(key)
        if stored is not None and int(stored.metadata.resource_version or 0) < int(obj.metadata.resource_version or 0):
            self.torn.append(key)

    def add(self, obj: LLMService) -> None:
        self._check(obj)
        self.objects[f"{obj.metadata.namespace}/{obj.metadata.name}"] = obj

    def update(self, old: LLMService, new: LLMService) -> None:
        self._check(new)
        self.objects[f"{new.metadata.namespace}/{new.metadata.name}"] = new

    def delete(self, obj: LLMService | DeletedFinalStateUnknown[LLMService]) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.deletes_unknown += 1
            self.objects.pop(obj.key, None)
        else:
            self.objects.pop(f"{obj.metadata.namespace}/{obj.metadata.name}", None)

    def handler(self) -> EventHandlerFuncs[LLMService]:
        return EventHandlerFuncs(add=self.add, update=self.update, delete=self.delete)


def as_dicts(objs: Iterator[tuple[str, LLMService]]) -> dict[str, dict[str, Any]]:
    return {k: client_codec.encode(o) for k, o in objs}


async def converge(writer: ClientSet, mirrors: list[Mirror], timeout: float = 30) -> int:
    """Wait until every store and every handler mirror equals a fresh consistent list; the number of objects."""
    deadline = time.monotonic() + timeout
    while True:
        items, _ = await writer.model_v1alpha1.llmservices().ops.list_all(resource_version="")
        truth = {f"{o.metadata.namespace}/{o.metadata.name}": client_codec.encode(o) for o in items}
        problems = []
        for m in mirrors:
            store = as_dicts(iter(m.informer.indexer.items()))
            seen = as_dicts(iter(m.objects.items()))
            for what, got in (("store", store), ("handlers", seen)):
                if got != truth:
                    missing = sorted(set(truth) - set(got))[:5]
                    extra = sorted(set(got) - set(truth))[:5]
                    differ = sorted(k for k in set(got) & set(truth) if got[k] != truth[k])[:5]
                    problems.append(f"{m.informer.name} {what}: missing {missing} extra {extra} differ {differ}")
        if not problems:
            return len(truth)
        if time.monotonic() > deadline:
            raise AssertionError("informers did not converge:\n" + "\n".join(problems))
        await asyncio.sleep(0.2)


# --- writers ----------------------------------------------------------------------------------------------------


async def write(clients: ClientSet, changes: int, seed: int, *, deletes: float = 0.25) -> int:
    """`changes` successful creates, updates and deletes by concurrent writers; how many were deletes."""
    done = 0
    deleted = 0

    async def writer(w: int) -> None:
        nonlocal done, deleted
        rnd = random.Random(seed * 100 + w)
        ns = NAMESPACES[w % len(NAMESPACES)]
        llms = clients.model_v1alpha1.llmservices(ns)
        while done < changes:
            name = f"w{w}-{rnd.randrange(NAMES_PER_WRITER)}"
            op = rnd.random()
            try:
                if op < 0.35:
                    await llms.create(LLMService(metadata=ObjectMeta(name=name, labels={"w": str(w)}),
                                                 spec=LLMServiceSpec(model="Qwen/Qwen2.5-3B-Instruct")))
                elif op < 0.35 + deletes:
                    await llms.delete(name)
                    deleted += 1
                elif op < 0.75:
                    await llms.patch(name, {"spec": {"replicas": rnd.randrange(1, 9)}})
                elif op < 0.85:
                    current = await llms.get(name)
                    current.spec.max_model_len = rnd.choice([1024, 2048, 4096])
                    await llms.update(current)
                elif op < 0.93:
                    current = await llms.get(name)
                    current.status = client_codec.decode(type(current), {"status": {
                        "phase": rnd.choice(["Pending", "Serving"]), "replicas": 1}}).status
                    await llms.update_status(current)
                else:
                    await llms.apply({"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
                                      "metadata": {"name": name, "namespace": ns,
                                                   "annotations": {"tick": str(rnd.random())}},
                                      "spec": {"model": "Qwen/Qwen2.5-3B-Instruct"}},
                                     field_manager=f"writer-{w}", force=True)
            except (AlreadyExists, NotFound, Conflict):
                continue
            done += 1

    await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    return deleted


# --- the test -----------------------------------------------------------------------------------------------------


async def test_informers_mirror_the_server_through_restarts_disconnects_and_compaction(servers: Servers) -> None:
    assert servers.server is not None
    config = Config.from_kubeconfig(servers.server.kubeconfig)
    proxy = Proxy(servers.port)
    await proxy.start()
    fast = InformerOptions(backoff=lambda: Backoff(initial=0.05, maximum=0.5), watch_read_timeout=60)
    async with ClientSet(config) as writer, \
            ClientSet(config.replace(host=f"https://127.0.0.1:{proxy.port}")) as reader:
        listing = SharedInformerFactory(reader, options=fast)
        streaming = SharedInformerFactory(reader, options=InformerOptions(
            backoff=fast.backoff, watch_read_timeout=60, use_watch_list=True))
        informers = [listing.model_v1alpha1.llmservices().informer(),
                     streaming.model_v1alpha1.llmservices().informer()]
        mirrors = [Mirror(i) for i in informers]
        for m in mirrors:
            m.informer.add_event_handler(m.handler())
        listing.start()
        streaming.start()
        try:
            assert all((await listing.wait_for_cache_sync(10)).values())
            assert all((await streaming.wait_for_cache_sync(10)).values())

            # 1. a thousand concurrent changes
            began = time.monotonic()
            await write(writer, 1000, seed=1)
            count = await converge(writer, mirrors)
            print(f"phase 1: 1000 changes in {time.monotonic() - began:.1f}s, {count} objects")
            assert count > 50
            lists = [i.stats.lists for i in informers]
            assert lists == [1, 1]

            # 2. the API server restarts (nothing is written while it is down)
            watches = [i.stats.watches for i in informers]
            servers.stop()
            servers.start()
            await write(writer, 150, seed=2)
            await converge(writer, mirrors)
            assert [i.stats.lists for i in informers] == lists, [i.stats for i in informers]
            assert all(i.stats.watches > w for i, w in zip(informers, watches))
            assert [i.stats.relists_after_expired for i in informers] == [0, 0]

            # 3. cut off while objects change: resumed from the last resourceVersion, no list
            proxy.cut()
            await write(writer, 200, seed=3)
            proxy.restore()
            await converge(writer, mirrors)
            assert [i.stats.lists for i in informers] == lists
            assert [i.stats.relists_after_expired for i in informers] == [0, 0]

            # 4. cut off, objects change and go, history compacted past the informers: 410, one list
            unknown = [m.deletes_unknown for m in mirrors]
            proxy.cut()
            deleted = await write(writer, 300, seed=4, deletes=0.4)
            servers.stop()
            revision = await servers.compact_etcd()
            assert all(int(i.last_sync_resource_version) < revision for i in informers)
            servers.start()
            proxy.restore()
            count = await converge(writer, mirrors)
            assert [i.stats.relists_after_expired for i in informers] == [1, 1]
            assert [i.stats.lists for i in informers] == [n + 1 for n in lists]
            assert deleted > 0 and all(m.deletes_unknown > u for m, u in zip(mirrors, unknown)), \
                "objects deleted while away reach the handlers as DeletedFinalStateUnknown"
            print(f"phase 4: {count} objects after the relist, {deleted} deleted while away")
            assert all(not m.torn for m in mirrors), [m.torn[:5] for m in mirrors]
        finally:
            await listing.shutdown()
            await streaming.shutdown()
            await proxy.close()
