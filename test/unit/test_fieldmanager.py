"""Field management: managedFields tracking for writes and server-side apply (no I/O)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubellm.apis.errors import StatusError
from kubellm.registry.fieldmanager import (
    ANCIENT_CHANGES,
    BEFORE_FIRST_APPLY,
    KeyElement,
    ValueElement,
    apply,
    fields_to_set,
    path_string,
    set_to_fields,
    update_managed_fields,
)

AV = "model.kubellm.io/v1alpha1"
T0, T1, T2, T3 = "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z"
KUBECTL = "kubectl-client-side-apply"


def svc(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": AV, "kind": "LLMService", "metadata": {"name": "llm", "namespace": "ns", **meta},
            "spec": {"model": "qwen", "replicas": 1} if spec is None else spec}


def config(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": AV, "kind": "LLMService", "metadata": {"name": "llm", **meta}, **(
        {} if spec is None else {"spec": spec})}


def stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the store would add: system metadata and a status."""
    out = copy.deepcopy(obj)
    out["metadata"].update(uid="u-1", resourceVersion="7", generation=1, creationTimestamp=T0)
    out.setdefault("status", {"phase": "Pending"})
    return out


def managers(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """managedFields by (manager, operation, subresource) -> fieldsV1."""
    return {(e["manager"], e["operation"], e.get("subresource", "")): e["fieldsV1"]
            for e in obj["metadata"].get("managedFields", [])}


def owned(obj: dict[str, Any], manager: str, operation: str = "Update", subresource: str = "") -> set[str]:
    fields = managers(obj).get((manager, operation, subresource))
    return {path_string(p) for p in fields_to_set(fields)} if fields is not None else set()


def causes(err: StatusError) -> list[dict[str, Any]]:
    assert err.details is not None
    return list(err.details["causes"])


def created(obj: dict[str, Any] | None = None, manager: str = KUBECTL) -> dict[str, Any]:
    return stored(update_managed_fields(None, obj or svc(), manager, now=T0))


# ----- fieldsV1 ---------------------------------------------------------------------------------------


def test_fieldsv1_round_trip() -> None:
    fields: dict[str, Any] = {"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:app.kubernetes.io/name": {}}},
              "f:spec": {".": {}, "f:extraArgs": {}, "f:replicas": {}, "f:resources": {"f:gpu": {}}}}
    paths = fields_to_set(fields)
    assert paths == {("metadata", "labels"), ("metadata", "labels", "app"),
                     ("metadata", "labels", "app.kubernetes.io/name"), ("spec",), ("spec", "extraArgs"),
                     ("spec", "replicas"), ("spec", "resources", "gpu")}
    assert set_to_fields(paths) == fields
    assert fields_to_set(set_to_fields(paths)) == paths
    assert list(set_to_fields(paths)["f:spec"]) == [".", "f:extraArgs", "f:replicas", "f:resources"]


@pytest.mark.parametrize("bad", [{"i:0": {}}, {"f:a": {"k:{}": {}}}, {"f:a": {"k:[1]": {}}}, {"f:a": {"v:NaN": {}}},
                                 {"f:a": {"v:1 2": {}}}, {"x:y": {}}, {"f:spec": []}, {".": {}},
                                 {"f:a": {".": {"x": {}}}}])
