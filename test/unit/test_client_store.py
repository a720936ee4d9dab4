"""The informers' indexed store and listers, and the client's pure parts: the codec that keeps unknown fields,
typed errors from a Status, the rate limiter, the backoff and discovery documents (no I/O)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubellm.apis.meta.v1 import Status
from kubellm.apis.model.v1alpha1 import LLMService
from kubellm.client import codec, errors
from kubellm.client.backoff import Backoff
from kubellm.client.dynamic import _from_aggregated, _from_resource_list
from kubellm.client.informers.lister import ClusterScopedLister, NamespacedLister
from kubellm.client.informers.store import NAMESPACE_INDEX, IndexConflict, Indexer, split_key
from kubellm.client.resource import DictCodec, ModelCodec, ResourceRef, selector_string
from kubellm.client.rest.transport import RateLimiter


def obj(ns: str, name: str, rv: int = 1, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": str(rv), "labels": labels}
    if ns:
        meta["namespace"] = ns
    return {"metadata": meta, "spec": {"gpu": labels.get("gpu", "")}}


def key(o: dict[str, Any]) -> str:
    m = o["metadata"]
    return f"{m['namespace']}/{m['name']}" if m.get("namespace") else m["name"]


def by_gpu(o: dict[str, Any]) -> list[str]:
    return [o["spec"]["gpu"]] if o["spec"]["gpu"] else []


def store() -> Indexer[dict[str, Any]]:
    return Indexer(key, {NAMESPACE_INDEX: lambda o: [o["metadata"].get("namespace", "")], "gpu": by_gpu})


def test_indexer_keeps_indices_with_every_write() -> None:
    s = store()
    s.add(obj("a", "x", gpu="h100"))
    s.add(obj("a", "y", gpu="a100"))
    s.add(obj("b", "x", gpu="h100"))
    assert sorted(s.list_keys()) == ["a/x", "a/y", "b/x"] and len(s) == 3
    assert s.index_keys("gpu", "h100") == ["a/x", "b/x"]
    assert s.list_index_func_values("gpu") == ["a100", "h100"]
    old = s.update(obj("a", "x", rv=2, gpu="a100"))  # moves between index values
    assert old is not None and old["metadata"]["resourceVersion"] == "1"
    assert s.index_keys("gpu", "h100") == ["b/x"] and s.index_keys("gpu", "a100") == ["a/x", "a/y"]
    assert sorted(key(o) for o in s.index("gpu", obj("z", "z", gpu="a100"))) == ["a/x", "a/y"]
    assert s.delete(obj("a", "y")) is not None and s.delete(obj("a", "y")) is None
    assert s.index_keys("gpu", "a100") == ["a/x"]
    assert s.remove("b/x") is not None and s.list_index_func_values("gpu") == ["a100"]
    assert s.by_index(NAMESPACE_INDEX, "a") == [s.get_by_key("a/x")]
    with pytest.raises(KeyError):
        s.by_index("nope", "x")


def test_replace_rebuilds_indices_and_returns_what_was_there() -> None:
    s = store()
    s.add(obj("a", "x", gpu="h100"))
    old = s.replace([obj("a", "y", gpu="a100"), obj("c", "z")])
    assert list(old) == ["a/x"]
    assert s.index_keys("gpu", "h100") == [] and s.index_keys("gpu", "a100") == ["a/y"]
    assert s.by_index(NAMESPACE_INDEX, "c")[0]["metadata"]["name"] == "z"


def test_indexers_added_later_index_what_is_there() -> None:
    s: Indexer[dict[str, Any]] = Indexer(key)
    s.add(obj("a", "x", gpu="h100"))
    s.add_indexers({"gpu": by_gpu})
    assert s.index_keys("gpu", "h100") == ["a/x"]
    with pytest.raises(IndexConflict):
        s.add_indexers({"gpu": by_gpu})


def test_readers_on_other_threads_never_see_an_object_without_its_index_entry() -> None:
    s = store()
    stop = threading.Event()
    torn: list[str] = []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            s.update(obj("a", "x", rv=i, gpu="h100" if i % 2 else "a100"))
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            for gpu in ("h100", "a100"):
                for o in s.by_index("gpu", gpu):
                    if o["spec"]["gpu"] != gpu:
                        torn.append(gpu)
    finally:
        stop.set()
        t.join()
    assert not torn


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "delete"]), st.sampled_from(["a", "b", ""]),
                          st.sampled_from(["x", "y", "z"]), st.sampled_from(["", "h100", "a100"]))))
def test_indices_always_match_a_recomputation(ops: list[tuple[str, str, str, str]]) -> None:
    s = store()
    for op, ns, name, gpu in ops:
        o = obj(ns, name, gpu=gpu) if gpu else obj(ns, name)
        if op == "add":
            s.add(o)
        else:
            s.delete(o)
    for value in ("h100", "a100"):
        assert s.index_keys("gpu", value) == sorted(k for k, o in s.items() if by_gpu(o) == [value])
    for ns in ("a", "b", ""):
        assert sorted(key(o) for o in s.by_index(NAMESPACE_INDEX, ns)) == sorted(
            k for k, o in s.items() if o["metadata"].get("namespace", "") == ns)


def test_listers_select_by_namespace_and_labels() -> None:
    s = store()
    for o in (obj("a", "x", app="llm", tier="gpu"), obj("a", "y", app="rag"), obj("b", "x", app="llm")):
        s.add(o)
    labels = DictCodec().labels
    lister = NamespacedLister(s, labels)
    assert len(lister.list()) == 3
    assert sorted(key(o) for o in lister.list("app=llm")) == ["a/x", "b/x"]
    assert sorted(key(o) for o in lister.list({"app": "llm", "tier": "gpu"})) == ["a/x"]
    assert [key(o) for o in lister.namespace("a").list("app in (llm, rag),tier")] == ["a/x"]
    assert lister.namespace("b").get("x") is not None and lister.namespace("b").get("y") is None
    assert sorted(key(o) for o in lister.list("app!=rag")) == ["a/x", "b/x"]
    with pytest.raises(ValueError, match="app in"):
        lister.list("app in (llm")
    cluster = ClusterScopedLister(Indexer(key), labels)
    cluster.indexer.add(obj("", "c1", region="eu"))
    assert cluster.get("c1") is not None and cluster.list("region=us") == []
    assert split_key("a/x") == ("a", "x") and split_key("c1") == ("", "c1")
    assert selector_string({"a": "1", "b": "2"}) == "a=1,b=2" and selector_string(None) == ""


# --- the codec -------------------------------------------------------------------------------------------------


NEWER = {
    "apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService", "future": {"x": 1},
    "metadata": {"name": "a", "namespace": "n", "shard": "7",
                 "managedFields": [{"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1",
                                    "fieldsV1": {"f:spec": {}}, "future": True}]},
    "spec": {"model": "Qwen/Qwen2.5", "draft": {"model": "tiny"},
             "env": [{"name": "A", "value": "1", "valueFrom": {"k": "v"}}, {"name": "B"}],
             "placement": {"clusterAffinity": {"clusterNames": ["c1"], "weight": 3}}},
    "status": {"phase": "Serving", "clusters": [{"name": "c1", "gpuHours": 2.5}]},
}


def test_unknown_fields_at_every_level_survive_decode_and_encode() -> None:
    decoded = codec.decode(LLMService, NEWER)
    assert decoded.spec.env[0].__pydantic_extra__ == {"valueFrom": {"k": "v"}}
    encoded = codec.encode(decoded)
    assert encoded["future"] == {"x": 1} and encoded["metadata"]["shard"] == "7"
    assert encoded["metadata"]["managedFields"][0]["future"] is True
    assert encoded["spec"]["draft"] == {"model": "tiny"}
    assert encoded["spec"]["env"][0]["valueFrom"] == {"k": "v"} and "valueFrom" not in encoded["spec"]["env"][1]
    assert encoded["spec"]["placement"]["clusterAffinity"]["weight"] == 3
    assert encoded["status"]["clusters"][0]["gpuHours"] == 2.5
    assert codec.encode(codec.decode(LLMService, encoded)) == encoded  # a fixed point

    def subset(a: Any, b: Any) -> bool:
        if isinstance(a, dict):
            return isinstance(b, dict) and all(k in b and subset(v, b[k]) for k, v in a.items())
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(subset(x, y) for x, y in zip(a, b))
        return bool(a == b)

    assert subset(NEWER, encoded)  # never fewer fields than were received
    copied = decoded.model_copy(deep=True)
    assert codec.encode(copied) == encoded


def test_list_items_decode_in_one_call_and_apply_configs_carry_only_what_was_set() -> None:
    items = codec.decode_items(LLMService, [NEWER, NEWER])
    assert len(items) == 2 and items[1].spec.__pydantic_extra__ == {"draft": {"model": "tiny"}}
    from kubellm.apis.meta.v1 import ObjectMeta
    from kubellm.apis.model.v1alpha1 import LLMServiceSpec
    config = LLMService(metadata=ObjectMeta(name="q"), spec=LLMServiceSpec(model="Qwen/Qwen2.5", replicas=2))
    assert ModelCodec(LLMService).encode_apply(config) == {"metadata": {"name": "q"},
                                                            "spec": {"model": "Qwen/Qwen2.5", "replicas": 2}}
    assert "managedFields" not in ModelCodec(LLMService).encode_apply(codec.decode(LLMService, NEWER))["metadata"]


# --- errors -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "reason", "cls"), [
    (400, "BadRequest", errors.BadRequest), (401, "Unauthorized", errors.Unauthorized),
    (403, "Forbidden", errors.Forbidden), (404, "NotFound", errors.NotFound),
    (405, "MethodNotAllowed", errors.MethodNotAllowed), (409, "AlreadyExists", errors.AlreadyExists),
    (409, "Conflict", errors.Conflict), (410, "Expired", errors.Expired), (410, "Gone", errors.Gone),
    (413, "RequestEntityTooLarge", errors.RequestEntityTooLarge), (415, "UnsupportedMediaType",
                                                                    errors.UnsupportedMediaType),
    (422, "Invalid", errors.Invalid), (429, "TooManyRequests", errors.TooManyRequests),
    (500, "InternalError", errors.InternalError), (500, "ServerTimeout", errors.ServerTimeout),
    (503, "ServiceUnavailable", errors.ServiceUnavailable), (504, "Timeout", errors.Timeout),
    (404, "", errors.NotFound), (409, "", errors.Conflict), (418, "Teapot", errors.APIError),
])
def test_errors_are_typed_by_reason_then_code(code: int, reason: str, cls: type[errors.APIError]) -> None:
    err = errors.from_status(Status(code=code, reason=reason or None, message="m",
                                    details={"retryAfterSeconds": 3}))  # type: ignore[arg-type]
    assert type(err) is cls and err.code == code and err.retry_after == 3.0 and err.status.message == "m"
    assert isinstance(err, errors.APIError) and not isinstance(err, errors.TransportError)
    assert isinstance(errors.from_status(Status(code=410, reason="Expired")), errors.Gone)


def test_invalid_carries_its_causes() -> None:
    body = (b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":422,"reason":"Invalid",'
            b'"message":"bad","details":{"name":"q","causes":[{"field":"spec.model","reason":"FieldValueRequired",'
            b'"message":"Required value"}],"future":1}}')
    err = errors.from_response(422, body)
    assert isinstance(err, errors.Invalid) and err.name == "q"
    assert [(c.field, c.reason) for c in err.causes] == [("spec.model", "FieldValueRequired")]


# --- rate limiter, backoff, discovery documents --------------------------------------------------------------------


def test_rate_limiter_reserves_in_order() -> None:
    limiter = RateLimiter(qps=10, burst=2)
    waits = [limiter.reserve() for _ in range(5)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2:] == pytest.approx([0.1, 0.2, 0.3], abs=0.01)


def test_backoff_doubles_to_its_maximum_and_resets() -> None:
    b = Backoff(initial=1, maximum=8, factor=2, jitter=0)
    assert [b.next() for _ in range(5)] == [1, 2, 4, 8, 8]
    b.reset()
    assert b.next() == 1
    jittered = Backoff(initial=1, maximum=8, jitter=1.0)
    assert 1 <= jittered.next() <= 2


def test_discovery_documents_become_resources() -> None:
    agg = _from_aggregated({"items": [{"metadata": {"name": "apps"}, "versions": [
        {"version": "v1", "resources": [{"resource": "deployments", "scope": "Namespaced",
                                         "responseKind": {"kind": "Deployment"}, "verbs": ["get"],
                                         "subresources": [{"subresource": "status", "verbs": ["get"],
                                                           "responseKind": {"kind": "Deployment"}}]}]},
        {"version": "v1beta1", "resources": [{"resource": "deployments", "scope": "Namespaced",
                                              "responseKind": {"kind": "Deployment"}}]}]}]})
    assert [(r.ref, r.preferred) for r in agg] == [
        (ResourceRef("apps", "v1", "deployments", "Deployment", True), True),
        (ResourceRef("apps", "v1beta1", "deployments", "Deployment", True), False)]
    assert agg[0].subresources["status"].group == "apps"
    v1 = _from_resource_list({"groupVersion": "v1", "resources": [
        {"name": "pods", "kind": "Pod", "namespaced": True, "verbs": ["get"]},
        {"name": "pods/log", "kind": "Pod", "namespaced": True, "verbs": ["get"]},
        {"name": "nodes", "kind": "Node", "namespaced": False}]}, True)
    assert {r.ref.plural: (r.ref.group, r.namespaced, sorted(r.subresources)) for r in v1} == {
        "pods": ("", True, ["log"]), "nodes": ("", False, [])}
    assert v1[0].ref.path("ns", "p", "log") == "/api/v1/namespaces/ns/pods/p/log"


def test_gc_pauses_nest_and_resume_only_what_was_running() -> None:
    import gc

    assert gc.isenabled()
    with codec.gc_paused():
        with codec.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with codec.gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
    with pytest.raises(ValueError), codec.gc_paused():
        raise ValueError("decoding failed")
    assert gc.isenabled()
    big = codec.decode_items(LLMService, [NEWER] * (codec.PAUSE_GC_FROM + 1))
    assert len(big) == codec.PAUSE_GC_FROM + 1 and gc.isenabled()
