"""The official Kubernetes Python client against a running KubeLLM: dynamic client, CustomObjectsApi, watch.

What a Python operator or script written for Kubernetes does against a CRD must work here unchanged:
discovery-driven resource lookup, every verb, subresources, server-side apply, watches that resume, and
errors mapped to the client's exception classes with a `Status` body.
"""

# mypy: disable-error-code="no-untyped-call"
# (kubernetes.config, .dynamic and .watch are untyped)
from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import APIServer
from kubernetes import client, config, dynamic, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import (
    BadRequestError,
    ConflictError,
    DynamicApiError,
    NotFoundError,
    UnprocessibleEntityError,
)
from kubernetes.dynamic.resource import Resource, ResourceInstance
from test_http_api import llm

GROUP = "model.kubellm.io"
VERSION = "v1alpha1"
GV = f"{GROUP}/{VERSION}"
MODEL = "Qwen/Qwen2.5-3B-Instruct"
CLUSTER_GROUP = "cluster.kubellm.io"
OPTIMISTIC_LOCK = "the object has been modified; please apply your changes to the latest version and try again"


@pytest.fixture(scope="module")
def api_client(apiserver: APIServer) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(apiserver.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        yield api


@pytest.fixture(scope="module")
def dyn(api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory) -> dynamic.DynamicClient:
    cache = Path(tmp_path_factory.mktemp("discovery")) / "cache.json"
    return dynamic.DynamicClient(api_client, cache_file=str(cache))


@pytest.fixture(scope="module")
def llms(dyn: dynamic.DynamicClient) -> Resource:
    resource: Resource = dyn.resources.get(api_version=GV, kind="LLMService")
    return resource


@pytest.fixture(scope="module")
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def ns(llms: Resource, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of this test's own, emptied (finalizers dropped) afterwards."""
    name = "py-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower()).strip("-")[:50]
    yield name
    for obj in llms.get(namespace=name).items:
        if obj.metadata.finalizers:
            llms.patch(namespace=name, name=obj.metadata.name, body={"metadata": {"finalizers": None}},
                       content_type="application/merge-patch+json")
        with contextlib.suppress(NotFoundError):
            llms.delete(namespace=name, name=obj.metadata.name)


def as_dict(value: object) -> dict[str, Any]:
    """CustomObjectsApi returns `object`: the decoded JSON."""
    assert isinstance(value, dict), value
    return value


def status_body(exc: ApiException) -> dict[str, Any]:
    """The metav1.Status of an error response, checked for shape."""
    assert exc.body is not None
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure", body
    assert body["code"] == exc.status, body
    return body  # type: ignore[no-any-return]


def raises(exc_type: type[ApiException], fn: Callable[[], Any], status: int, reason: str) -> dict[str, Any]:
    with pytest.raises(exc_type) as info:
        fn()
    err = info.value
    assert isinstance(err, ApiException)
    assert err.status == status, (err.status, err.body)
    body = status_body(err)
    assert body["reason"] == reason, body
    return body


# --- discovery ------------------------------------------------------------------------------------------------


def test_dynamic_discovery(dyn: dynamic.DynamicClient, llms: Resource) -> None:
    assert llms.namespaced is True and llms.name == "llmservices" and llms.kind == "LLMService"
    assert llms.short_names == ["llms"] and llms.categories == ["kubellm"]
    assert set(llms.subresources) == {"status", "scale"}
    assert llms.subresources["scale"].kind == "Scale"
    by_short = dyn.resources.get(api_version=GV, short_names=["llms"])
    assert by_short.kind == "LLMService"
    cluster = dyn.resources.get(api_version=f"{CLUSTER_GROUP}/v1alpha1", kind="Cluster")
    assert cluster.namespaced is False and "status" in cluster.subresources
    rag = dyn.resources.get(api_version=GV, kind="RAGService")
    assert set(rag.subresources) == {"status"}


# --- CRUD -----------------------------------------------------------------------------------------------------


def test_create_get_replace_patch_delete(llms: Resource, ns: str) -> None:
    created = llms.create(body=llm("crud", labels={"app": "chat"}), namespace=ns)
    assert isinstance(created, ResourceInstance)
    assert created.kind == "LLMService" and created.apiVersion == GV
    assert created.metadata.uid and created.metadata.resourceVersion and created.metadata.generation == 1
    assert created.metadata.namespace == ns and created.spec.maxModelLen == 2048

    got = llms.get(namespace=ns, name="crud")
    assert got.metadata.uid == created.metadata.uid
    assert got.metadata.resourceVersion == created.metadata.resourceVersion

    body = got.to_dict()
    body["spec"]["replicas"] = 2
    replaced = llms.replace(body=body, namespace=ns)
    assert replaced.spec.replicas == 2 and replaced.metadata.generation == 2
    assert int(replaced.metadata.resourceVersion) > int(got.metadata.resourceVersion)

    stale = got.to_dict()
    stale["spec"]["replicas"] = 3
    st = raises(ConflictError, lambda: llms.replace(body=stale, namespace=ns), 409, "Conflict")
    assert st["message"] == f'Operation cannot be fulfilled on llmservices.{GROUP} "crud": {OPTIMISTIC_LOCK}', st
    assert st["details"] == {"name": "crud", "group": GROUP, "kind": "llmservices"}, st

    merged = llms.patch(namespace=ns, name="crud", body={"metadata": {"labels": {"tier": "gold"}},
                                                         "spec": {"quantization": "awq"}},
                        content_type="application/merge-patch+json")
    assert merged.metadata.labels.to_dict() == {"app": "chat", "tier": "gold"}
    assert merged.spec.quantization == "awq" and merged.spec.replicas == 2

    jp = llms.patch(namespace=ns, name="crud", body=[{"op": "replace", "path": "/spec/maxModelLen", "value": 4096},
                                                     {"op": "remove", "path": "/metadata/labels/app"}],
                    content_type="application/json-patch+json")
    assert jp.spec.maxModelLen == 4096 and jp.metadata.labels.to_dict() == {"tier": "gold"}

    # The client's default patch type is strategic merge, which custom resources do not support.
    with pytest.raises(DynamicApiError) as smp:
        llms.patch(namespace=ns, name="crud", body={"spec": {"replicas": 5}})
    assert smp.value.status == 415
    assert status_body(smp.value)["reason"] == "UnsupportedMediaType"

    deleted = llms.delete(namespace=ns, name="crud")
    assert deleted.kind == "LLMService" and deleted.metadata.name == "crud"
    raises(NotFoundError, lambda: llms.get(namespace=ns, name="crud"), 404, "NotFound")


def test_list_selectors_and_pagination(llms: Resource, ns: str) -> None:
    names = [f"item-{i:02d}" for i in range(12)]
    for i, name in enumerate(names):
        llms.create(body=llm(name, labels={"tier": "gold" if i % 2 == 0 else "silver", "idx": str(i)}),
                    namespace=ns)
    everything = llms.get(namespace=ns)
    assert everything.kind == "LLMServiceList"
    assert [o.metadata.name for o in everything.items] == names

    gold = llms.get(namespace=ns, label_selector="tier=gold")
    assert [o.metadata.name for o in gold.items] == names[0::2]
    set_based = llms.get(namespace=ns, label_selector="tier in (silver),idx notin (1,3)")
    assert [o.metadata.name for o in set_based.items] == names[5::2]
    by_name = llms.get(namespace=ns, field_selector="metadata.name=item-07")
    assert [o.metadata.name for o in by_name.items] == ["item-07"]
    both = llms.get(namespace=ns, label_selector="tier=gold", field_selector="metadata.name!=item-00")
    assert [o.metadata.name for o in both.items] == names[2::2]

    pages: list[list[str]] = []
    token: str | None = None
    remaining: list[int | None] = []
    while True:
        page = llms.get(namespace=ns, limit=5, _continue=token)
        pages.append([o.metadata.name for o in page.items])
        remaining.append(page.metadata.remainingItemCount)
        token = page.metadata["continue"]
        if not token:
            break
    assert pages == [names[0:5], names[5:10], names[10:12]]
    assert remaining == [7, 2, None]

    gold_pages: list[str] = []
    token = None
    while True:
        page = llms.get(namespace=ns, limit=4, label_selector="tier=gold", _continue=token)
        assert len(page.items) <= 4
        gold_pages += [o.metadata.name for o in page.items]
        token = page.metadata["continue"]
        if not token:
            break
    assert gold_pages == names[0::2]


def test_server_side_apply(llms: Resource, ns: str) -> None:
    if not hasattr(llms, "server_side_apply") and not hasattr(dynamic.DynamicClient, "server_side_apply"):
        pytest.skip("this client has no server_side_apply")
    manifest = llm("ssa", replicas=1, labels={"owner": "alice"})
    applied = llms.server_side_apply(body=manifest, namespace=ns, field_manager="alice")
    assert applied.spec.replicas == 1 and applied.metadata.labels.owner == "alice"
    managers = {m.manager: m for m in applied.metadata.managedFields}
    assert managers["alice"].operation == "Apply"
    assert "f:replicas" in json.dumps(managers["alice"].fieldsV1.to_dict())

    again = llms.server_side_apply(body=manifest, namespace=ns, field_manager="alice")
    assert again.metadata.resourceVersion == applied.metadata.resourceVersion, "a no-op apply must not write"

    bob = llm("ssa", replicas=3)
    st = raises(ConflictError, lambda: llms.server_side_apply(body=bob, namespace=ns, field_manager="bob"), 409,
                "Conflict")
    causes = st["details"]["causes"]
    assert any(c["field"] == ".spec.replicas" and c["reason"] == "FieldManagerConflict" for c in causes), st
    assert 'conflict with "alice"' in st["message"], st

    forced = llms.server_side_apply(body=bob, namespace=ns, field_manager="bob", force_conflicts=True)
    assert forced.spec.replicas == 3
    managers = {m.manager: m for m in forced.metadata.managedFields}
    assert "f:replicas" in json.dumps(managers["bob"].fieldsV1.to_dict())
    assert "f:replicas" not in json.dumps(managers["alice"].fieldsV1.to_dict())

    # Alice drops the label from her configuration: the field she alone owned is removed.
    shrunk = llms.server_side_apply(body=llm("ssa", replicas=3), namespace=ns, field_manager="alice",
                                    force_conflicts=True)
    assert "owner" not in (shrunk.metadata.labels or {})


def test_server_side_apply_requires_field_manager(llms: Resource, ns: str) -> None:
    """kube-apiserver: an apply patch without fieldManager is an invalid PatchOptions (ValidatePatchOptions);
    the User-Agent default applies to the other write verbs only."""
    manifest = llm("ssa-nofm")
    st = raises(UnprocessibleEntityError, lambda: llms.server_side_apply(body=manifest, namespace=ns), 422, "Invalid")
    assert [c["field"] for c in st["details"]["causes"]] == ["fieldManager"], st
    assert st["details"]["causes"][0]["reason"] == "FieldValueRequired", st
    assert st["details"].get("kind") == "PatchOptions" and st["details"].get("group") == "meta.k8s.io", st
    raises(NotFoundError, lambda: llms.get(namespace=ns, name="ssa-nofm"), 404, "NotFound")


# --- subresources ---------------------------------------------------------------------------------------------


def test_status_subresource(llms: Resource, ns: str) -> None:
    llms.create(body=llm("st"), namespace=ns)
    status = llms.subresources["status"]
    current = status.get(namespace=ns, name="st")
    assert current.kind == "LLMService"
    body = current.to_dict()
    body["status"] = {"phase": "Serving", "replicas": 1, "readyReplicas": 1, "endpoint": "http://st.example:8000"}
    body["spec"]["replicas"] = 7  # ignored by /status
    updated = status.replace(body=body, namespace=ns)
    assert updated.status.phase == "Serving" and updated.spec.replicas == 1
    assert updated.metadata.generation == 1

    patched = llms.status.patch(namespace=ns, name="st", body={"status": {"message": "warming"}},
                                content_type="application/merge-patch+json")
    assert patched.status.message == "warming" and patched.status.phase == "Serving"

    # The main resource ignores status.
    main = llms.get(namespace=ns, name="st").to_dict()
    main["status"] = {"phase": "Failed"}
    kept = llms.replace(body=main, namespace=ns)
    assert kept.status.phase == "Serving"

    serving = llms.get(namespace=ns, field_selector="status.phase=Serving")
    assert [o.metadata.name for o in serving.items] == ["st"]

    bad = llms.get(namespace=ns, name="st").to_dict()
    bad["status"]["phase"] = "Dancing"
    st = raises(UnprocessibleEntityError, lambda: status.replace(body=bad, namespace=ns), 422, "Invalid")
    assert [c["field"] for c in st["details"]["causes"]] == ["status.phase"], st


def test_scale_subresource(llms: Resource, ns: str) -> None:
    llms.create(body=llm("sc", replicas=2), namespace=ns)
    scale = llms.subresources["scale"]
    s = scale.get(namespace=ns, name="sc")
    assert s.apiVersion == "autoscaling/v1" and s.kind == "Scale"
    assert s.spec.replicas == 2 and s.metadata.name == "sc" and s.metadata.namespace == ns

    body = s.to_dict()
    body["spec"]["replicas"] = 4
    out = scale.replace(body=body, namespace=ns)
    assert out.kind == "Scale" and out.spec.replicas == 4
    assert llms.get(namespace=ns, name="sc").spec.replicas == 4

    st = raises(ConflictError, lambda: scale.replace(body=body, namespace=ns), 409, "Conflict")
    assert OPTIMISTIC_LOCK in st["message"], st

    patched = llms.scale.patch(namespace=ns, name="sc", body={"spec": {"replicas": 0}},
                               content_type="application/merge-patch+json")
    assert patched.spec.replicas == 0
    assert llms.get(namespace=ns, name="sc").spec.replicas == 0
    raises(NotFoundError, lambda: scale.get(namespace=ns, name="missing"), 404, "NotFound")


# --- delete ---------------------------------------------------------------------------------------------------


def test_delete_preconditions_and_propagation(llms: Resource, ns: str) -> None:
    obj = llms.create(body=llm("del"), namespace=ns)
    llms.patch(namespace=ns, name="del", body={"spec": {"replicas": 2}}, content_type="application/merge-patch+json")

    stale = {"kind": "DeleteOptions", "apiVersion": "v1",
             "preconditions": {"resourceVersion": obj.metadata.resourceVersion}}
    st = raises(ConflictError, lambda: llms.delete(namespace=ns, name="del", body=stale), 409, "Conflict")
    assert "Precondition failed: ResourceVersion in precondition" in st["message"], st
    wrong_uid = {"preconditions": {"uid": "11111111-1111-1111-1111-111111111111"}}
    st = raises(ConflictError, lambda: llms.delete(namespace=ns, name="del", body=wrong_uid), 409, "Conflict")
    assert "Precondition failed: UID in precondition" in st["message"], st
    assert llms.get(namespace=ns, name="del").metadata.uid == obj.metadata.uid

    good = {"preconditions": {"uid": obj.metadata.uid}, "propagationPolicy": "Foreground"}
    gone = llms.delete(namespace=ns, name="del", body=good)
    assert gone.metadata.name == "del"
    raises(NotFoundError, lambda: llms.get(namespace=ns, name="del"), 404, "NotFound")

    llms.create(body=llm("bg"), namespace=ns)
    llms.delete(namespace=ns, name="bg", propagation_policy="Background")
    raises(NotFoundError, lambda: llms.get(namespace=ns, name="bg"), 404, "NotFound")

    llms.create(body=llm("fin", finalizers=["kubellm.io/hold"]), namespace=ns)
    marked = llms.delete(namespace=ns, name="fin", propagation_policy="Orphan")
    assert marked.metadata.deletionTimestamp and marked.metadata.finalizers == ["kubellm.io/hold"]
    llms.patch(namespace=ns, name="fin", body={"metadata": {"finalizers": None}},
               content_type="application/merge-patch+json")
    raises(NotFoundError, lambda: llms.get(namespace=ns, name="fin"), 404, "NotFound")


def test_delete_collection(llms: Resource, ns: str) -> None:
    for i in range(5):
        llms.create(body=llm(f"dc-{i}", labels={"batch": "old" if i < 3 else "new"}), namespace=ns)
    removed = llms.delete(namespace=ns, label_selector="batch=old")
    assert sorted(o.metadata.name for o in removed.items) == ["dc-0", "dc-1", "dc-2"]
    assert [o.metadata.name for o in llms.get(namespace=ns).items] == ["dc-3", "dc-4"]


# --- watch ----------------------------------------------------------------------------------------------------


def _later(fn: Callable[[], None], delay: float = 0.5) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        fn()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_dynamic_watch_and_resume(llms: Resource, custom: client.CustomObjectsApi, ns: str) -> None:
    start_rv = llms.get(namespace=ns).metadata.resourceVersion
    written: dict[str, Any] = {}

    def writes() -> None:
        written["created"] = llms.create(body=llm("watched"), namespace=ns)
        written["patched"] = llms.patch(namespace=ns, name="watched", body={"spec": {"replicas": 3}},
                                        content_type="application/merge-patch+json")
        llms.delete(namespace=ns, name="watched")

    writer = _later(writes)
    w = watch.Watch()
    events: list[tuple[str, str, str]] = []
    for ev in llms.watch(namespace=ns, resource_version=start_rv, timeout=20, watcher=w):
        obj = ev["object"]
        events.append((ev["type"], obj.metadata.name, obj.metadata.resourceVersion))
        assert ev["raw_object"]["kind"] == "LLMService"
        if ev["type"] == "DELETED":
            w.stop()
    writer.join(10)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]
    assert events[0][2] == written["created"].metadata.resourceVersion
    assert events[1][2] == written["patched"].metadata.resourceVersion

    # Resume after the ADDED event with CustomObjectsApi: only what came later is replayed.
    resumed: list[tuple[str, int]] = []
    w2 = watch.Watch()
    for ev in w2.stream(custom.list_namespaced_custom_object, GROUP, VERSION, ns, "llmservices",
                        resource_version=events[0][2], timeout_seconds=20):
        resumed.append((ev["type"], ev["object"]["spec"]["replicas"]))
        if ev["type"] == "DELETED":
            w2.stop()
    assert resumed == [("MODIFIED", 3), ("DELETED", 3)]
    assert w2.resource_version == events[2][2]


def test_custom_objects_watch_label_selector(llms: Resource, custom: client.CustomObjectsApi, ns: str) -> None:
    llms.create(body=llm("in", labels={"team": "a"}), namespace=ns)
    rv = llms.get(namespace=ns).metadata.resourceVersion

    def writes() -> None:
        llms.create(body=llm("out", labels={"team": "b"}), namespace=ns)
        llms.patch(namespace=ns, name="out", body={"metadata": {"labels": {"team": "a"}}},
                   content_type="application/merge-patch+json")
        llms.patch(namespace=ns, name="in", body={"metadata": {"labels": {"team": "c"}}},
                   content_type="application/merge-patch+json")

    writer = _later(writes)
    w = watch.Watch()
    seen: list[tuple[str, str]] = []
    for ev in w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, ns, "llmservices",
                       label_selector="team=a", resource_version=rv, timeout_seconds=20):
        seen.append((ev["type"], ev["object"]["metadata"]["name"]))
        if ev["type"] == "DELETED":
            w.stop()
    writer.join(10)
    assert seen == [("ADDED", "out"), ("DELETED", "in")]