def test_fieldsv1_refuses_what_it_does_not_write(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        fields_to_set(bad)


# ----- tracking of non-apply writes -------------------------------------------------------------------


def test_create_records_every_field_for_the_manager() -> None:
    obj = created(svc(spec={"model": "qwen", "replicas": 1, "extraArgs": ["--a", "--b"]}, labels={"app": "x"}))
    [entry] = obj["metadata"]["managedFields"]
    assert entry == {"manager": KUBECTL, "operation": "Update", "apiVersion": AV, "time": T0,
                     "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                                  "f:spec": {".": {}, "f:extraArgs": {}, "f:model": {}, "f:replicas": {}}}}


def test_system_metadata_kind_and_status_are_never_tracked() -> None:
    obj = svc(finalizers=["x"], uid="u", resourceVersion="3", generation=2, creationTimestamp=T0,
              deletionTimestamp=T1, deletionGracePeriodSeconds=0, selfLink="/x")
    obj["status"] = {"phase": "Ready"}
    out = update_managed_fields(None, obj, "m", now=T0)
    assert owned(out, "m") == {".metadata.finalizers", '.metadata.finalizers[="x"]', ".spec", ".spec.model",
                               ".spec.replicas"}


def test_update_moves_ownership_and_drops_empty_managers() -> None:
    obj = created()
    new = copy.deepcopy(obj)
    new["spec"]["replicas"] = 3
    out = update_managed_fields(obj, new, "scaler", now=T1)
    assert owned(out, "scaler") == {".spec.replicas"}
    assert owned(out, KUBECTL) == {".spec", ".spec.model"}
    again = copy.deepcopy(out)
    again["spec"]["replicas"] = 1
    out = update_managed_fields(out, again, KUBECTL, now=T2)
    assert ("scaler", "Update", "") not in managers(out)  # lost its only field
    assert owned(out, KUBECTL) == {".spec", ".spec.model", ".spec.replicas"}
    assert [e["time"] for e in out["metadata"]["managedFields"]] == [T2]


def test_update_merges_into_the_same_manager_and_keeps_time_when_nothing_changed() -> None:
    obj = created()
    new = copy.deepcopy(obj)
    new["metadata"]["labels"] = {"team": "a"}
    out = update_managed_fields(obj, new, KUBECTL, now=T1)
    [entry] = out["metadata"]["managedFields"]
    assert entry["time"] == T1
    assert owned(out, KUBECTL) == {".spec", ".spec.model", ".spec.replicas", ".metadata.labels",
                                   ".metadata.labels.team"}
    assert update_managed_fields(out, copy.deepcopy(out), "other", now=T2) == out


def test_entries_differ_by_api_version_and_subresource() -> None:
    obj = created()
    new = copy.deepcopy(obj)
    new["apiVersion"] = "model.kubellm.io/v1beta1"
    new["spec"]["replicas"] = 2
    out = update_managed_fields(obj, new, KUBECTL, now=T1)
    versions = [(e["manager"], e["apiVersion"]) for e in out["metadata"]["managedFields"]]
    assert versions == [(KUBECTL, AV), (KUBECTL, "model.kubellm.io/v1beta1")]


def test_removed_fields_leave_every_manager() -> None:
    obj = created(svc(spec={"model": "qwen", "replicas": 1, "resources": {"gpu": 1}}))
    new = copy.deepcopy(obj)
    new["spec"]["replicas"] = 2
    obj = update_managed_fields(obj, new, "scaler", now=T1)
    new = copy.deepcopy(obj)
    del new["spec"]["resources"]
    del new["spec"]["replicas"]
    out = update_managed_fields(obj, new, "pruner", now=T2)
    assert owned(out, KUBECTL) == {".spec", ".spec.model"}
    assert ("scaler", "Update", "") not in managers(out)
    assert ("pruner", "Update", "") not in managers(out)  # removing only takes nothing


def test_label_keys_are_tracked_individually() -> None:
    obj = created(svc(labels={"app": "x"}))
    new = copy.deepcopy(obj)
    new["metadata"]["labels"]["team"] = "ml"
    out = update_managed_fields(obj, new, "labeller", now=T1)
    assert owned(out, "labeller") == {".metadata.labels.team"}
    assert ".metadata.labels.app" in owned(out, KUBECTL)
    with pytest.raises(StatusError) as err:
        apply(out, config(labels={"team": "infra"}), "ssa", force=False, now=T2)
    assert err.value.details == {"causes": [{"reason": "FieldManagerConflict", "field": ".metadata.labels.team",
                                             "message": 'conflict with "labeller" using ' + AV}]}
    shared = apply(out, config(labels={"app": "x"}), "ssa", force=False, now=T2)
    assert owned(shared, "ssa", "Apply") == {".metadata.labels.app"}


def test_lists_are_atomic() -> None:
    obj = created(svc(spec={"model": "q", "extraArgs": ["--a", "--b"]}))
    assert managers(obj)[(KUBECTL, "Update", "")]["f:spec"]["f:extraArgs"] == {}
    new = copy.deepcopy(obj)
    new["spec"]["extraArgs"][1] = "--c"
    out = update_managed_fields(obj, new, "editor", now=T1)
    assert owned(out, "editor") == {".spec.extraArgs"}
    assert owned(out, KUBECTL) == {".spec", ".spec.model"}
    applied = apply(out, config({"extraArgs": ["--z"]}), "ssa", force=True, now=T2)
    assert applied["spec"]["extraArgs"] == ["--z"]  # replaced, not merged
    assert owned(applied, "ssa", "Apply") == {".spec.extraArgs"}


def test_status_is_tracked_only_on_the_status_subresource() -> None:
    obj = created()
    new = copy.deepcopy(obj)
    new["status"] = {"phase": "Ready", "replicas": 1}
    new["spec"]["replicas"] = 9  # the status strategy would drop it; it is not the status writer's field
    out = update_managed_fields(obj, new, "controller", subresource="status", now=T1)
    assert owned(out, "controller", subresource="status") == {".status.phase", ".status.replicas"}
    [_, entry] = out["metadata"]["managedFields"]
    assert entry["subresource"] == "status"
    main = copy.deepcopy(out)
    main["status"] = {"phase": "Failed"}
    assert update_managed_fields(out, main, "user", now=T2)["metadata"] == out["metadata"]


def test_new_status_map_is_owned_as_a_node() -> None:
    obj = stored(update_managed_fields(None, svc(), KUBECTL, now=T0))
    del obj["status"]
    new = copy.deepcopy(obj)
    new["status"] = {"phase": "Ready"}
    out = update_managed_fields(obj, new, "controller", subresource="status", now=T1)
    assert managers(out)[("controller", "Update", "status")] == {"f:status": {".": {}, "f:phase": {}}}


def test_sent_managed_fields_replace_the_live_ones_and_an_empty_entry_resets_them() -> None:
    obj = created()
    new = copy.deepcopy(obj)
    new["metadata"]["managedFields"] = [{}]
    out = update_managed_fields(obj, new, "resetter", now=T1)
    assert "managedFields" not in out["metadata"]
    new = copy.deepcopy(obj)
    new["metadata"]["managedFields"] = [{"manager": "x", "operation": "Update", "apiVersion": AV,
                                         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:model": {}}}}]
    assert owned(update_managed_fields(obj, new, "resetter", now=T1), "x") == {".spec.model"}
    sub = update_managed_fields(obj, new, "resetter", subresource="status", now=T1)
    assert owned(sub, KUBECTL) == owned(obj, KUBECTL)  # a subresource write never takes them from the body


def test_empty_manager_is_unknown() -> None:
    assert owned(update_managed_fields(None, svc(), "", now=T0), "unknown") == {".spec", ".spec.model",
                                                                               ".spec.replicas"}


def test_update_managers_are_capped_into_ancient_changes() -> None:
    obj = created()
    for i in range(11):
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("labels", {})[f"k{i}"] = "v"
        obj = update_managed_fields(obj, new, f"m{i:02d}", now=f"2025-02-{i + 1:02d}T00:00:00Z")
    names = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(names) == 10
    assert KUBECTL not in names and "m00" not in names and "m01" not in names and "m02" in names
    assert owned(obj, ANCIENT_CHANGES) == owned(created(), KUBECTL) | {".metadata.labels", ".metadata.labels.k0",
                                                                     ".metadata.labels.k1"}
    [bucket] = [e for e in obj["metadata"]["managedFields"] if e["manager"] == ANCIENT_CHANGES]
    assert bucket["time"] == "2025-02-02T00:00:00Z"  # the newest time merged into it


# ----- server-side apply ------------------------------------------------------------------------------


def test_apply_conflict_with_an_updater_is_409_with_kube_message_and_causes() -> None:
    obj = created()
    with pytest.raises(StatusError) as err:
        apply(obj, config({"model": "qwen", "replicas": 3}), "ssa", force=False, now=T1)
    e = err.value
    assert (e.code, e.reason) == (409, "Conflict")
    assert e.message == f'Apply failed with 1 conflict: conflict with "{KUBECTL}" using {AV}: .spec.replicas'
    assert e.details == {"causes": [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                     "message": f'conflict with "{KUBECTL}" using {AV}'}]}
    assert e.status["code"] == 409


def test_several_conflicts_are_grouped_by_sorted_manager() -> None:
    obj = created(svc(spec={"a": 1, "b": 2, "aa": {"c": 3}}))
    applied = apply(obj, config({"a": 1}), "zeta", force=False, now=T1)
    new = copy.deepcopy(applied)
    new["status"] = {"phase": "x"}
    with_status = update_managed_fields(applied, new, "ctl", subresource="status", now=T1)
    with pytest.raises(StatusError) as err:
        apply(with_status, config({"a": 5, "b": 6, "aa": {"c": 7}}), "mine", force=False, now=T2)
    assert err.value.message == (  # per manager, kube's set order: a level's leaves before its children
        f'Apply failed with 4 conflicts: conflicts with "{KUBECTL}" using {AV}:\n- .spec.a\n- .spec.b\n- .spec.aa.c\n'
        'conflicts with "zeta":\n- .spec.a')
    assert [(c["field"], c["message"]) for c in causes(err.value)] == [
        (".spec.a", f'conflict with "{KUBECTL}" using {AV}'), (".spec.b", f'conflict with "{KUBECTL}" using {AV}'),
        (".spec.aa.c", f'conflict with "{KUBECTL}" using {AV}'), (".spec.a", 'conflict with "zeta"')]
    with pytest.raises(StatusError) as err:
        apply(with_status, {"apiVersion": AV, "kind": "LLMService", "metadata": {"name": "llm"},
                            "status": {"phase": "y"}}, "mine", force=False, subresource="status", now=T2)
    assert err.value.message == (f'Apply failed with 1 conflict: conflict with "ctl" with subresource "status" '
                                 f"using {AV}: .status.phase")


def test_force_takes_ownership() -> None:
    obj = created()
    out = apply(obj, config({"replicas": 3}), "ssa", force=True, now=T1)
    assert out["spec"] == {"model": "qwen", "replicas": 3}
    assert owned(out, "ssa", "Apply") == {".spec.replicas"}
    assert owned(out, KUBECTL) == {".spec", ".spec.model"}
    [first, second] = out["metadata"]["managedFields"]
    assert (first["manager"], first["operation"], first["time"], first["apiVersion"]) == ("ssa", "Apply", T1, AV)
    assert second["time"] == T0
    assert out["status"] == obj["status"] and out["metadata"]["uid"] == "u-1"


def test_equal_values_are_shared_not_conflicting() -> None:
    obj = created()
    out = apply(obj, config({"model": "qwen", "replicas": 1}), "ssa", force=False, now=T1)
    assert owned(out, "ssa", "Apply") == {".spec.model", ".spec.replicas"}
    assert owned(out, KUBECTL) == {".spec", ".spec.model", ".spec.replicas"}
    assert {k: v for k, v in out.items() if k != "metadata"} == {k: v for k, v in obj.items() if k != "metadata"}
    # the co-owner changing it takes it alone; the applier then conflicts on it
    new = copy.deepcopy(out)
    new["spec"]["replicas"] = 4
    edited = update_managed_fields(out, new, KUBECTL, now=T2)
    assert owned(edited, "ssa", "Apply") == {".spec.model"}
    with pytest.raises(StatusError):
        apply(edited, config({"model": "qwen", "replicas": 1}), "ssa", force=False, now=T3)


def test_equality_is_json_equality() -> None:
    obj = created(svc(spec={"flag": 1, "ratio": 1}))
    with pytest.raises(StatusError) as err:
        apply(obj, config({"flag": True}), "ssa", force=False, now=T1)  # true is not 1
    assert causes(err.value)[0]["field"] == ".spec.flag"
    assert owned(apply(obj, config({"ratio": 1.0}), "ssa", force=False, now=T1), "ssa", "Apply") == {".spec.ratio"}


def test_dropping_a_field_from_the_configuration_removes_it() -> None:
    out = apply(None, config({"model": "qwen", "replicas": 2, "resources": {"gpu": 1}}), "ssa", force=False, now=T0)
    out = stored(out)
    out = apply(out, config({"model": "qwen"}), "ssa", force=False, now=T1)
    assert out["spec"] == {"model": "qwen"}  # resources emptied and unowned: removed too
    assert owned(out, "ssa", "Apply") == {".spec.model"}
    out = apply(out, config(), "ssa", force=False, now=T2)
    assert "spec" not in out
    assert "managedFields" not in out["metadata"]  # the applier owns nothing any more


def test_dropped_field_owned_by_another_manager_is_kept() -> None:
    obj = created()
    out = apply(obj, config({"model": "qwen", "replicas": 1}), "ssa", force=False, now=T1)
    other = apply(out, config({"replicas": 1}), "other", force=False, now=T1)
    out = apply(other, config({"model": "qwen"}), "ssa", force=False, now=T2)
    assert out["spec"] == {"model": "qwen", "replicas": 1}
    assert owned(out, "ssa", "Apply") == {".spec.model"}
    assert owned(out, "other", "Apply") == {".spec.replicas"}


def test_apply_creates_and_is_idempotent() -> None:
    out = apply(None, config({"model": "qwen"}, namespace="ns", labels={"app": "x"}), "ssa", force=False, now=T0)
    assert out == {"apiVersion": AV, "kind": "LLMService", "spec": {"model": "qwen"},
                   "metadata": {"name": "llm", "namespace": "ns", "labels": {"app": "x"}, "managedFields": [
                       {"manager": "ssa", "operation": "Apply", "apiVersion": AV, "time": T0, "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:model": {}}}}]}}
    assert apply({}, config({"model": "qwen"}), "ssa", force=False, now=T0)["spec"] == {"model": "qwen"}
    live = stored(out)
    again = apply(live, config({"model": "qwen"}, namespace="ns", labels={"app": "x"}), "ssa", force=False, now=T1)
    assert again == live


def test_apply_merges_maps_and_ignores_status_and_system_metadata() -> None:
    obj = created(svc(spec={"model": "q", "resources": {"gpu": 1}}, labels={"app": "x"}))
    cfg = config({"resources": {"memory": "1Gi"}}, labels={"team": "ml"}, uid="other", generation=9)
    cfg["status"] = {"phase": "Hacked"}
    out = apply(obj, cfg, "ssa", force=False, now=T1)
    assert out["spec"] == {"model": "q", "resources": {"gpu": 1, "memory": "1Gi"}}
    assert out["metadata"]["labels"] == {"app": "x", "team": "ml"}
    assert out["metadata"]["uid"] == "u-1" and out["metadata"]["generation"] == 1
    assert out["status"] == {"phase": "Pending"}
    assert owned(out, "ssa", "Apply") == {".spec.resources.memory", ".metadata.labels.team"}


def test_apply_on_the_status_subresource_applies_only_status() -> None:
    obj = created()
    cfg = config({"replicas": 50})
    cfg["status"] = {"phase": "Ready"}
    out = apply(obj, cfg, "ctl", force=False, subresource="status", now=T1)
    assert out["spec"] == obj["spec"] and out["status"] == {"phase": "Ready"}
    assert managers(out)[("ctl", "Apply", "status")] == {"f:status": {"f:phase": {}}}
    assert [e.get("subresource") for e in out["metadata"]["managedFields"]] == ["status", None]


def test_first_apply_to_an_untracked_object_conflicts_with_before_first_apply() -> None:
    legacy = stored(svc())
    with pytest.raises(StatusError) as err:
        apply(legacy, config({"replicas": 2}), "ssa", force=False, now=T1)
    assert err.value.message == (f'Apply failed with 1 conflict: conflict with "{BEFORE_FIRST_APPLY}" using {AV}: '
                                 ".spec.replicas")
    out = apply(legacy, config({"replicas": 1}), "ssa", force=False, now=T1)
    assert owned(out, BEFORE_FIRST_APPLY) == {".spec", ".spec.model", ".spec.replicas"}


def test_apply_requires_a_field_manager() -> None:
    with pytest.raises(StatusError) as err:
        apply(created(), config({"replicas": 1}), "", force=False, now=T1)
    e = err.value
    assert (e.code, e.reason) == (422, "Invalid")
    assert e.message == ('PatchOptions.meta.k8s.io "" is invalid: '
                         "fieldManager: Required value: is required for apply patch")
    assert e.details == {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
         "field": "fieldManager"}]}


