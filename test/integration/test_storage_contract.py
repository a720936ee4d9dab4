"""The storage contract, exercised against a real etcd (no mocks).

Every test gets an EtcdStorage on its own key prefix (see test/conftest.py). Compaction is global to
the shared etcd, so tests that compact only rely on history they wrote themselves.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from kubellm.apis.selectors import parse_field_selector, parse_label_selector
from kubellm.registry.storage import errors
from kubellm.registry.storage.etcd import EtcdStorage
from kubellm.registry.storage.etcd.client import b64, unb64
from kubellm.registry.storage.etcd.watcher import EtcdWatcher
from kubellm.registry.storage.interface import (
    Event,
    ListOptions,
    ListResult,
    Obj,
    Preconditions,
    WatchOptions,
)
from kubellm.registry.storage.selection import SelectionPredicate

PREFIX = "/g/things/"
TIMEOUT = 5.0


# --------------------------------------------------------------------------------------------------
# helpers


def thing(name: str, namespace: str = "ns1", *, labels: dict[str, str] | None = None,
          spec: dict[str, Any] | None = None, uid: str | None = None) -> Obj:
    return {
        "apiVersion": "g/v1",
        "kind": "Thing",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {}),
                     "uid": uid or str(uuid.uuid4())},
        "spec": dict(spec or {}),
    }


def key_of(name: str, namespace: str = "ns1") -> str:
    return f"{PREFIX}{namespace}/{name}"


def rv(obj: Obj) -> int:
    value = obj["metadata"]["resourceVersion"]
    assert isinstance(value, str)
    return int(value)


def name_of(obj: Obj) -> str:
    name = obj["metadata"]["name"]
    assert isinstance(name, str)
    return name


async def raw_stored(storage: EtcdStorage, key: str) -> tuple[bytes, int]:
    """The bytes etcd holds for `key` and their mod revision, read straight from etcd."""
    resp = await storage.client.call("/kv/range", {"key": b64(storage.full_key(key))})
    kvs = resp.get("kvs") or []
    assert len(kvs) == 1, f"{key} is not stored"
    return unb64(kvs[0].get("value", "")), int(kvs[0]["mod_revision"])


async def exists(storage: EtcdStorage, key: str) -> bool:
    try:
        await storage.get(key)
    except errors.KeyNotFound:
        return False
    return True


def set_spec(**changes: Any) -> Callable[[Obj], Awaitable[Obj]]:
    async def update(obj: Obj) -> Obj:
        obj.setdefault("spec", {}).update(changes)
        return obj
    return update


def set_labels(labels: dict[str, str]) -> Callable[[Obj], Awaitable[Obj]]:
    async def update(obj: Obj) -> Obj:
        obj["metadata"]["labels"] = dict(labels)
        return obj
    return update


async def create_many(storage: EtcdStorage, objs: list[Obj], concurrency: int = 32) -> list[Obj]:
    sem = asyncio.Semaphore(concurrency)

    async def one(obj: Obj) -> Obj:
        async with sem:
            meta = obj["metadata"]
            return await storage.create(key_of(meta["name"], meta["namespace"]), obj)

    return list(await asyncio.gather(*(one(o) for o in objs)))


async def next_event(w: EtcdWatcher, timeout: float = TIMEOUT) -> Event:
    return await asyncio.wait_for(w.__anext__(), timeout)


async def collect(w: EtcdWatcher, n: int, timeout: float = TIMEOUT) -> list[Event]:
    """Exactly the next `n` non-bookmark events."""
    out: list[Event] = []
    while len(out) < n:
        ev = await next_event(w, timeout)
        if ev.type != "BOOKMARK":
            out.append(ev)
    return out


async def collect_until_rev(w: EtcdWatcher, last_rev: int, timeout: float = TIMEOUT) -> list[Event]:
    """Events up to and including the one at `last_rev`."""
    out: list[Event] = []
    while not out or out[-1].revision < last_rev:
        ev = await next_event(w, timeout)
        if ev.type != "BOOKMARK":
            out.append(ev)
    return out


async def expect_quiet(w: EtcdWatcher, seconds: float) -> None:
    """No non-bookmark event arrives within `seconds`."""
    try:
        ev = await asyncio.wait_for(w.__anext__(), seconds)
    except TimeoutError:
        return
    assert ev.type == "BOOKMARK", f"unexpected event {ev.type} {ev.object}"


def sig(ev: Event) -> tuple[str, str, int]:
    return ev.type, name_of(ev.object), ev.revision


async def list_all_pages(storage: EtcdStorage, opts: ListOptions) -> list[ListResult]:
    pages = [await storage.get_list(PREFIX, opts)]
    while pages[-1].continue_token:
        assert len(pages) < 1000
        pages.append(await storage.get_list(PREFIX, ListOptions(limit=opts.limit,
                                                                continue_token=pages[-1].continue_token,
                                                                predicate=opts.predicate)))
    return pages


def label_pred(text: str) -> SelectionPredicate:
    return SelectionPredicate(label=parse_label_selector(text))


def field_pred(text: str) -> SelectionPredicate:
    return SelectionPredicate(field=parse_field_selector(text))


def forge_token(payload: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode("ascii").rstrip("=")


# --------------------------------------------------------------------------------------------------
# 1. create / get


async def test_create_sets_resource_version_and_get_returns_it(storage: EtcdStorage) -> None:
    before = await storage.current_revision()
    created = await storage.create(key_of("a"), thing("a", spec={"x": 1}))
    value = created["metadata"]["resourceVersion"]
    assert isinstance(value, str) and value == str(int(value))
    assert int(value) > before
    assert created["spec"] == {"x": 1}

    got = await storage.get(key_of("a"))
    assert got["metadata"]["resourceVersion"] == value
    assert got == created

    # the RV is the key's mod revision, and is not part of the stored bytes
    raw, mod_rev = await raw_stored(storage, key_of("a"))
    assert mod_rev == int(value)
    assert b"resourceVersion" not in raw
    assert orjson.loads(raw)["spec"] == {"x": 1}


async def test_create_existing_key_raises_key_exists(storage: EtcdStorage) -> None:
    first = await storage.create(key_of("a"), thing("a", spec={"v": "first"}))
    with pytest.raises(errors.KeyExists):
        await storage.create(key_of("a"), thing("a", spec={"v": "second"}))
    got = await storage.get(key_of("a"))
    assert got["spec"] == {"v": "first"}
    assert rv(got) == rv(first)


async def test_get_missing_raises_key_not_found(storage: EtcdStorage) -> None:
    with pytest.raises(errors.KeyNotFound):
        await storage.get(key_of("missing"))
    await storage.create(key_of("other"), thing("other"))
    with pytest.raises(errors.KeyNotFound):
        await storage.get(key_of("missing"))


async def test_bogus_resource_version_is_never_stored(storage: EtcdStorage) -> None:
    obj = thing("a")
    obj["metadata"]["resourceVersion"] = "999999999"
    created = await storage.create(key_of("a"), obj)
    assert created["metadata"]["resourceVersion"] != "999999999"
    raw, mod_rev = await raw_stored(storage, key_of("a"))
    assert b"resourceVersion" not in raw and b"999999999" not in raw
    assert rv(created) == mod_rev
    assert rv(await storage.get(key_of("a"))) == mod_rev

    async def bogus(o: Obj) -> Obj:
        o["metadata"]["resourceVersion"] = "123456789"
        o["spec"]["y"] = 2
        return o

    updated = await storage.guaranteed_update(key_of("a"), bogus)
    raw, mod_rev = await raw_stored(storage, key_of("a"))
    assert b"resourceVersion" not in raw
    assert rv(updated) == mod_rev > rv(created)
    assert rv(await storage.get(key_of("a"))) == mod_rev


# --------------------------------------------------------------------------------------------------
# 2. guaranteed_update


async def test_guaranteed_update_applies_and_bumps_rv(storage: EtcdStorage) -> None:
    created = await storage.create(key_of("a"), thing("a", spec={"n": 1}))
    seen: list[Obj] = []

    async def bump(obj: Obj) -> Obj:
        seen.append(copy.deepcopy(obj))
        obj["spec"]["n"] += 1
        return obj

    updated = await storage.guaranteed_update(key_of("a"), bump)
    assert len(seen) == 1
    assert seen[0]["spec"] == {"n": 1} and rv(seen[0]) == rv(created)
    assert updated["spec"] == {"n": 2}
    assert rv(updated) > rv(created)
    got = await storage.get(key_of("a"))
    assert got["spec"] == {"n": 2} and rv(got) == rv(updated)


async def test_guaranteed_update_retries_on_concurrent_write(storage: EtcdStorage) -> None:
    created = await storage.create(key_of("a"), thing("a", spec={"base": True}))
    calls: list[Obj] = []
    interloper: list[Obj] = []

    async def update(obj: Obj) -> Obj:
        calls.append(copy.deepcopy(obj))
        if len(calls) == 1:
            # Another writer changes the key between our read and our write.
            interloper.append(await storage.guaranteed_update(key_of("a"), set_spec(other="theirs")))
        obj["spec"]["mine"] = "ours"
        return obj

    final = await storage.guaranteed_update(key_of("a"), update)
    assert len(calls) == 2, "try_update must be re-run after the conflicting write"
    assert rv(calls[0]) == rv(created)
    assert "other" not in calls[0]["spec"]
    assert calls[1]["spec"]["other"] == "theirs"
    assert rv(calls[1]) == rv(interloper[0])
    assert final["spec"] == {"base": True, "other": "theirs", "mine": "ours"}
    assert rv(final) > rv(interloper[0])
    got = await storage.get(key_of("a"))
    assert got["spec"] == final["spec"] and rv(got) == rv(final)


async def test_guaranteed_update_unchanged_object_writes_nothing(storage: EtcdStorage) -> None:
    created = await storage.create(key_of("a"), thing("a", spec={"n": 1}))
    rev_before = await storage.current_revision()

    async def identity(obj: Obj) -> Obj:
        return obj

    result = await storage.guaranteed_update(key_of("a"), identity)
    assert rv(result) == rv(created)
    assert await storage.current_revision() == rev_before
    assert rv(await storage.get(key_of("a"))) == rv(created)


async def test_guaranteed_update_preconditions(storage: EtcdStorage) -> None:
    created = await storage.create(key_of("a"), thing("a", spec={"n": 1}, uid="uid-1"))
    called = False

    async def update(obj: Obj) -> Obj:
        nonlocal called
        called = True
        obj["spec"]["n"] = 99
        return obj

    rev_before = await storage.current_revision()
    with pytest.raises(errors.Conflict):
        await storage.guaranteed_update(key_of("a"), update, preconditions=Preconditions(uid="uid-2"))
    with pytest.raises(errors.Conflict):
        await storage.guaranteed_update(key_of("a"), update,
                                        preconditions=Preconditions(resource_version=str(rv(created) - 1)))
    assert not called
    assert await storage.current_revision() == rev_before
    got = await storage.get(key_of("a"))
    assert got["spec"] == {"n": 1} and rv(got) == rv(created)

    ok = await storage.guaranteed_update(
        key_of("a"), update, preconditions=Preconditions(uid="uid-1", resource_version=str(rv(created))))
    assert called and ok["spec"] == {"n": 99}
    # the old resourceVersion no longer holds
    with pytest.raises(errors.Conflict):
        await storage.guaranteed_update(key_of("a"), set_spec(n=5),
                                        preconditions=Preconditions(resource_version=str(rv(created))))
    assert (await storage.get(key_of("a")))["spec"] == {"n": 99}


async def test_guaranteed_update_missing_key(storage: EtcdStorage) -> None:
    seen: list[Obj] = []

    async def make(obj: Obj) -> Obj:
        seen.append(copy.deepcopy(obj))
        return thing("new", spec={"made": True})

    with pytest.raises(errors.KeyNotFound):
        await storage.guaranteed_update(key_of("new"), make)
    assert seen == []
    assert not await exists(storage, key_of("new"))

    created = await storage.guaranteed_update(key_of("new"), make, ignore_not_found=True)
    assert seen == [{}]
    assert created["spec"] == {"made": True}
    got = await storage.get(key_of("new"))
    assert got["spec"] == {"made": True} and rv(got) == rv(created)
    _, mod_rev = await raw_stored(storage, key_of("new"))
    assert mod_rev == rv(created)


# --------------------------------------------------------------------------------------------------
# 3. delete


async def test_delete_returns_last_state_at_deletion_revision(storage: EtcdStorage) -> None:
    await storage.create(key_of("a"), thing("a", spec={"n": 1}))
    updated = await storage.guaranteed_update(key_of("a"), set_spec(n=2))
    deleted = (await storage.delete(key_of("a"))).object
    assert deleted["spec"] == {"n": 2}
    assert rv(deleted) > rv(updated)
    assert rv(deleted) == await storage.current_revision()
    assert not await exists(storage, key_of("a"))
    with pytest.raises(errors.KeyNotFound):
        await storage.delete(key_of("a"))


async def test_delete_missing_raises_key_not_found(storage: EtcdStorage) -> None:
    with pytest.raises(errors.KeyNotFound):
        await storage.delete(key_of("nope"))


async def test_delete_preconditions(storage: EtcdStorage) -> None:
    created = await storage.create(key_of("a"), thing("a", uid="uid-1"))
    rev_before = await storage.current_revision()
    with pytest.raises(errors.Conflict):
        await storage.delete(key_of("a"), preconditions=Preconditions(uid="uid-other"))
    with pytest.raises(errors.Conflict):
        await storage.delete(key_of("a"), preconditions=Preconditions(resource_version=str(rv(created) + 1000)))
    assert await storage.current_revision() == rev_before
    assert rv(await storage.get(key_of("a"))) == rv(created)

    deleted = (await storage.delete(key_of("a"), preconditions=Preconditions(uid="uid-1",
                                                                             resource_version=str(rv(created))))).object
    assert deleted["metadata"]["uid"] == "uid-1"
    assert not await exists(storage, key_of("a"))


async def test_delete_validation_can_stop_it(storage: EtcdStorage) -> None:
    created = await storage.create(key_of("a"), thing("a", spec={"protected": True}))
    validated: list[Obj] = []

    async def unprotected(obj: Obj) -> bool:
        validated.append(copy.deepcopy(obj))
        return not obj["spec"].get("protected")

    kept = await storage.delete(key_of("a"), validate_deletion=unprotected)
    assert not kept.deleted and rv(kept.object) == rv(created)
    assert len(validated) == 1 and rv(validated[0]) == rv(created)
    assert rv(await storage.get(key_of("a"))) == rv(created)

    await storage.guaranteed_update(key_of("a"), set_spec(protected=False))
    deleted = await storage.delete(key_of("a"), validate_deletion=unprotected)
    assert deleted.deleted and deleted.object["spec"] == {"protected": False}
    assert len(validated) == 2
    assert not await exists(storage, key_of("a"))


# --------------------------------------------------------------------------------------------------
# 4. paginated lists (the API-machinery case)


async def test_paginated_list_is_a_consistent_snapshot(storage: EtcdStorage) -> None:
    total, limit = 400, 17
    objs = [thing(f"obj-{i:03d}", "ns1" if i % 2 == 0 else "ns2", spec={"gen": 0, "i": i}) for i in range(total)]
    created = await create_many(storage, objs)
    originals = {(o["metadata"]["namespace"], name_of(o)): o for o in created}
    expected_keys = sorted(key_of(name, ns) for ns, name in originals)

    first = await storage.get_list(PREFIX, ListOptions(limit=limit))
    snapshot_rv = first.resource_version
    assert int(snapshot_rv) == await storage.current_revision()

    pages = [first]
    modified: set[tuple[str, str]] = set()
    deleted: set[tuple[str, str]] = set()
    seen_names: set[tuple[str, str]] = set()
    step = 0
    while True:
        page = pages[-1]
        for o in page.items:
            seen_names.add((o["metadata"]["namespace"], name_of(o)))
        if not page.continue_token:
            break
        step += 1
        # Between pages: add objects that sort into the not-yet-listed range (and before it), and
        # change objects that have not been listed yet.
        late = f"obj-{(step * 23) % total:03d}-late"
        await storage.create(key_of(late, "ns1"), thing(late, spec={"gen": 1}))
        await storage.create(key_of(f"aaa-{step}", "ns0"), thing(f"aaa-{step}", "ns0"))
        await storage.create(key_of(f"zzz-{step}", "ns9"), thing(f"zzz-{step}", "ns9"))
        unseen = sorted(k for k in originals if k not in seen_names and k not in modified | deleted)
        for ns, name in unseen[-3:]:
            await storage.guaranteed_update(key_of(name, ns), set_spec(gen=1))
            modified.add((ns, name))
        if len(unseen) > 3:
            ns, name = unseen[0]  # the very next object the following page would return
            await storage.delete(key_of(name, ns))
            deleted.add((ns, name))
        pages.append(await storage.get_list(PREFIX, ListOptions(limit=limit, continue_token=page.continue_token)))

    assert len(pages) == -(-total // limit)
    assert modified and deleted, "the test must have changed objects between pages"
    items: list[Obj] = []
    for i, page in enumerate(pages):
        assert page.resource_version == snapshot_rv
        items.extend(page.items)
        if i < len(pages) - 1:
            assert len(page.items) == limit
            assert page.continue_token
            assert page.remaining_item_count == total - len(items)
        else:
            assert page.continue_token == ""
            assert page.remaining_item_count is None
            assert 0 < len(page.items) <= limit

    keys = [key_of(name_of(o), o["metadata"]["namespace"]) for o in items]
    assert keys == expected_keys  # exactly the originals, in key order, no duplicates
    assert len(set(keys)) == total
    for o in items:
        orig = originals[(o["metadata"]["namespace"], name_of(o))]
        assert o["spec"]["gen"] == 0, "objects changed between pages must show their listed-revision state"
        assert o == orig
        assert rv(o) <= int(snapshot_rv)

    # the changes did happen: a fresh list sees them
    fresh = await storage.get_list(PREFIX, ListOptions())
    assert int(fresh.resource_version) > int(snapshot_rv)
    assert fresh.continue_token == "" and fresh.remaining_item_count is None
    fresh_by_key = {key_of(name_of(o), o["metadata"]["namespace"]): o for o in fresh.items}
    assert len(fresh.items) == total + 3 * step - len(deleted)
    assert all(key_of(n, ns) not in fresh_by_key for ns, n in deleted)
    assert all(fresh_by_key[key_of(n, ns)]["spec"]["gen"] == 1 for ns, n in modified)


async def test_list_without_limit_and_with_limit_larger_than_set(storage: EtcdStorage) -> None:
    await create_many(storage, [thing(f"o{i}") for i in range(5)])
    await storage.create("/g/thingsX/ns1/o9", thing("o9"))  # a sibling prefix must not leak in
    everything = await storage.get_list(PREFIX, ListOptions())
    assert [name_of(o) for o in everything.items] == [f"o{i}" for i in range(5)]
    assert everything.continue_token == "" and everything.remaining_item_count is None
    big = await storage.get_list("/g/things", ListOptions(limit=50))
    assert [name_of(o) for o in big.items] == [f"o{i}" for i in range(5)]
    assert big.continue_token == "" and big.remaining_item_count is None
    exact = await storage.get_list(PREFIX, ListOptions(limit=5))
    assert len(exact.items) == 5 and exact.continue_token == "" and exact.remaining_item_count is None


# --------------------------------------------------------------------------------------------------
# 5. resource versions, compaction and continue tokens


async def test_list_resource_version_semantics_and_compaction(storage: EtcdStorage) -> None:
    await create_many(storage, [thing(f"o{i}", spec={"v": 0}) for i in range(6)])
    page1 = await storage.get_list(PREFIX, ListOptions(limit=2))
    list_rv = int(page1.resource_version)
    assert page1.continue_token

    # Exact at an old, not yet compacted revision returns the old state.
    await storage.guaranteed_update(key_of("o0"), set_spec(v=1))
    await storage.create(key_of("o9"), thing("o9"))
    old = await storage.get_list(PREFIX, ListOptions(resource_version=str(list_rv), resource_version_match="Exact"))
    assert old.resource_version == str(list_rv)
    assert [name_of(o) for o in old.items] == [f"o{i}" for i in range(6)]
    assert old.items[0]["spec"] == {"v": 0}

    # NotOlderThan: an old revision gives a current read; a future one is refused.
    current = await storage.current_revision()
    not_older = await storage.get_list(PREFIX, ListOptions(resource_version=str(list_rv),
                                                           resource_version_match="NotOlderThan"))
    assert int(not_older.resource_version) == current
    assert not_older.items[0]["spec"] == {"v": 1} and len(not_older.items) == 7
    unset_match = await storage.get_list(PREFIX, ListOptions(resource_version=str(list_rv)))
    assert int(unset_match.resource_version) >= current
    with pytest.raises(errors.TooLargeResourceVersion):
        await storage.get_list(PREFIX, ListOptions(resource_version=str(current + 1000),
                                                   resource_version_match="NotOlderThan"))
    with pytest.raises(errors.TooLargeResourceVersion):
        await storage.get_list(PREFIX, ListOptions(resource_version=str(current + 1000)))
    with pytest.raises(errors.TooLargeResourceVersion):
        await storage.get_list(PREFIX, ListOptions(resource_version=str(current + 1000),
                                                   resource_version_match="Exact"))

    # The continue token still works before compaction ...
    page2 = await storage.get_list(PREFIX, ListOptions(limit=2, continue_token=page1.continue_token))
    assert page2.resource_version == str(list_rv)
    assert [name_of(o) for o in page2.items] == ["o2", "o3"]

    # ... and expires once history is compacted past the list's revision.
    compacted_at = await storage.current_revision()
    await storage.compact(compacted_at)
    with pytest.raises(errors.Expired):
        await storage.get_list(PREFIX, ListOptions(limit=2, continue_token=page2.continue_token))
    with pytest.raises(errors.Expired):
        await storage.get_list(PREFIX, ListOptions(resource_version=str(list_rv), resource_version_match="Exact"))

    # Exact at the compaction revision is still readable, and reads the state at that revision.
    await storage.guaranteed_update(key_of("o1"), set_spec(v=2))
    at_compaction = await storage.get_list(PREFIX, ListOptions(resource_version=str(compacted_at),
                                                               resource_version_match="Exact"))
    assert at_compaction.resource_version == str(compacted_at)
    assert at_compaction.items[1]["spec"] == {"v": 0}
    assert (await storage.get(key_of("o1")))["spec"] == {"v": 2}


@pytest.mark.parametrize("token", [
    "not a token",
    "%%%",
    forge_token({"v": "meta.k8s.io/v1", "rv": 0, "start": "ns1/o1"}),
    forge_token({"v": "meta.k8s.io/v1", "rv": -5, "start": "ns1/o1"}),
    forge_token({"v": "other/v9", "rv": 5, "start": "ns1/o1"}),
    forge_token({"v": "meta.k8s.io/v1", "rv": "5", "start": "ns1/o1"}),
    forge_token({"v": "meta.k8s.io/v1", "rv": 5, "start": "/etc/passwd"}),
    forge_token({"v": "meta.k8s.io/v1", "rv": 5, "start": "../../other/x"}),
    forge_token({"v": "meta.k8s.io/v1", "rv": 5}),
    forge_token(["meta.k8s.io/v1", 5, "x"]),
])
async def test_invalid_continue_token(storage: EtcdStorage, token: str) -> None:
    await storage.create(key_of("o1"), thing("o1"))
    with pytest.raises(errors.InvalidContinue):
        await storage.get_list(PREFIX, ListOptions(limit=1, continue_token=token))


async def test_forged_valid_continue_token_round_trips(storage: EtcdStorage) -> None:
    await create_many(storage, [thing(f"o{i}") for i in range(4)])
    page1 = await storage.get_list(PREFIX, ListOptions(limit=2))
    token = forge_token({"v": "meta.k8s.io/v1", "rv": int(page1.resource_version), "start": "ns1/o2"})
    page2 = await storage.get_list(PREFIX, ListOptions(limit=2, continue_token=token))
    assert [name_of(o) for o in page2.items] == ["o2", "o3"]
    assert page2.resource_version == page1.resource_version


# --------------------------------------------------------------------------------------------------
# 6. selectors


SELECTOR_CASES: list[tuple[str, Callable[[dict[str, str]], bool]]] = [
    ("tier=gold", lambda lb: lb.get("tier") == "gold"),
    ("tier==gold", lambda lb: lb.get("tier") == "gold"),
    ("tier!=gold", lambda lb: lb.get("tier") != "gold"),
    ("tier in (gold,silver)", lambda lb: lb.get("tier") in ("gold", "silver")),
    ("tier notin (gold,silver)", lambda lb: lb.get("tier") not in ("gold", "silver")),
    ("env", lambda lb: "env" in lb),
    ("!env", lambda lb: "env" not in lb),
    ("tier=gold,env", lambda lb: lb.get("tier") == "gold" and "env" in lb),
    ("tier in (bronze),!env", lambda lb: lb.get("tier") == "bronze" and "env" not in lb),
    ("env=prod,tier!=silver", lambda lb: lb.get("env") == "prod" and lb.get("tier") != "silver"),
]


def labelled_things(n: int) -> list[Obj]:
    out = []
    for i in range(n):
        labels = {}
        if i % 7 != 6:  # some objects carry no tier at all
            labels["tier"] = ("gold", "silver", "bronze")[i % 3]
        if i % 2 == 0:
            labels["env"] = "prod" if i % 4 == 0 else "dev"
        out.append(thing(f"o{i:02d}", labels=labels))
    return out


async def test_label_and_field_selectors(storage: EtcdStorage) -> None:
    objs = await create_many(storage, labelled_things(30))
    all_names = sorted(name_of(o) for o in objs)
    labels_by_name = {name_of(o): o["metadata"]["labels"] for o in objs}
    for text, want in SELECTOR_CASES:
        result = await storage.get_list(PREFIX, ListOptions(predicate=label_pred(text)))
        expected = [n for n in all_names if want(labels_by_name[n])]
        assert expected and len(expected) < len(all_names), f"weak case {text!r}"
        assert [name_of(o) for o in result.items] == expected, text

    one = await storage.get_list(PREFIX, ListOptions(predicate=field_pred("metadata.name=o05")))
    assert [name_of(o) for o in one.items] == ["o05"]
    none = await storage.get_list(PREFIX, ListOptions(predicate=field_pred("metadata.name=nope")))
    assert none.items == []
    others = await storage.get_list(PREFIX, ListOptions(predicate=field_pred("metadata.name!=o05")))
    assert [name_of(o) for o in others.items] == [n for n in all_names if n != "o05"]
    ns = await storage.get_list(PREFIX, ListOptions(predicate=field_pred("metadata.namespace=ns1,metadata.name=o07")))
    assert [name_of(o) for o in ns.items] == ["o07"]
    wrong_ns = await storage.get_list(PREFIX, ListOptions(predicate=field_pred("metadata.namespace=ns2")))
    assert wrong_ns.items == []
    both = await storage.get_list(PREFIX, ListOptions(predicate=SelectionPredicate(
        label=parse_label_selector("tier=gold"), field=parse_field_selector("metadata.name!=o00"))))
    assert [name_of(o) for o in both.items] == [n for n in all_names
                                                if labels_by_name[n].get("tier") == "gold" and n != "o00"]


async def test_paginated_list_with_selector(storage: EtcdStorage) -> None:
    objs = await create_many(storage, labelled_things(60))
    gold = sorted(name_of(o) for o in objs if o["metadata"]["labels"].get("tier") == "gold")
    assert len(gold) > 10
    pred = label_pred("tier=gold")
    limit = 4

    pages = [await storage.get_list(PREFIX, ListOptions(limit=limit, predicate=pred))]
    snapshot_rv = pages[0].resource_version
    step = 0
    while pages[-1].continue_token:
        step += 1
        # new matching objects created between pages are not part of the snapshot
        await storage.create(key_of(f"o{step * 5:02d}-late"), thing(f"o{step * 5:02d}-late", labels={"tier": "gold"}))
        pages.append(await storage.get_list(PREFIX, ListOptions(limit=limit, predicate=pred,
                                                                continue_token=pages[-1].continue_token)))
        assert len(pages) < 100
    assert len(pages) >= len(gold) // limit
    names: list[str] = []
    for i, page in enumerate(pages):
        assert page.resource_version == snapshot_rv
        assert page.remaining_item_count is None
        assert len(page.items) <= limit
        if i < len(pages) - 1:
            assert len(page.items) == limit
        assert all(o["metadata"]["labels"].get("tier") == "gold" for o in page.items)
        names.extend(name_of(o) for o in page.items)
    assert names == gold

    # a selector that matches nothing, with a limit, is one empty page
    empty = await storage.get_list(PREFIX, ListOptions(limit=3, predicate=label_pred("tier=platinum")))
    assert empty.items == [] and empty.continue_token == "" and empty.remaining_item_count is None


# --------------------------------------------------------------------------------------------------
# 7. watch


async def test_watch_delivers_events_in_revision_order(storage: EtcdStorage) -> None:
    start = await storage.current_revision()
    w = await storage.watch(PREFIX, WatchOptions(resource_version=str(start)))
    try:
        a = await storage.create(key_of("a"), thing("a", spec={"n": 0}))
        b = await storage.create(key_of("b"), thing("b"))
        a2 = await storage.guaranteed_update(key_of("a"), set_spec(n=1))
        bd = (await storage.delete(key_of("b"))).object
        events = await collect(w, 4)
        assert [sig(e) for e in events] == [
            ("ADDED", "a", rv(a)), ("ADDED", "b", rv(b)), ("MODIFIED", "a", rv(a2)), ("DELETED", "b", rv(bd))]
        revs = [rv(e.object) for e in events]
        assert revs == [e.revision for e in events]
        assert all(x < y for x, y in itertools.pairwise(revs))
        assert events[2].object["spec"] == {"n": 1}
        assert events[3].object["metadata"]["name"] == "b"
        await expect_quiet(w, 0.3)
    finally:
        await w.close()

    # A watch from a revision in the past replays history after it.
    replay = await storage.watch(PREFIX, WatchOptions(resource_version=str(rv(a))))
    try:
        events = await collect(replay, 3)
        assert [sig(e) for e in events] == [("ADDED", "b", rv(b)), ("MODIFIED", "a", rv(a2)),
                                            ("DELETED", "b", rv(bd))]
    finally:
        await replay.close()


async def writer(storage: EtcdStorage, n_objects: int, pause_at: int | None = None,
                 paused: asyncio.Event | None = None, resume: asyncio.Event | None = None) -> int:
    """Create, modify and delete objects; return the revision of the last write. With `pause_at`, set
    `paused` after that many objects and wait for `resume` before going on."""
    last = 0
    for i in range(n_objects):
        if i == pause_at and paused is not None and resume is not None:
            paused.set()
            await resume.wait()
        last = rv(await storage.create(key_of(f"w{i:02d}"), thing(f"w{i:02d}", spec={"n": 0})))
        if i >= 1:
            last = rv(await storage.guaranteed_update(key_of(f"w{i - 1:02d}"), set_spec(n=1)))
        if i >= 2 and i % 2 == 0:
            last = rv((await storage.delete(key_of(f"w{i - 2:02d}"))).object)
    return last


async def test_watch_resume_from_last_event_misses_nothing(storage: EtcdStorage) -> None:
    """Read part of a stream, stop, let writes land while nobody watches, resume from the last event read
    while writes go on: the two parts are exactly the whole stream. Phases are ordered by events."""
    r0 = await storage.current_revision()
    reference = await storage.watch(PREFIX, WatchOptions(resource_version=str(r0)))
    first = await storage.watch(PREFIX, WatchOptions(resource_version=str(r0)))
    second: EtcdWatcher | None = None
    paused, go_on = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(writer(storage, 24, pause_at=16, paused=paused, resume=go_on))
    try:
        part1 = await collect(first, 15)
        await first.close()
        resume_rv = part1[-1].revision
        await asyncio.wait_for(paused.wait(), 10)  # 16 objects' writes are in: many after part1, unwatched
        gap_end = await storage.current_revision()
        assert gap_end > resume_rv
        second = await storage.watch(PREFIX, WatchOptions(resource_version=str(resume_rv)))
        go_on.set()  # and more writes while the resumed watch runs
        last_rev = await asyncio.wait_for(task, 10)
        part2 = await collect_until_rev(second, last_rev)
        whole = await collect_until_rev(reference, last_rev)

        assert len(whole) > 30
        types = {e.type for e in whole}
        assert types == {"ADDED", "MODIFIED", "DELETED"}
        assert [sig(e) for e in part1 + part2] == [sig(e) for e in whole]
        assert part2[0].revision > resume_rv and part2[-1].revision > gap_end
        revs = [e.revision for e in whole]
        assert revs == sorted(set(revs))
        assert revs[0] > r0 and revs[-1] == last_rev
        await expect_quiet(second, 0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await reference.close()
        await first.close()
        if second is not None:
            await second.close()


async def test_concurrent_watchers_see_the_same_sequence(storage: EtcdStorage) -> None:
    r0 = await storage.current_revision()
    w1 = await storage.watch(PREFIX, WatchOptions(resource_version=str(r0)))
    w2 = await storage.watch(PREFIX, WatchOptions(resource_version=str(r0)))
    task = asyncio.create_task(writer(storage, 12))
    try:
        last_rev = await asyncio.wait_for(task, 10)
        e1, e2 = await asyncio.gather(collect_until_rev(w1, last_rev), collect_until_rev(w2, last_rev))
        assert len(e1) > 15
        assert [sig(e) for e in e1] == [sig(e) for e in e2]
        assert [e.object for e in e1] == [e.object for e in e2]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await w1.close()
        await w2.close()


async def test_watch_with_label_selector(storage: EtcdStorage) -> None:
    a = await storage.create(key_of("a"), thing("a", labels={"tier": "gold"}))
    await storage.create(key_of("b"), thing("b", labels={"tier": "silver"}))
    w = await storage.watch(PREFIX, WatchOptions(resource_version=str(rv(a)), predicate=label_pred("tier=gold")))
    try:
        a_leaves = await storage.guaranteed_update(key_of("a"), set_labels({"tier": "silver"}))
        await storage.guaranteed_update(key_of("a"), set_spec(touched=True))  # still not matching: no event
        b_enters = await storage.guaranteed_update(key_of("b"), set_labels({"tier": "gold"}))
        b_mod = await storage.guaranteed_update(key_of("b"), set_spec(n=1))
        await storage.create(key_of("c"), thing("c", labels={"tier": "bronze"}))  # never matches
        await storage.delete(key_of("c"))
        d_add = await storage.create(key_of("d"), thing("d", labels={"tier": "gold"}))
        b_del = (await storage.delete(key_of("b"))).object
        events = await collect_until_rev(w, rv(b_del))
        assert [sig(e) for e in events] == [
            ("DELETED", "a", rv(a_leaves)),
            ("ADDED", "b", rv(b_enters)),
            ("MODIFIED", "b", rv(b_mod)),
            ("ADDED", "d", rv(d_add)),
            ("DELETED", "b", rv(b_del)),
        ]
        # the object that left the selector is reported with its last matching state, at the new RV
        assert events[0].object["metadata"]["labels"] == {"tier": "gold"}
        assert rv(events[0].object) == rv(a_leaves)
        assert events[1].object["metadata"]["labels"] == {"tier": "gold"}
        assert rv(events[4].object) == rv(b_del)
        assert all(rv(e.object) == e.revision for e in events)
        await expect_quiet(w, 0.3)
    finally:
        await w.close()


async def test_watch_from_zero_sends_current_state_first(storage: EtcdStorage) -> None:
    existing = await create_many(storage, [thing(f"o{i}", labels={"keep": "yes" if i != 1 else "no"})
                                           for i in range(3)])
    state = {name_of(o): rv(o) for o in existing}
    for version in ("0", ""):
        w = await storage.watch(PREFIX, WatchOptions(resource_version=version))
        try:
            initial = await collect(w, len(state))
            assert [(e.type, name_of(e.object), rv(e.object)) for e in initial] == [
                ("ADDED", name, r) for name, r in sorted(state.items())]
            await expect_quiet(w, 0.2)
            name = f"zlate{version}"
            new = await storage.create(key_of(name), thing(name))
            mod = await storage.guaranteed_update(key_of("o0"), set_spec(n=len(version) + 1))
            live = await collect(w, 2)
            assert [sig(e) for e in live] == [("ADDED", name, rv(new)), ("MODIFIED", "o0", rv(mod))]
            state[name], state["o0"] = rv(new), rv(mod)
        finally:
            await w.close()

    # with a selector, the initial state is filtered too
    w = await storage.watch(PREFIX, WatchOptions(resource_version="0", predicate=label_pred("keep=yes")))
    try:
        initial = await collect(w, 2)
        assert [(e.type, name_of(e.object)) for e in initial] == [("ADDED", "o0"), ("ADDED", "o2")]
        gone = (await storage.delete(key_of("o2"))).object
        await storage.delete(key_of("o1"))
        back = await storage.create(key_of("o1"), thing("o1", labels={"keep": "yes"}))
        assert [sig(e) for e in await collect(w, 2)] == [("DELETED", "o2", rv(gone)), ("ADDED", "o1", rv(back))]
    finally:
        await w.close()


async def test_watch_from_compacted_revision_expires(storage: EtcdStorage) -> None:
    created = await storage.create(key_of("a"), thing("a", spec={"n": 0}))
    for n in range(1, 4):
        await storage.guaranteed_update(key_of("a"), set_spec(n=n))
    await storage.compact(await storage.current_revision())

    async def open_and_read() -> None:
        w = await storage.watch(PREFIX, WatchOptions(resource_version=str(rv(created))))
        try:
            ev = await w.__anext__()
            raise AssertionError(f"expected Expired, got {ev.type} {ev.object}")
        finally:
            await w.close()

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(errors.Expired):
        await asyncio.wait_for(open_and_read(), 5)
    assert loop.time() - started < 5

    # watching from the current revision still works
    w = await storage.watch(PREFIX, WatchOptions(resource_version=str(await storage.current_revision())))
    try:
        upd = await storage.guaranteed_update(key_of("a"), set_spec(n=9))
        assert [sig(e) for e in await collect(w, 1)] == [("MODIFIED", "a", rv(upd))]
    finally:
        await w.close()


async def test_watch_bookmarks(storage: EtcdStorage) -> None:
    start = await storage.current_revision()
    w = await storage.watch(PREFIX, WatchOptions(resource_version=str(start), allow_bookmarks=True,
                                                 bookmark_interval=0.5))
    try:
        created = await storage.create(key_of("a"), thing("a"))
        ev = await next_event(w)
        assert sig(ev) == ("ADDED", "a", rv(created))
        loop = asyncio.get_running_loop()
        started = loop.time()
        bookmark = await next_event(w, 3.0)
        assert bookmark.type == "BOOKMARK"
        assert loop.time() - started < 3.0
        assert set(bookmark.object) == {"metadata"}
        assert int(bookmark.object["metadata"]["resourceVersion"]) >= rv(created)
        assert bookmark.revision == int(bookmark.object["metadata"]["resourceVersion"])
        # events keep flowing after a bookmark
        upd = await storage.guaranteed_update(key_of("a"), set_spec(n=1))
        nxt = await collect(w, 1)
        assert sig(nxt[0]) == ("MODIFIED", "a", rv(upd))
    finally:
        await w.close()

    # without allow_bookmarks, no bookmark is ever delivered
    w = await storage.watch(PREFIX, WatchOptions(resource_version=str(rv(upd)), bookmark_interval=0.1))
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(w.__anext__(), 0.6)
    finally:
        await w.close()


# --------------------------------------------------------------------------------------------------
# 8. count, current revision, compactor


async def test_count_and_current_revision(storage: EtcdStorage) -> None:
    await storage.check_health()
    assert await storage.count(PREFIX) == 0
    r0 = await storage.current_revision()
    created = await create_many(storage, [thing(f"o{i}", "ns1" if i < 3 else "ns2") for i in range(5)])
    await storage.create("/g/thingsX/ns1/x", thing("x"))
    await storage.create("/g/other/ns1/y", thing("y"))
    assert await storage.count(PREFIX) == 5
    assert await storage.count("/g/things") == 5  # no trailing slash: still only this prefix
    assert await storage.count("/g/things/ns1") == 3
    assert await storage.count("/g/things/ns2/") == 2
    assert await storage.count("/g/thingsX") == 1
    assert await storage.count("/g/nothing") == 0

    r1 = await storage.current_revision()
    assert r1 == r0 + 7
    assert r1 == max(rv(o) for o in created) + 2
    upd = await storage.guaranteed_update(key_of("o0"), set_spec(n=1))
    assert await storage.current_revision() == rv(upd) == r1 + 1
    deleted = (await storage.delete(key_of("o1"))).object
    assert await storage.current_revision() == rv(deleted) == r1 + 2
    assert await storage.count(PREFIX) == 4


async def test_compactor_compacts_to_previous_rounds_revision(storage: EtcdStorage) -> None:
    compactor = storage.compactor
    created = await storage.create(key_of("a"), thing("a", spec={"n": 0}))

    assert await compactor.compact_once() is None  # the first round only records a revision
    recorded = compactor.revision
    assert recorded > rv(created)
    updated = await storage.guaranteed_update(key_of("a"), set_spec(n=1))
    assert rv(updated) > recorded

    compacted = await compactor.compact_once()
    assert compacted == recorded
    assert compactor.revision > recorded

    with pytest.raises(errors.Expired):
        await storage.get_list(PREFIX, ListOptions(resource_version=str(rv(created)), resource_version_match="Exact"))
    with pytest.raises(errors.Expired):
        await storage.get_list(PREFIX, ListOptions(resource_version=str(recorded - 1), resource_version_match="Exact"))
    # the compaction revision itself is still readable, and holds the state before the update
    at = await storage.get_list(PREFIX, ListOptions(resource_version=str(recorded), resource_version_match="Exact"))
    assert [o["spec"] for o in at.items] == [{"n": 0}]
    # the current state is untouched
    assert (await storage.get(key_of("a")))["spec"] == {"n": 1}


# --------------------------------------------------------------------------------------------------
# 2b. guaranteed_update from a cached copy (a watch cache's): no read when the copy is current, and the
#     same result as from a read when it is stale


def count_calls(storage: EtcdStorage) -> list[str]:
    """Record the etcd methods the storage calls from now on (instrumentation of the real client)."""
    methods: list[str] = []
    call = storage.client.call

    async def counting(method: str, payload: dict[str, Any], **kw: Any) -> Any:
        methods.append(method)
        return await call(method, payload, **kw)

    storage.client.call = counting  # type: ignore[method-assign]
    return methods


async def test_update_from_a_current_copy_is_one_transaction(storage: EtcdStorage) -> None:
    created = await storage.create(key_of("a"), thing("a", spec={"n": 1}))
    methods = count_calls(storage)
    updated = await storage.guaranteed_update(key_of("a"), set_spec(n=2), cached_existing=copy.deepcopy(created))
    assert methods == ["/kv/txn"]
    assert updated["spec"] == {"n": 2} and rv(updated) > rv(created)
    got = await storage.get(key_of("a"))
    assert got["spec"] == {"n": 2} and rv(got) == rv(updated)


async def test_update_from_a_stale_copy_starts_again_from_the_stored_state(storage: EtcdStorage) -> None:
    stale = await storage.create(key_of("a"), thing("a", spec={"base": True}))
    theirs = await storage.guaranteed_update(key_of("a"), set_spec(other="theirs"))
    seen: list[Obj] = []

    async def update(obj: Obj) -> Obj:
        seen.append(copy.deepcopy(obj))
        obj["spec"]["mine"] = "ours"
        return obj

    final = await storage.guaranteed_update(key_of("a"), update, cached_existing=copy.deepcopy(stale))
    assert [rv(o) for o in seen] == [rv(stale), rv(theirs)]  # the transaction's failure branch gave the state
    assert final["spec"] == {"base": True, "other": "theirs", "mine": "ours"}
    assert (await storage.get(key_of("a")))["spec"] == final["spec"]


async def test_a_stale_copy_never_decides_an_error(storage: EtcdStorage) -> None:
    stale = await storage.create(key_of("a"), thing("a", spec={"n": 1}, uid="uid-1"))
    current = await storage.guaranteed_update(key_of("a"), set_spec(n=2))

    async def put_with_resource_version(obj: Obj) -> Obj:  # what a PUT carrying the current resourceVersion does
        if rv(obj) != rv(current):
            raise errors.Conflict(key_of("a"), "the object has been modified")
        obj["spec"]["n"] = 3
        return obj

    done = await storage.guaranteed_update(key_of("a"), put_with_resource_version, cached_existing=copy.deepcopy(stale))
    assert done["spec"] == {"n": 3}
    # a copy of an object since deleted and created again (another UID): the precondition is checked on the
    # stored object
    await storage.delete(key_of("a"))
    await storage.create(key_of("a"), thing("a", spec={"n": 1}, uid="uid-2"))
    again = await storage.guaranteed_update(key_of("a"), set_spec(n=4), preconditions=Preconditions(uid="uid-2"),
                                            cached_existing=copy.deepcopy(done))
    assert again["spec"] == {"n": 4} and again["metadata"]["uid"] == "uid-2"
    # a copy of an object since deleted
    await storage.delete(key_of("a"))
    with pytest.raises(errors.KeyNotFound):
        await storage.guaranteed_update(key_of("a"), set_spec(n=5), cached_existing=copy.deepcopy(again))


async def test_no_change_from_a_stale_copy_answers_the_stored_state(storage: EtcdStorage) -> None:
    stale = await storage.create(key_of("a"), thing("a", spec={"n": 1}))
    current = await storage.guaranteed_update(key_of("a"), set_spec(n=2))
    rev_before = await storage.current_revision()

    async def set_n_1(obj: Obj) -> Obj:
        obj["spec"]["n"] = 1
        return obj

    # unchanged as seen from the copy, a change of the stored object: it is written
    result = await storage.guaranteed_update(key_of("a"), set_n_1, cached_existing=copy.deepcopy(stale))
    assert result["spec"] == {"n": 1} and rv(result) > rv(current)
    assert await storage.current_revision() == rev_before + 1

    async def identity(obj: Obj) -> Obj:
        return obj

    same = await storage.guaranteed_update(key_of("a"), identity, cached_existing=copy.deepcopy(stale))
    assert rv(same) == rv(result)  # no write, and the stored state's resourceVersion, not the copy's
    assert await storage.current_revision() == rev_before + 1