def test_watch_from_now_sees_initial_state(llms: Resource, ns: str) -> None:
    llms.create(body=llm("pre-1"), namespace=ns)
    llms.create(body=llm("pre-2"), namespace=ns)
    w = watch.Watch()
    names = []
    for ev in llms.watch(namespace=ns, timeout=10, watcher=w):
        assert ev["type"] == "ADDED"
        names.append(ev["object"].metadata.name)
        if len(names) == 2:
            w.stop()
    assert sorted(names) == ["pre-1", "pre-2"]


# --- CustomObjectsApi, cluster-scoped -------------------------------------------------------------------------


def _cluster(name: str, endpoint: str = "https://gpu-a.example.com:6443", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{CLUSTER_GROUP}/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name, "labels": {"suite": "py-client"}},
            "spec": {"apiEndpoint": endpoint, "credentials": {"token": "s3cr3t-token"}, "region": "eu-west",
                     **spec}}


@pytest.fixture
def clusters(custom: client.CustomObjectsApi) -> Iterator[client.CustomObjectsApi]:
    yield custom
    listed = as_dict(custom.list_cluster_custom_object(CLUSTER_GROUP, "v1alpha1", "clusters",
                                                       label_selector="suite=py-client"))
    for obj in listed["items"]:
        try:
            custom.delete_cluster_custom_object(CLUSTER_GROUP, "v1alpha1", "clusters", obj["metadata"]["name"])
        except ApiException as exc:
            if exc.status != 404:
                raise