@pytest.mark.parametrize(("cfg", "message"), [
    ({"metadata": {"name": "llm", "managedFields": []}}, "metadata.managedFields must be nil"),
    ({"apiVersion": "model.kubellm.io/v1"},
     f"Incorrect version specified in apply patch. Specified patch version: model.kubellm.io/v1, expected: {AV}"),
    ({"metadata": {"name": "other"}}, "the name of the object (other) does not match the name on the URL (llm)"),
    ({"metadata": {"name": "llm", "namespace": "x"}},
     "the namespace of the object (x) does not match the namespace on the URL (ns)"),
])
def test_apply_refuses_a_mismatched_configuration(cfg: dict[str, Any], message: str) -> None:
    with pytest.raises(StatusError) as err:
        apply(created(), {**config({"replicas": 1}), **cfg}, "ssa", force=False, now=T1)
    assert (err.value.code, err.value.message) == (400, message)


def test_apply_keeps_a_configured_resource_version_as_precondition() -> None:
    out = apply(created(), config({"replicas": 1}, resourceVersion="3"), "ssa", force=False, now=T1)
    assert out["metadata"]["resourceVersion"] == "3"
    assert apply(created(), config({"replicas": 1}), "ssa", force=False, now=T1)["metadata"]["resourceVersion"] == "7"


