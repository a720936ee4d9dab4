"""The watch cache: what it serves from memory, and that it agrees with etcd."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kubellm.apis.selectors import parse_label_selector
from kubellm.registry.storage import errors
from kubellm.registry.storage.cacher import CachedStorage
from kubellm.registry.storage.cacher.cacher import Cacher
from kubellm.registry.storage.etcd import EtcdStorage, continue_token
from kubellm.registry.storage.interface import ListOptions, ListResult, Obj, WatchOptions
from kubellm.registry.storage.selection import SelectionPredicate

ROOT = "/g/things/"


def thing(name: str, ns: str = "ns1", **labels: str) -> Obj:
    return {"apiVersion": "g/v1", "kind": "Thing", "metadata": {"name": name, "namespace": ns, "labels": labels}}


@pytest.fixture
async def pair(etcd_storage: EtcdStorage) -> tuple[EtcdStorage, CachedStorage]:
    etcd = etcd_storage
    cached = CachedStorage(etcd, [ROOT], history=50, watcher_capacity=20)
    cached.start()
    await cached.wait_ready()
    yield etcd, cached  # type: ignore[misc]
    for c in cached.cachers.values():
        await c.stop()


def cacher(cached: CachedStorage) -> Cacher:
    return cached.cachers[ROOT]


async def caught_up(cached: CachedStorage, rev: int) -> None:
    async with asyncio.timeout(5):
        while cacher(cached).revision < rev:  # noqa: ASYNC110 - polling a plain int in a test
            await asyncio.sleep(0.01)


async def test_reads_at_resource_version_zero_come_from_memory(pair: tuple[EtcdStorage, CachedStorage]) -> None:
    etcd, cached = pair
    a = await cached.create(ROOT + "ns1/a", thing("a", app="x"))
    await cached.create(ROOT + "ns2/b", thing("b", ns="ns2", app="y"))
    last = await cached.create(ROOT + "ns1/c", thing("c"))
    await caught_up(cached, int(last["metadata"]["resourceVersion"]))
    listed = await cached.get_list(ROOT, ListOptions(resource_version="0"))
    assert [o["metadata"]["name"] for o in listed.items] == ["a", "c", "b"]  # key order: ns1/a, ns1/c, ns2/b
    assert listed.resource_version == last["metadata"]["resourceVersion"]
    assert listed.items == (await etcd.get_list(ROOT, ListOptions())).items
    in_ns = await cached.get_list(ROOT + "ns1/", ListOptions(resource_version="0"))
    assert [o["metadata"]["name"] for o in in_ns.items] == ["a", "c"]
    pred = SelectionPredicate(parse_label_selector("app=x"))
    selected = await cached.get_list(ROOT, ListOptions(resource_version="0", predicate=pred))
    assert [o["metadata"]["name"] for o in selected.items] == ["a"]
    assert await cached.get(ROOT + "ns1/a", "0") is cacher(cached).objects["ns1/a"]
    assert (await cached.get(ROOT + "ns1/a", "0")) == a
    # a revision the cache has not reached is read from etcd, which refuses one from the future
    with pytest.raises(errors.TooLargeResourceVersion):
        await cached.get_list(ROOT, ListOptions(resource_version=str(int(last["metadata"]["resourceVersion"]) + 99)))


async def test_watches_fan_out_from_one_etcd_watch(pair: tuple[EtcdStorage, CachedStorage]) -> None:
    _, cached = pair
    start = await cached.current_revision()
    watchers = [await cached.watch(ROOT, WatchOptions(resource_version=str(start))) for _ in range(10)]
    assert len(cacher(cached).watchers) == 10
    created = await cached.create(ROOT + "ns1/w", thing("w"))
    for w in watchers:
        async with asyncio.timeout(5):
            ev = await anext(aiter(w))
        assert (ev.type, ev.object["metadata"]["resourceVersion"]) == ("ADDED", created["metadata"]["resourceVersion"])
        await w.close()
    assert cacher(cached).watchers == set()


async def test_watch_before_the_window_falls_back_to_etcd(pair: tuple[EtcdStorage, CachedStorage]) -> None:
    _, cached = pair
    first = await cached.create(ROOT + "ns1/o", thing("o"))
    rv = first["metadata"]["resourceVersion"]
    for i in range(60):  # more changes than the 50-event window
        last = await cached.guaranteed_update(ROOT + "ns1/o", lambda o, i=i: _label(o, n=str(i)))
    await caught_up(cached, int(last["metadata"]["resourceVersion"]))
    assert cacher(cached).window_start > int(rv)
    w = await cached.watch(ROOT, WatchOptions(resource_version=rv))
    assert w not in cacher(cached).watchers  # served by etcd
    got = []
    async with asyncio.timeout(5):
        async for ev in w:
            got.append(ev)
            if len(got) == 60:
                break
    await w.close()
    assert [e.object["metadata"]["labels"]["n"] for e in got] == [str(i) for i in range(60)]


async def test_a_slow_watcher_is_dropped(pair: tuple[EtcdStorage, CachedStorage]) -> None:
    _, cached = pair
    w = await cached.watch(ROOT, WatchOptions(resource_version=str(await cached.current_revision())))
    for i in range(25):  # capacity is 20 and nobody reads
        last = await cached.create(ROOT + f"ns1/s{i}", thing(f"s{i}"))
    await caught_up(cached, int(last["metadata"]["resourceVersion"]))
    seen = 0
    with pytest.raises(errors.Expired):
        async with asyncio.timeout(5):
            async for _ in w:
                seen += 1
    assert seen == 20 and w not in cacher(cached).watchers


async def _label(o: Obj, **labels: str) -> Obj:
    o["metadata"]["labels"] = labels
    return o


async def test_updates_start_from_the_cached_copy(pair: tuple[EtcdStorage, CachedStorage]) -> None:
    etcd, cached = pair
    a = await cached.create(ROOT + "ns1/a", thing("a", app="x"))
    await caught_up(cached, int(a["metadata"]["resourceVersion"]))
    methods: list[str] = []
    call = etcd.client.call

    async def counting(method: str, payload: dict[str, object], **kw: object) -> object:
        methods.append(method)
        return await call(method, payload, **kw)  # type: ignore[arg-type]

    etcd.client.call = counting  # type: ignore[method-assign]
    copy_before = cacher(cached).objects["ns1/a"]

    async def label(obj: Obj) -> Obj:
        obj["metadata"]["labels"]["tier"] = "gold"
        return obj

    updated = await cached.guaranteed_update(ROOT + "ns1/a", label)
    assert methods == ["/kv/txn"]  # no read before the transaction
    assert copy_before["metadata"]["labels"] == {"app": "x"}  # the update worked on its own copy
    assert (await etcd.get(ROOT + "ns1/a"))["metadata"]["labels"] == {"app": "x", "tier": "gold"}
    assert updated["metadata"]["labels"] == {"app": "x", "tier": "gold"}


async def test_consistent_reads_come_from_memory_once_it_has_caught_up(
        pair: tuple[EtcdStorage, CachedStorage]) -> None:
    etcd, cached = pair
    # written past the cache (straight to etcd): a consistent read right after must see it (read-your-writes)
    a = await etcd.create(ROOT + "ns1/a", thing("a", app="x"))
    got = await cached.get(ROOT + "ns1/a")
    assert got["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
    assert got is cacher(cached).objects["ns1/a"]  # from memory
    listed = await cached.get_list(ROOT, ListOptions())
    assert [o["metadata"]["name"] for o in listed.items] == ["a"] and listed.items[0] is got
    assert int(listed.resource_version) >= int(a["metadata"]["resourceVersion"])
    # a write elsewhere in etcd moves etcd's revision past the last event of this resource: the cache learns it
    # from a progress request, not from the next bookmark, and still answers
    other = await etcd.create("/g/others/ns1/z", thing("z"))
    listed = await cached.get_list(ROOT, ListOptions())
    assert int(listed.resource_version) >= int(other["metadata"]["resourceVersion"])
    assert listed.items[0] is cacher(cached).objects["ns1/a"]
    with pytest.raises(errors.KeyNotFound):
        await cached.get(ROOT + "ns1/missing")
    # the same answers as etcd's
    assert (await cached.get_list(ROOT, ListOptions())).items == (await etcd.get_list(ROOT, ListOptions())).items



async def respec(obj: Obj) -> Obj:
    return {**obj, "spec": {"v": 1}}


async def test_pages_come_from_memory_and_match_etcds(pair: tuple[EtcdStorage, CachedStorage],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    etcd, cached = pair
    for i in range(12):
        await etcd.create(ROOT + f"ns{i % 3}/o{i:02d}", thing(f"o{i:02d}", ns=f"ns{i % 3}", app="x" if i % 2 else "y"))
    first = await cached.get_list(ROOT, ListOptions(limit=5))
    assert first.items[0] is cacher(cached).objects["ns0/o00"]  # a first page from memory
    assert first.remaining_item_count == 7 and first.continue_token
    rev = first.resource_version
    # changes after the list's revision, in and after the first page: later pages show the state at it
    await cached.guaranteed_update(ROOT + "ns1/o04", respec)
    await cached.delete(ROOT + "ns2/o05")
    await cached.create(ROOT + "ns1/o00a", thing("o00a", ns="ns1"))
    await cached.delete(ROOT + "ns1/o10")
    last = await cached.create(ROOT + "ns1/o10", thing("o10", ns="ns1", app="z"))
    await caught_up(cached, int(last["metadata"]["resourceVersion"]))
    etcd_lists = 0
    etcd_get_list = etcd.get_list

    async def counted(prefix: str, opts: ListOptions) -> ListResult:
        nonlocal etcd_lists
        etcd_lists += 1
        return await etcd_get_list(prefix, opts)
    monkeypatch.setattr(etcd, "get_list", counted)
    everything, app_x = SelectionPredicate(), SelectionPredicate(parse_label_selector("app=x"))
    for prefix, pred in ((ROOT, everything), (ROOT + "ns1/", everything), (ROOT + "ns2", everything), (ROOT, app_x)):
        want = [o for o in (await etcd_get_list(prefix, ListOptions(resource_version=rev,
                                                                    resource_version_match="Exact"))).items
                if pred.matches(o)]
        for limit in (1, 2, 4, 100):
            token, got = continue_token.encode(int(rev), ""), []
            while token:
                opts = ListOptions(limit=limit, predicate=pred, continue_token=token)
                page = await cached.get_list(prefix, opts)
                assert page == await etcd_get_list(prefix, opts), (prefix, limit, len(got))
                assert page.resource_version == rev
                got.extend(page.items)
                token = page.continue_token
            assert got == want, (prefix, limit)
    assert etcd_lists == 0  # every page from memory
    # outside the window of changes (or a revision not reached yet) etcd answers
    with contextlib.suppress(errors.Expired):  # etcd is shared: revision 1 may be compacted
        await cached.get_list(ROOT, ListOptions(limit=2, continue_token=continue_token.encode(1, "")))
    assert etcd_lists == 1