def test_custom_objects_cluster_scoped_crud(clusters: client.CustomObjectsApi) -> None:
    args = (CLUSTER_GROUP, "v1alpha1", "clusters")
    created = as_dict(clusters.create_cluster_custom_object(*args, _cluster("py-gpu-a")))
    assert created["kind"] == "Cluster" and "namespace" not in created["metadata"]
    assert created["spec"]["apiEndpoint"] == "https://gpu-a.example.com:6443"
    clusters.create_cluster_custom_object(*args, _cluster("py-gpu-b", "https://gpu-b.example.com", region="us-east"))

    got = as_dict(clusters.get_cluster_custom_object(*args, "py-gpu-a"))
    assert got["metadata"]["uid"] == created["metadata"]["uid"]

    listed = as_dict(clusters.list_cluster_custom_object(*args, label_selector="suite=py-client"))
    assert listed["kind"] == "ClusterList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["py-gpu-a", "py-gpu-b"]
    east = as_dict(clusters.list_cluster_custom_object(*args, field_selector="spec.region=us-east"))
    assert [i["metadata"]["name"] for i in east["items"]] == ["py-gpu-b"]

    patched = as_dict(clusters.patch_cluster_custom_object(*args, "py-gpu-a", {"spec": {"zone": "eu-west-1a"}}))
    assert patched["spec"]["zone"] == "eu-west-1a"
    assert patched["metadata"]["generation"] == 2

    body = dict(patched)
    body["spec"] = {**patched["spec"], "apiEndpoint": "https://gpu-a2.example.com"}
    with pytest.raises(ApiException) as moved:  # the stored credentials never follow a new endpoint
        clusters.replace_cluster_custom_object(*args, "py-gpu-a", body)
    assert moved.value.status == 422 and status_body(moved.value)["details"]["causes"][0]["field"] == "spec.credentials"
    body["spec"]["credentials"] = {"token": "a-new-token-for-gpu-a2"}
    replaced = as_dict(clusters.replace_cluster_custom_object(*args, "py-gpu-a", body))
    assert replaced["spec"]["apiEndpoint"] == "https://gpu-a2.example.com" and "credentials" not in replaced["spec"]

    with pytest.raises(ApiException) as stale:
        clusters.replace_cluster_custom_object(*args, "py-gpu-a", body)
    assert stale.value.status == 409 and status_body(stale.value)["reason"] == "Conflict"

    status = as_dict(clusters.patch_cluster_custom_object_status(*args, "py-gpu-a", {"status": {"nodeCount": 3}}))
    assert status["status"]["nodeCount"] == 3

    deleted = as_dict(clusters.delete_cluster_custom_object(*args, "py-gpu-a"))
    assert deleted["metadata"]["name"] == "py-gpu-a"
    with pytest.raises(ApiException) as missing:
        clusters.get_cluster_custom_object(*args, "py-gpu-a")
    assert missing.value.status == 404
    st = status_body(missing.value)
    assert st["reason"] == "NotFound" and st["message"] == f'clusters.{CLUSTER_GROUP} "py-gpu-a" not found', st