def test_own_update_entry_is_another_manager_for_apply() -> None:
    obj = created(manager="ssa")
    with pytest.raises(StatusError) as err:
        apply(obj, config({"replicas": 2}), "ssa", force=False, now=T1)
    assert causes(err.value)[0]["message"] == f'conflict with "ssa" using {AV}'


def test_inputs_are_not_mutated() -> None:
    obj = created()
    cfg = config({"replicas": 3, "resources": {"gpu": 2}})
    before, cfg_before = copy.deepcopy(obj), copy.deepcopy(cfg)
    apply(obj, cfg, "ssa", force=True, now=T1)
    new = copy.deepcopy(obj)
    new["spec"]["replicas"] = 2
    new_before = copy.deepcopy(new)
    update_managed_fields(obj, new, "x", now=T1)
    assert (obj, cfg, new) == (before, cfg_before, new_before)


# ----- list types: sets and map lists, as structured-merge-diff merges and owns them ----------------------

FA, FB, FC, SHARED = "a.example.com/cleanup", "b.example.com/cleanup", "c.example.com/cleanup", "shared.example.com/x"


def fin(value: str) -> str:
    return f'.metadata.finalizers[="{value}"]'


def cond(kind: str, field: str = "") -> str:
    return f'.status.conditions[type="{kind}"]' + (f".{field}" if field else "")


def src(name: str, field: str = "") -> str:
    return f'.spec.sources[name="{name}"]' + (f".{field}" if field else "")


def status_config(conditions: list[dict[str, Any]], **status: Any) -> dict[str, Any]:
    return {**config(), "status": {"conditions": conditions, **status}}


def status_apply(live: dict[str, Any], manager: str, conditions: list[dict[str, Any]], *, force: bool = False,
                 now: str = T1) -> dict[str, Any]:
    return apply(live, status_config(conditions), manager, force=force, subresource="status", now=now)


def with_status(obj: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {**obj, "status": status}


def rag(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": AV, "kind": "RAGService", "metadata": {"name": "rag", **meta},
            **({} if spec is None else {"spec": spec})}


def docs(uri: str = "https://git.example.com/docs", **extra: Any) -> dict[str, Any]:
    return {"name": "docs", "type": "git", "uri": uri, **extra}


def wiki(uri: str = "https://wiki.example.com", **extra: Any) -> dict[str, Any]:
    return {"name": "wiki", "type": "url", "uri": uri, **extra}


def conflict_fields(err: StatusError) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in causes(err)]


def test_the_walker_says_what_each_field_path_is() -> None:
    from kubellm.apis.listtypes import node_at
    from kubellm.apis.model.v1alpha1 import LLMService, RAGService

    described = {path: node_at(model, path.split(".")).describe() for model, path in [
        (LLMService, "metadata.finalizers"), (LLMService, "metadata.ownerReferences"), (LLMService, "metadata.labels"),
        (LLMService, "metadata.managedFields"), (LLMService, "spec"), (LLMService, "spec.extraArgs"),
        (LLMService, "spec.env"), (LLMService, "spec.placement.clusterAffinity.clusterNames"),
        (LLMService, "spec.placement.clusterAffinity.labelSelector"), (LLMService, "status.conditions"),
        (LLMService, "status.conditions.*.status"), (LLMService, "status.clusters"), (LLMService, "spec.bogus"),
        (RAGService, "spec.sources"), (RAGService, "spec.sources.*.configMapRef"), (RAGService, "spec.llmServiceRef"),
    ]}
    assert described == {
        "metadata.finalizers": "set", "metadata.ownerReferences": "map list by uid", "metadata.labels": "map",
        "metadata.managedFields": "atomic list", "spec": "struct", "spec.extraArgs": "atomic list",
        "spec.env": "atomic list",  # no list type: atomic, as in a CustomResourceDefinition
        "spec.placement.clusterAffinity.clusterNames": "set",
        "spec.placement.clusterAffinity.labelSelector": "atomic struct", "status.conditions": "map list by type",
        "status.conditions.*.status": "scalar", "status.clusters": "map list by name", "spec.bogus": "any",
        "spec.sources": "map list by name", "spec.sources.*.configMapRef": "atomic struct",
        "spec.llmServiceRef": "atomic struct",
    }


