"""The Store suite, run for every registered resource against a real etcd."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from typing import Any

import orjson
import pytest
from samples import HELD_ON_DELETE, IMMUTABLE_SPEC, SPEC_CHANGES, STATUS_ON_CREATE, STATUSES, get_path, make, set_path

from kubellm.apis import errors
from kubellm.apis.codec import FieldValidation
from kubellm.apis.scheme import ResourceInfo
from kubellm.registry.registry import ALL_RESOURCES, build_stores
from kubellm.registry.storage.etcd import EtcdStorage
from kubellm.registry.storage.interface import Preconditions
from kubellm.registry.store import DeleteParams, ListParams, Result, Store, WriteOptions

KINDS = {info.kind: info for info in ALL_RESOURCES}
NS = "ns1"


def ns(info: ResourceInfo) -> str | None:
    return NS if info.namespaced else None


@pytest.fixture
def stores(storage: EtcdStorage) -> dict[str, Store]:
    return {s.info.kind: s for s in build_stores(storage).values()}


@pytest.fixture(params=sorted(KINDS))
def store(request: pytest.FixtureRequest, stores: dict[str, Store]) -> Store:
    return stores[request.param]


async def raises(coro: Any, code: int, reason: str) -> errors.StatusError:
    with pytest.raises(errors.StatusError) as info:
        await coro
    assert (info.value.code, info.value.reason) == (code, reason), info.value.message
    return info.value


async def names(store: Store, namespace: str | None = None, **params: Any) -> list[str]:
    listed = await store.list(namespace, ListParams(**params))
    return [i["metadata"]["name"] for i in listed["items"]]


async def release(store: Store, name: str) -> None:
    """What the namespace job does for a kind held by a finalizer of its own once it is emptied."""
    held = HELD_ON_DELETE.get(store.info.kind)
    if held is None:
        return
    info = store.info

    def without(obj: dict[str, Any]) -> dict[str, Any]:
        obj["metadata"]["finalizers"] = [f for f in obj["metadata"].get("finalizers") or [] if f != held]
        return obj

    with contextlib.suppress(errors.StatusError):
        await store.patch(ns(info), name, without)


async def delete(store: Store, name: str, params: DeleteParams = DeleteParams()) -> Result:
    """Delete as a client does, then (for a kind held by its own finalizer) as its lifecycle job does."""
    result = await store.delete(ns(store.info), name, params)
    if result.deleted or store.info.kind not in HELD_ON_DELETE:
        return result
    await release(store, name)
    return Result(result.object, deleted=True)


async def test_crud(store: Store) -> None:
    info = store.info
    created = (await store.create(make(info, "one"), namespace=ns(info))).object
    meta = created["metadata"]
    assert meta["name"] == "one" and meta["uid"] and meta["creationTimestamp"] and meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert created["apiVersion"] == info.api_version and created["kind"] == info.kind
    assert await store.get(ns(info), "one") == created
    assert await names(store) == ["one"]

    changed = copy.deepcopy(created)
    path, value = SPEC_CHANGES[info.kind]
    set_path(changed, path, value)
    updated = (await store.update(ns(info), "one", changed)).object
    assert get_path(updated, path) == value
    assert updated["metadata"]["generation"] == (1 if info.kind in IMMUTABLE_SPEC else 2)
    assert int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert updated["metadata"]["uid"] == meta["uid"]

    err = await raises(store.create(make(info, "one"), namespace=ns(info)), 409, "AlreadyExists")
    assert err.message == f'{info.group_resource} "one" already exists'

    deleted = await delete(store, "one")
    assert deleted.deleted and deleted.object["metadata"]["name"] == "one"
    err = await raises(store.get(ns(info), "one"), 404, "NotFound")
    assert err.message == f'{info.group_resource} "one" not found'
    assert err.status["details"] == {"name": "one", **({"group": info.group} if info.group else {}),
                                     "kind": info.plural}
    await raises(store.delete(ns(info), "one"), 404, "NotFound")


async def test_generate_name(store: Store) -> None:
    info = store.info
    body = make(info, "")
    body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "name"} | {"generateName": "gen-"}
    first = (await store.create(body, namespace=ns(info))).object["metadata"]["name"]
    second = (await store.create(copy.deepcopy(body), namespace=ns(info))).object["metadata"]["name"]
    assert first.startswith("gen-") and len(first) == len("gen-") + 5 and first != second
    assert sorted(await names(store)) == sorted([first, second])


async def test_stale_resource_version_conflicts(store: Store) -> None:
    info = store.info
    created = (await store.create(make(info, "c"), namespace=ns(info))).object
    path, value = SPEC_CHANGES[info.kind]
    first = copy.deepcopy(created)
    set_path(first, path, value)
    await store.update(ns(info), "c", first)
    stale = copy.deepcopy(created)
    stale.setdefault("metadata", {}).setdefault("labels", {})["x"] = "y"
    err = await raises(store.update(ns(info), "c", stale), 409, "Conflict")
    assert err.message == (f'Operation cannot be fulfilled on {info.group_resource} "c": the object has been '
                           "modified; please apply your changes to the latest version and try again")
    assert "x" not in ((await store.get(ns(info), "c"))["metadata"].get("labels") or {})

    no_rv = copy.deepcopy(created)
    del no_rv["metadata"]["resourceVersion"]
    if store.strategy.allow_unconditional_update:  # as kube's Events: the last writer wins
        await store.update(ns(info), "c", no_rv)
    else:
        err = await raises(store.update(ns(info), "c", no_rv), 422, "Invalid")
        assert "metadata.resourceVersion: Invalid value: 0: must be specified for an update" in err.message

    current = await store.get(ns(info), "c")
    await raises(store.delete(ns(info), "c", DeleteParams(Preconditions(resource_version="1"))), 409, "Conflict")
    await raises(store.delete(ns(info), "c", DeleteParams(Preconditions(uid="nope"))), 409, "Conflict")
    assert await store.get(ns(info), "c") == current
    ok = DeleteParams(Preconditions(uid=current["metadata"]["uid"],
                                    resource_version=current["metadata"]["resourceVersion"]))
    assert (await delete(store, "c", ok)).deleted


async def test_finalizers(store: Store) -> None:
    info = store.info
    created = (await store.create(make(info, "f", finalizers=["kubellm.io/cleanup"]), namespace=ns(info))).object
    marked = await store.delete(ns(info), "f")
    assert not marked.deleted
    assert marked.object["metadata"]["deletionTimestamp"]
    assert marked.object["metadata"]["deletionGracePeriodSeconds"] == 0
    if "generation" in created["metadata"]:  # as kube's markAsDeleting, so spec watchers see the deletion
        assert marked.object["metadata"]["generation"] == created["metadata"]["generation"] + 1
    current = await store.get(ns(info), "f")
    assert current["metadata"]["deletionTimestamp"] == marked.object["metadata"]["deletionTimestamp"]
    # deleting again changes nothing
    again = await store.delete(ns(info), "f")
    assert again.object["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
    # no new finalizers once deletion started
    more = copy.deepcopy(current)
    more["metadata"]["finalizers"].append("kubellm.io/other")
    err = await raises(store.update(ns(info), "f", more), 422, "Invalid")
    assert "metadata.finalizers: Forbidden: no new finalizers can be added" in err.message
    # removing the last finalizer deletes the object
    done = copy.deepcopy(current)
    done["metadata"]["finalizers"] = []
    result = await store.update(ns(info), "f", done)
    assert result.deleted
    await raises(store.get(ns(info), "f"), 404, "NotFound")
    assert created["metadata"]["uid"] == result.object["metadata"]["uid"]


@pytest.mark.parametrize("kind", sorted(k for k, i in KINDS.items() if i.has_status))
async def test_status_and_spec_are_separate(kind: str, stores: dict[str, Store]) -> None:
    store = stores[kind]
    info = store.info
    body = make(info, "s")
    body["status"] = STATUSES[info.kind]
    created = (await store.create(body, namespace=ns(info))).object
    assert created.get("status") == STATUS_ON_CREATE.get(kind), "create must clear status (or set its own)"

    # The main resource ignores status changes.
    with_status = copy.deepcopy(created) | {"status": STATUSES[info.kind]}
    updated = (await store.update(ns(info), "s", with_status)).object
    assert updated.get("status") == created.get("status") and updated["metadata"]["generation"] == 1

    # /status takes status and ignores spec and labels, without bumping generation.
    path, value = SPEC_CHANGES[info.kind]
    status_body = copy.deepcopy(updated) | {"status": STATUSES[info.kind]}
    set_path(status_body, path, value)
    status_body["metadata"]["labels"] = {"sneaky": "yes"}
    after = (await store.update(ns(info), "s", status_body, subresource="status")).object
    assert after["status"] == (await store.get(ns(info), "s"))["status"]
    for key, val in STATUSES[info.kind].items():
        assert after["status"][key] == val
    assert get_path(after, path) == get_path(created, path)
    assert not after["metadata"].get("labels")
    assert after["metadata"]["generation"] == 1

    # A spec change on the main resource keeps the status and bumps generation.
    spec_body = copy.deepcopy(after)
    set_path(spec_body, path, value)
    del spec_body["status"]
    final = (await store.update(ns(info), "s", spec_body)).object
    generation = 1 if kind in IMMUTABLE_SPEC else 2  # a labels-only change bumps nothing
    assert final["status"] == after["status"] and final["metadata"]["generation"] == generation


async def test_selectors(store: Store) -> None:
    info = store.info
    for name, labels in (("a", {"app": "x", "tier": "gpu"}), ("b", {"app": "y"}), ("c", {"app": "x"})):
        await store.create(make(info, name, labels=labels), namespace=ns(info))
    assert await names(store, label_selector="app=x") == ["a", "c"]
    assert await names(store, label_selector="app=x,tier") == ["a"]
    assert await names(store, label_selector="app in (y),!tier") == ["b"]
    assert await names(store, label_selector="app!=x") == ["b"]
    assert await names(store, field_selector="metadata.name=b") == ["b"]
    assert await names(store, field_selector="metadata.name!=b", label_selector="app") == ["a", "c"]
    err = await raises(store.list(None, ListParams(field_selector="spec.nope=1")), 400, "BadRequest")
    assert '"spec.nope" is not a known field selector' in err.message
    await raises(store.list(None, ListParams(label_selector="app in (x")), 400, "BadRequest")
    removed = await store.delete_collection(None, ListParams(label_selector="app=x"))
    assert sorted(i["metadata"]["name"] for i in removed["items"]) == ["a", "c"]
    for name in ("a", "c"):
        await release(store, name)
    assert await names(store) == ["b"]


async def test_invalid_input_writes_nothing(store: Store) -> None:
    info = store.info
    bad = make(info, "Bad/Name")
    bad["metadata"]["labels"] = {"bad key!": "v", "ok": "bad value!"}
    err = await raises(store.create(bad, namespace=ns(info)), 422, "Invalid")
    fields = [c["field"] for c in err.status["details"]["causes"]]
    assert fields.count("metadata.name") == 1 and "metadata.labels" in fields and "metadata.labels[ok]" in fields
    assert err.status["details"]["kind"] == info.kind and err.status["details"].get("group", "") == info.group

    typed = make(info, "typed")
    typed["metadata"]["labels"] = "not-a-map"
    err = await raises(store.create(typed, namespace=ns(info)), 422, "Invalid")
    assert "metadata.labels: Invalid value: \"not-a-map\": must be of type object" in err.message

    strict = make(info, "strict") | {"bogus": 1}
    err = await raises(store.create(strict, namespace=ns(info),
                                    options=WriteOptions(field_validation=FieldValidation.STRICT)), 400, "BadRequest")
    assert err.message == 'strict decoding error: unknown field "bogus"'
    warned = await store.create(strict, namespace=ns(info), options=WriteOptions(field_validation=FieldValidation.WARN))
    assert warned.warnings == ['unknown field "bogus"'] and "bogus" not in warned.object
    await delete(store, "strict")

    if info.namespaced:
        other = make(info, "elsewhere", namespace="other")
        err = await raises(store.create(other, namespace=NS), 400, "BadRequest")
        assert "does not match the namespace" in err.message
    wrong_kind = make(info, "wk") | {"kind": "Nope"}
    await raises(store.create(wrong_kind, namespace=ns(info)), 400, "BadRequest")
    dry = await store.create(make(info, "dry"), namespace=ns(info), options=WriteOptions(dry_run=True))
    assert dry.object["metadata"]["name"] == "dry"
    assert await names(store) == []


async def test_watch_through_store(store: Store) -> None:
    info = store.info
    start = await store.list(None)
    events = await store.watch(None, ListParams(resource_version=start["metadata"]["resourceVersion"],
                                                allow_bookmarks=True, bookmark_interval=0.3))
    created = (await store.create(make(info, "w"), namespace=ns(info))).object
    await delete(store, "w")
    seen: list[tuple[str, str]] = []
    async for ev in events:
        seen.append((ev.type, ev.object["metadata"]["resourceVersion"]))
        if ev.encoded is not None:
            assert orjson.loads(ev.encoded) == ev.object
        if ev.type == "BOOKMARK":
            assert ev.object["kind"] == info.kind and ev.object["apiVersion"] == info.api_version
            break
    await events.aclose()  # type: ignore[attr-defined]
    types = [t for t, _ in seen if t != "BOOKMARK"]
    assert types[0] == "ADDED" and types[-1] == "DELETED"
    assert len(types) == (2 if info.kind not in HELD_ON_DELETE else 4)  # held: marked, released, deleted
    assert seen[0][1] == created["metadata"]["resourceVersion"]


async def test_list_pages_through_store(store: Store) -> None:
    info = store.info
    await asyncio.gather(*(store.create(make(info, f"p{i:02d}"), namespace=ns(info)) for i in range(7)))
    page = await store.list(None, ListParams(limit=3))
    assert page["metadata"]["remainingItemCount"] == 4 and page["kind"] == info.list_kind
    got = [i["metadata"]["name"] for i in page["items"]]
    while page["metadata"].get("continue"):
        page = await store.list(None, ListParams(limit=3, continue_token=page["metadata"]["continue"]))
        got += [i["metadata"]["name"] for i in page["items"]]
    assert got == [f"p{i:02d}" for i in range(7)]
    await raises(store.list(None, ListParams(limit=3, continue_token="garbage")), 400, "BadRequest")
    await raises(store.list(None, ListParams(continue_token=page["metadata"]["resourceVersion"],
                                             resource_version="5")), 400, "BadRequest")


async def test_login_records_are_immutable(stores: dict[str, Store]) -> None:
    store = stores["LoginRecord"]
    created = (await store.create(make(store.info, "rec"), namespace=None)).object
    changed = copy.deepcopy(created)
    changed["spec"]["success"] = False
    err = await raises(store.update(None, "rec", changed), 422, "Invalid")
    assert "spec: Forbidden" in err.message
    assert (await store.get(None, "rec"))["spec"]["success"] is True