def test_custom_objects_cluster_invalid(clusters: client.CustomObjectsApi) -> None:
    args = (CLUSTER_GROUP, "v1alpha1", "clusters")
    bad = _cluster("py-bad", "http://plain.example.com")
    bad["spec"]["credentials"] = {}
    with pytest.raises(ApiException) as info:
        clusters.create_cluster_custom_object(*args, bad)
    assert info.value.status == 422
    st = status_body(info.value)
    assert st["reason"] == "Invalid" and st["details"]["kind"] == "Cluster" and st["details"]["name"] == "py-bad"
    fields = {c["field"]: c for c in st["details"]["causes"]}
    assert set(fields) == {"spec.apiEndpoint", "spec.credentials"}, fields
    assert fields["spec.apiEndpoint"]["reason"] == "FieldValueInvalid"
    assert fields["spec.credentials"]["reason"] == "FieldValueRequired"


# --- error mapping --------------------------------------------------------------------------------------------


def test_error_mapping(llms: Resource, custom: client.CustomObjectsApi, ns: str) -> None:
    st = raises(NotFoundError, lambda: llms.get(namespace=ns, name="absent"), 404, "NotFound")
    assert st["message"] == f'llmservices.{GROUP} "absent" not found'
    assert st["details"] == {"name": "absent", "group": GROUP, "kind": "llmservices"}

    llms.create(body=llm("dup"), namespace=ns)
    st = raises(ConflictError, lambda: llms.create(body=llm("dup"), namespace=ns), 409, "AlreadyExists")
    assert st["message"] == f'llmservices.{GROUP} "dup" already exists'

    st = raises(UnprocessibleEntityError,
                lambda: llms.create(body=llm("inv", quantization="int3", maxModelLen=100), namespace=ns), 422,
                "Invalid")
    assert st["details"]["name"] == "inv" and st["details"]["kind"] == "LLMService" and st["details"]["group"] == GROUP
    causes = {c["field"]: c for c in st["details"]["causes"]}
    assert causes["spec.quantization"]["reason"] == "FieldValueNotSupported"
    assert causes["spec.quantization"]["message"] == 'Unsupported value: "int3": supported values: "awq", "fp8", "gptq"'
    assert causes["spec.maxModelLen"]["reason"] == "FieldValueInvalid"

    strict = llm("strict")
    strict["spec"]["bogus"] = True
    st = raises(BadRequestError, lambda: llms.create(body=strict, namespace=ns,
                                                     query_params=[("fieldValidation", "Strict")]), 400, "BadRequest")
    assert st["message"] == 'strict decoding error: unknown field "spec.bogus"'

    with pytest.raises(ApiException) as plain:
        custom.get_namespaced_custom_object(GROUP, VERSION, ns, "llmservices", "absent")
    assert not isinstance(plain.value, DynamicApiError)
    assert plain.value.status == 404 and plain.value.reason == "Not Found"
    assert status_body(plain.value)["reason"] == "NotFound"

    with pytest.raises(ApiException) as unknown:
        custom.list_namespaced_custom_object(GROUP, VERSION, ns, "nosuchthings")
    assert unknown.value.status == 404 and status_body(unknown.value)["reason"] == "NotFound"