def test_fieldsv1_with_list_items_round_trips_in_kube_order() -> None:
    fields: dict[str, Any] = {
        "f:metadata": {"f:finalizers": {".": {}, 'v:"a"': {}, 'v:"b"': {}}},
        "f:status": {"f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:status": {}, "f:type": {}}}}}
    paths = fields_to_set(fields)
    assert {path_string(p) for p in paths} == {
        ".metadata.finalizers", '.metadata.finalizers[="a"]', '.metadata.finalizers[="b"]', cond("Ready"),
        cond("Ready", "status"), cond("Ready", "type")}
    assert set_to_fields(paths) == fields
    mixed = {("spec", "x"), ("spec", KeyElement.of({"name": "b"})), ("spec", KeyElement.of({"name": "a<&>"})),
             ("spec", ValueElement.of("z")), ("spec", ValueElement.of(2)), ("spec", ValueElement.of(True)),
             ("spec", KeyElement.of({"protocol": "TCP", "port": 80}))}
    assert list(set_to_fields(mixed)["f:spec"]) == [  # names, then keys, then values (numbers, strings, booleans)
        "f:x", 'k:{"name":"a\\u003c\\u0026\\u003e"}', 'k:{"name":"b"}', 'k:{"port":80,"protocol":"TCP"}', "v:2",
        'v:"z"', "v:true"]
    assert fields_to_set(set_to_fields(mixed)) == mixed
    assert path_string(("spec", KeyElement.of({"protocol": "TCP", "port": 80}), "x")) == \
        '.spec[port=80,protocol="TCP"].x'
    assert ValueElement.of(1.0) == ValueElement.of(1) != ValueElement.of(True)


def test_two_managers_each_own_their_finalizer() -> None:
    obj = created()
    a = stored(apply(obj, config(finalizers=[FA]), "ctrl-a", force=False, now=T1))
    b = stored(apply(a, config(finalizers=[FB]), "ctrl-b", force=False, now=T2))
    assert b["metadata"]["finalizers"] == [FA, FB]
    assert managers(b)[("ctrl-a", "Apply", "")] == {"f:metadata": {"f:finalizers": {f'v:"{FA}"': {}}}}
    assert owned(b, "ctrl-b", "Apply") == {fin(FB)}
    assert apply(b, config(finalizers=[FA]), "ctrl-a", force=False, now=T3) == b  # applying again: nothing changes
    out = apply(b, config(), "ctrl-a", force=False, now=T3)  # ctrl-a is done with its finalizer
    assert out["metadata"]["finalizers"] == [FB]
    assert ("ctrl-a", "Apply", "") not in managers(out)
    out = apply(stored(out), config(finalizers=[]), "ctrl-b", force=False, now=T3)
    assert "finalizers" not in out["metadata"] and "managedFields" in out["metadata"]  # the creator's fields remain
    assert {e["manager"] for e in out["metadata"]["managedFields"]} == {KUBECTL}


def test_three_managers_and_a_finalizer_two_of_them_own() -> None:
    live = created()
    for manager, finalizers in [("ctrl-a", [FA, SHARED]), ("ctrl-b", [FB, SHARED]), ("ctrl-c", [FC])]:
        live = stored(apply(live, config(finalizers=finalizers), manager, force=False, now=T1))
    assert live["metadata"]["finalizers"] == [FA, FB, SHARED, FC]  # ctrl-b's own item goes before the shared one
    assert owned(live, "ctrl-a", "Apply") == {fin(FA), fin(SHARED)}
    assert owned(live, "ctrl-b", "Apply") == {fin(FB), fin(SHARED)}
    live = stored(apply(live, config(finalizers=[FA]), "ctrl-a", force=False, now=T2))
    assert live["metadata"]["finalizers"] == [FA, FB, SHARED, FC]  # ctrl-b still owns it
    assert owned(live, "ctrl-a", "Apply") == {fin(FA)}
    live = stored(apply(live, config(finalizers=[FB]), "ctrl-b", force=False, now=T3))
    assert live["metadata"]["finalizers"] == [FA, FB, FC]  # its last owner dropped it
    live = stored(apply(live, config(finalizers=[FC, FA]), "ctrl-c", force=False, now=T3))
    assert live["metadata"]["finalizers"] == [FB, FC, FA]  # shared now; ordered as ctrl-c applies them
    assert owned(live, "ctrl-c", "Apply") == {fin(FA), fin(FC)}
    live = stored(apply(live, config(), "ctrl-a", force=False, now=T3))
    assert live["metadata"]["finalizers"] == [FB, FC, FA]


def test_set_items_merge_in_structured_merge_diff_order() -> None:
    """structured-merge-diff's set_test: apply_update_apply_no_overlap and apply_twice_reorder."""
    live = stored(apply(created(), config(finalizers=["a", "c"]), "default", force=False, now=T1))
    edited = copy.deepcopy(live)
    edited["metadata"]["finalizers"] = ["a", "b", "c", "d"]
    live = stored(update_managed_fields(live, edited, "controller", now=T2))
    assert owned(live, "controller") == {fin("b"), fin("d")}
    live = apply(live, config(finalizers=["a", "aprime", "c", "cprime"]), "default", force=False, now=T3)
    assert live["metadata"]["finalizers"] == ["a", "b", "aprime", "c", "d", "cprime"]
    assert owned(live, "default", "Apply") == {fin("a"), fin("aprime"), fin("c"), fin("cprime")}
    assert owned(live, "controller") == {fin("b"), fin("d")}
    live = stored(apply(created(), config(finalizers=["a", "b", "c", "d"]), "default", force=False, now=T1))
    live = apply(live, config(finalizers=["a", "d", "c", "b"]), "default", force=False, now=T2)
    assert live["metadata"]["finalizers"] == ["a", "d", "c", "b"]


def test_conditions_are_owned_per_type_and_field_through_the_status_subresource() -> None:
    live = with_status(created(), phase="Pending")
    ready = {"type": "Ready", "status": "True", "reason": "Serving"}
    live = stored(status_apply(live, "ctrl-a", [ready]))
    live = stored(status_apply(live, "ctrl-b", [{"type": "Synced", "status": "True"}]))
    assert live["status"] == {"phase": "Pending", "conditions": [ready, {"type": "Synced", "status": "True"}]}
    assert managers(live)[("ctrl-a", "Apply", "status")] == {"f:status": {"f:conditions": {
        'k:{"type":"Ready"}': {".": {}, "f:reason": {}, "f:status": {}, "f:type": {}}}}}
    assert owned(live, "ctrl-b", "Apply", "status") == {cond("Synced"), cond("Synced", "status"),
                                                        cond("Synced", "type")}
    assert owned(live, KUBECTL) == owned(created(), KUBECTL)  # the spec's owner is not involved
    with pytest.raises(StatusError) as err:  # a field of another manager's item
        status_apply(live, "ctrl-b", [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}])
    assert err.value.code == 409
    assert err.value.message == ('Apply failed with 1 conflict: conflict with "ctrl-a" with subresource "status": '
                                 '.status.conditions[type="Ready"].status')
    assert conflict_fields(err.value) == [(cond("Ready", "status"), 'conflict with "ctrl-a" with subresource "status"')]
    shared = stored(status_apply(live, "ctrl-b", [{"type": "Ready", "status": "True"},
                                                  {"type": "Synced", "status": "True"}]))  # the same value: shared
    assert shared["status"]["conditions"] == live["status"]["conditions"]
    assert cond("Ready", "status") in owned(shared, "ctrl-a", "Apply", "status") & owned(shared, "ctrl-b", "Apply",
                                                                                              "status")


def test_three_managers_on_conditions_with_force_and_removal() -> None:
    live = with_status(created())
    live = stored(status_apply(live, "ctrl-a", [{"type": "Ready", "status": "True", "reason": "Serving"}]))
    live = stored(status_apply(live, "ctrl-b", [{"type": "Synced", "status": "True"}]))
    live = stored(status_apply(live, "ctrl-c", [{"type": "Ready", "status": "True"}]))  # shares Ready's status
    with pytest.raises(StatusError) as err:
        status_apply(live, "ctrl-c", [{"type": "Ready", "status": "False", "reason": "Down"}])
    assert conflict_fields(err.value) == [(cond("Ready", "reason"), 'conflict with "ctrl-a" with subresource "status"'),
                                          (cond("Ready", "status"), 'conflict with "ctrl-a" with subresource "status"')]
    forced = stored(status_apply(live, "ctrl-c", [{"type": "Ready", "status": "False", "reason": "Down"}], force=True,
                                 now=T2))
    assert forced["status"]["conditions"][0] == {"type": "Ready", "status": "False", "reason": "Down"}
    assert owned(forced, "ctrl-a", "Apply", "status") == {cond("Ready"), cond("Ready", "type")}  # lost two fields
    assert owned(forced, "ctrl-c", "Apply", "status") == {cond("Ready"), cond("Ready", "type"),
                                                          cond("Ready", "status"), cond("Ready", "reason")}
    with pytest.raises(StatusError) as err:
        status_apply(forced, "ctrl-a", [{"type": "Ready", "status": "True", "reason": "Serving"}], now=T3)
    assert {m for _, m in conflict_fields(err.value)} == {'conflict with "ctrl-c" with subresource "status"'}
    out = stored(status_apply(forced, "ctrl-b", [], now=T3))  # ctrl-b removes its condition
    assert [c["type"] for c in out["status"]["conditions"]] == ["Ready"]
    assert ("ctrl-b", "Apply", "status") not in managers(out)
    out = stored(status_apply(out, "ctrl-c", [], now=T3))  # Ready stays: ctrl-a still owns the item
    assert out["status"]["conditions"] == [{"type": "Ready"}]  # ... but not the fields only ctrl-c owned
    out = status_apply(out, "ctrl-a", [], now=T3)
    assert "status" not in out  # nobody owns anything in it any more


def test_spec_sources_are_merged_by_name() -> None:
    base = {"llmServiceRef": {"name": "llm"}, "embedding": {"model": "minilm"}}
    live = stored(apply(None, rag({**base, "sources": [docs()]}, namespace="ns"), "ctrl-a", force=False, now=T0))
    live = stored(apply(live, rag({"sources": [wiki()]}), "ctrl-b", force=False, now=T1))
    assert live["spec"]["sources"] == [docs(), wiki()]
    assert owned(live, "ctrl-b", "Apply") == {src("wiki"), src("wiki", "name"), src("wiki", "type"),
                                              src("wiki", "uri")}
    assert ".spec.llmServiceRef" in owned(live, "ctrl-a", "Apply")  # an atomic map: one field
    with pytest.raises(StatusError) as err:
        apply(live, rag({"sources": [wiki(), docs(uri="https://mirror.example.com/docs")]}), "ctrl-b", force=False,
              now=T2)
    assert err.value.message == 'Apply failed with 1 conflict: conflict with "ctrl-a": .spec.sources[name="docs"].uri'
    with pytest.raises(StatusError) as err:
        apply(live, rag({"llmServiceRef": {"name": "other"}}), "ctrl-b", force=False, now=T2)
    assert conflict_fields(err.value) == [(".spec.llmServiceRef", 'conflict with "ctrl-a"')]
    live = stored(apply(live, rag({"sources": [wiki(), {"name": "docs", "uri": "https://mirror.example.com/docs"}]}),
                        "ctrl-b", force=True, now=T2))
    assert live["spec"]["sources"] == [wiki(), docs(uri="https://mirror.example.com/docs")]  # ordered as ctrl-b has
    assert owned(live, "ctrl-a", "Apply") >= {src("docs"), src("docs", "name"), src("docs", "type")}
    assert src("docs", "uri") not in owned(live, "ctrl-a", "Apply")
    live = stored(apply(live, rag(base), "ctrl-a", force=False, now=T3))  # ctrl-a drops docs; ctrl-b owns the item
    assert live["spec"]["sources"] == [wiki(), {"name": "docs", "uri": "https://mirror.example.com/docs"}]
    live = stored(apply(live, rag({"sources": [wiki()]}), "ctrl-b", force=False, now=T3))
    assert live["spec"]["sources"] == [wiki()]
    live = apply(live, rag({"sources": []}), "ctrl-b", force=False, now=T3)
    assert "sources" not in live["spec"] and live["spec"]["llmServiceRef"] == {"name": "llm"}


def test_map_list_items_keep_the_order_the_appliers_give() -> None:
    live = stored(apply(None, rag({"sources": [docs(), wiki()]}), "ctrl-a", force=False, now=T0))
    live = stored(apply(live, rag({"sources": [{"name": "blog", "type": "url", "uri": "u"}, wiki()]}), "ctrl-b",
                        force=False, now=T1))
    assert [s["name"] for s in live["spec"]["sources"]] == ["docs", "blog", "wiki"]
    live = apply(live, rag({"sources": [wiki(), docs()]}), "ctrl-a", force=False, now=T2)
    assert [s["name"] for s in live["spec"]["sources"]] == ["blog", "wiki", "docs"]


def test_update_operations_take_ownership_of_items() -> None:
    live = stored(apply(created(), config(finalizers=[FA]), "ctrl-a", force=False, now=T1))
    edited = copy.deepcopy(live)
    edited["metadata"]["finalizers"].append("edit.example.com/x")
    live = stored(update_managed_fields(live, edited, "kubectl-edit", now=T2))
    assert owned(live, "kubectl-edit") == {fin("edit.example.com/x")}
    assert owned(live, "ctrl-a", "Apply") == {fin(FA)}
    edited = copy.deepcopy(live)
    edited["metadata"]["finalizers"] = ["edit.example.com/x"]  # an edit removes ctrl-a's finalizer
    out = update_managed_fields(live, edited, "kubectl-edit", now=T3)
    assert ("ctrl-a", "Apply", "") not in managers(out)

    live = stored(status_apply(with_status(created()), "ctrl-a", [{"type": "Ready", "status": "True"}]))
    put = copy.deepcopy(live)
    put["status"]["conditions"][0]["status"] = "False"
    put["status"]["conditions"].append({"type": "Degraded", "status": "True"})
    live = stored(update_managed_fields(live, put, "controller", subresource="status", now=T2))
    assert owned(live, "controller", subresource="status") == {
        cond("Ready", "status"), cond("Degraded"), cond("Degraded", "type"), cond("Degraded", "status")}
    assert owned(live, "ctrl-a", "Apply", "status") == {cond("Ready"), cond("Ready", "type")}
    with pytest.raises(StatusError) as err:
        status_apply(live, "ctrl-a", [{"type": "Ready", "status": "True"}], now=T3)
    assert conflict_fields(err.value) == [(cond("Ready", "status"),
                                           f'conflict with "controller" with subresource "status" using {AV}')]
    first = with_status(created())
    put = copy.deepcopy(first)
    put["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    out = update_managed_fields(first, put, "controller", subresource="status", now=T2)
    assert managers(out)[("controller", "Update", "status")] == {"f:status": {"f:conditions": {
        ".": {}, 'k:{"type":"Ready"}': {".": {}, "f:status": {}, "f:type": {}}}}}


def test_an_updaters_field_does_not_keep_an_item_its_applier_drops() -> None:
    """structured-merge-diff's multiple_appliers_test cases remove_one_with_dangling_subitem_keep_one and
    remove_one_keep_one_with_dangling_subitem, on a type with a set inside map-list items."""
    from pydantic import Field

    from kubellm.apis.base import APIModel
    from kubellm.apis.listtypes import map_list, set_list
    from kubellm.apis.meta.v1.types import ObjectMeta, TypedModel

    class Item(APIModel):
        name: str = ""
        value: list[str] = set_list(default_factory=list)

    class Spec(APIModel):
        list_of_lists: list[Item] = map_list("name", default_factory=list)

    class Thing(TypedModel):
        metadata: ObjectMeta = Field(default_factory=ObjectMeta)
        spec: Spec = Field(default_factory=Spec)

    def step(live: dict[str, Any] | None, manager: str, items: list[dict[str, Any]], update: bool = False) -> Any:
        obj = {"apiVersion": "x/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"listOfLists": items}}
        if update:
            return update_managed_fields(live, {**copy.deepcopy(live or {}), "spec": obj["spec"]}, manager,
                                         now=T1, schema=Thing)
        return apply(live, obj, manager, force=False, now=T1, schema=Thing)

    def item(name: str, *values: str) -> dict[str, Any]:
        return {"name": name, "value": list(values)} if values else {"name": name}

    def lol(name: str, field: str = "") -> str:
        return f'.spec.listOfLists[name="{name}"]' + field

    live = step(None, "apply-one", [item("a"), item("b", "c")])
    live = step(live, "apply-two", [item("a", "b")])
    live = step(live, "controller", [item("a", "b"), item("b", "c", "d")], update=True)
    live = step(live, "apply-one", [item("a")])
    assert live["spec"]["listOfLists"] == [item("a", "b")]
    assert owned(live, "apply-one", "Apply") == {lol("a"), lol("a", ".name")}
    assert owned(live, "apply-two", "Apply") == {lol("a"), lol("a", ".name"), lol("a", '.value[="b"]')}
    assert ("controller", "Update", "") not in managers(live)

    live = step(None, "apply-one", [item("a"), item("b", "c")])
    live = step(live, "apply-two", [item("b", "d")])
    live = step(live, "controller", [item("a"), item("b", "c", "d", "e")], update=True)
    live = step(live, "apply-one", [item("a")])
    assert live["spec"]["listOfLists"] == [item("a"), item("b", "d", "e")]
    assert owned(live, "controller") == {lol("b", '.value[="e"]')}


def test_applied_lists_whose_items_cannot_be_told_apart_are_refused() -> None:
    prefix = f"failed to create typed patch object (ns/llm; {AV}, Kind=LLMService): "
    cases = [
        (config(finalizers=["a", "b", "a"]), '.metadata.finalizers: duplicate entries for key [="a"]'),
        (config(finalizers=["a", {"b": 1}]),
         ".metadata.finalizers: element 1: associative list without keys has an element that's a map type"),
        (status_config([{"status": "True"}]), '.status.conditions: element 0: associative list with keys has an '
         'element that omits all key fields ["type"] (and doesn\'t have default values for any key fields)'),
        (status_config([{"type": "A"}, {"type": "A"}, {"type": "B"}, {"type": "B"}]),
         'errors:\n  .status.conditions: duplicate entries for key [type="A"]\n'
         '  .status.conditions: duplicate entries for key [type="B"]'),
    ]
    for cfg, message in cases:
        with pytest.raises(StatusError) as err:
            apply(with_status(created()), cfg, "m", force=False, subresource="status" if "status" in cfg else "",
                  now=T1)
        assert (err.value.code, err.value.reason, err.value.message) == (400, "BadRequest", prefix + message)


def test_live_lists_whose_items_cannot_be_told_apart_are_tracked_whole() -> None:
    live = with_status(created(), conditions=[{"type": "A"}, {"type": "A"}, {"status": "no type"}])
    put = copy.deepcopy(live)
    put["status"]["conditions"].append({"type": "B"})
    out = update_managed_fields(live, put, "controller", subresource="status", now=T1)
    assert owned(out, "controller", subresource="status") == {".status.conditions"}
    dup = with_status(created(), conditions=[{"type": "A", "status": "x"}, {"type": "A", "status": "y"}])
    put = copy.deepcopy(dup)
    put["status"]["conditions"] = [{"type": "A", "status": "z"}]
    out = update_managed_fields(dup, put, "controller", subresource="status", now=T1)
    assert owned(out, "controller", subresource="status") == {cond("A"), cond("A", "status"), cond("A", "type")}
    out = status_apply(dup, "ctrl", [{"type": "A", "status": "z"}])
    assert out["status"]["conditions"] == [{"type": "A", "status": "z"}]  # repeated items merge into the applied one


def test_ownership_written_when_lists_were_atomic_still_works() -> None:
    legacy = created(svc(finalizers=[FA]))
    assert ".metadata.finalizers" in owned(legacy, KUBECTL)
    legacy["metadata"]["managedFields"] = [{**legacy["metadata"]["managedFields"][0], "fieldsV1": {
        "f:metadata": {"f:finalizers": {}}, "f:spec": {".": {}, "f:model": {}, "f:replicas": {}}}}]
    out = stored(apply(legacy, config(finalizers=[FB]), "ctrl-b", force=False, now=T1))
    assert out["metadata"]["finalizers"] == [FA, FB]
    assert ".metadata.finalizers" in owned(out, KUBECTL)  # owns the list node, as structured-merge-diff keeps it
    out = apply(out, config(), "ctrl-b", force=False, now=T2)
    assert out["metadata"]["finalizers"] == [FA]


def test_owner_references_are_a_map_list_by_uid_and_atomic_lists_stay_whole() -> None:
    ref = {"apiVersion": AV, "kind": "RAGService", "name": "r", "uid": "u-r"}
    live = stored(apply(created(), config(ownerReferences=[ref]), "ctrl-a", force=False, now=T1))
    live = stored(apply(live, config(ownerReferences=[{**ref, "name": "s", "uid": "u-s"}]), "ctrl-b", force=False,
                        now=T1))
    assert [r["uid"] for r in live["metadata"]["ownerReferences"]] == ["u-r", "u-s"]
    assert '.metadata.ownerReferences[uid="u-r"].kind' in owned(live, "ctrl-a", "Apply")
    live = stored(apply(live, config({"extraArgs": ["--a"]}), "ctrl-a", force=True, now=T2))
    with pytest.raises(StatusError) as err:
        apply(live, config({"extraArgs": ["--a", "--b"]}), "ctrl-b", force=False, now=T2)
    assert conflict_fields(err.value) == [(".spec.extraArgs", 'conflict with "ctrl-a"')]


def test_objects_of_unknown_types_keep_their_lists_atomic() -> None:
    obj = {"apiVersion": "other.example.com/v1", "kind": "Thing", "metadata": {"name": "t", "finalizers": ["a"]},
           "spec": {"items": [{"name": "x"}]}}
    out = update_managed_fields(None, obj, "m", now=T0)
    assert owned(out, "m") == {".metadata.finalizers", '.metadata.finalizers[="a"]', ".spec", ".spec.items"}


# ----- properties ---------------------------------------------------------------------------------------


def _items(manager: int) -> st.SearchStrategy[dict[str, Any]]:
    """A RAGService configuration of manager `manager`, drawn from items no other manager uses."""
    finalizers = st.lists(st.sampled_from([f"m{manager}.example.com/f{j}" for j in range(3)]), unique=True)
    labels = st.dictionaries(st.sampled_from([f"m{manager}-l{j}" for j in range(3)]), st.sampled_from(["x", "y"]))
    sources = st.lists(st.tuples(st.sampled_from([f"m{manager}-s{j}" for j in range(3)]),
                                 st.sampled_from(["u1", "u2"])), unique_by=lambda t: t[0])
    conditions = st.lists(st.tuples(st.sampled_from([f"M{manager}C{j}" for j in range(3)]),
                                    st.sampled_from(["True", "False"])), unique_by=lambda t: t[0])
    return st.fixed_dictionaries({"finalizers": finalizers, "labels": labels, "sources": sources,
                                  "conditions": conditions})


def _configs(items: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The main-resource and the status configurations of drawn items.

    Empty lists are left out where nothing else would own the place they sit in: as in structured-merge-diff,
    an empty set or map list owns nothing, so `status: {conditions: []}` applied where the object has no
    status adds one that nobody owns, and `finalizers: []` an empty list ObjectMeta's encoding drops again.
    An empty map (`status: {}`) is owned, as a value."""
    meta = {k: items[k] for k in ("finalizers", "labels") if items[k]}
    main = rag({"sources": [{"name": n, "type": "git", "uri": u} for n, u in items["sources"]]}, **meta)
    conditions = [{"type": t, "status": s} for t, s in items["conditions"]]
    status = {**rag(), "status": {"conditions": conditions} if conditions else {}}
    return main, status


def _expected_paths(items: dict[str, Any]) -> tuple[set[str], set[str]]:
    main = {fin(f) for f in items["finalizers"]} | {f".metadata.labels.{k}" for k in items["labels"]}
    main |= {src(n, f) for n, _ in items["sources"] for f in ("", "name", "type", "uri")}
    status = {cond(t, f) for t, _ in items["conditions"] for f in ("", "type", "status")} or {".status"}
    return main, status


RAG_LIVE = {"apiVersion": AV, "kind": "RAGService", "metadata": {"name": "rag", "namespace": "ns"},
            "spec": {"replicas": 1}, "status": {}}


def _as_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the Store keeps it: decoded into its type and encoded again (defaults filled in)."""
    from kubellm.apis.model.v1alpha1 import RAGService

    return RAGService.model_validate(obj, strict=False).to_dict()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2).flatmap(lambda m: st.tuples(st.just(m), _items(m))),
                min_size=1, max_size=8))
def test_disjoint_managers_never_conflict(steps: list[tuple[int, dict[str, Any]]]) -> None:
    live = _as_stored(update_managed_fields(None, RAG_LIVE, "creator", now=T0))
    last: dict[int, dict[str, Any]] = {}
    for manager, items in steps:
        main, status = _configs(items)
        live = _as_stored(apply(live, main, f"m{manager}", force=False, now=T1))
        live = _as_stored(apply(live, status, f"m{manager}", force=False, subresource="status", now=T1))
        last[manager] = items
    assert sorted(live["metadata"].get("finalizers", [])) == sorted(f for i in last.values() for f in i["finalizers"])
    assert live["metadata"].get("labels", {}) == {k: v for i in last.values() for k, v in i["labels"].items()}
    assert sorted((s["name"], s["uri"]) for s in live["spec"].get("sources", [])) == sorted(
        s for i in last.values() for s in i["sources"])
    assert sorted((c["type"], c["status"]) for c in live.get("status", {}).get("conditions", [])) == sorted(
        c for i in last.values() for c in i["conditions"])
    for manager, items in last.items():
        main_paths, status_paths = _expected_paths(items)
        assert owned(live, f"m{manager}", "Apply") == main_paths
        assert owned(live, f"m{manager}", "Apply", "status") == status_paths


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=2), _items(0)), min_size=1, max_size=6))
def test_applying_the_same_configuration_twice_is_a_no_op(steps: list[tuple[int, dict[str, Any]]]) -> None:
    live = _as_stored(update_managed_fields(None, RAG_LIVE, "creator", now=T0))
    for manager, items in steps:  # every manager draws from the same items: they overlap and force
        main, status = _configs(items)
        live = _as_stored(apply(live, main, f"m{manager}", force=True, now=T1))
        assert _as_stored(apply(live, main, f"m{manager}", force=False, now=T2)) == live
        live = _as_stored(apply(live, status, f"m{manager}", force=True, subresource="status", now=T1))
        assert _as_stored(apply(live, status, f"m{manager}", force=False, subresource="status", now=T2)) == live
