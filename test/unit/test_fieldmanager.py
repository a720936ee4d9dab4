"""Field management: managedFields tracking for writes and server-side apply (no I/O)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubellm.apis.errors import StatusError
from kubellm.registry.fieldmanager import (
    ANCIENT_CHANGES,
    BEFORE_FIRST_APPLY,
    apply,
    fields_to_set,
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
    return {"." + ".".join(p) for p in fields_to_set(fields)} if fields is not None else set()


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


@pytest.mark.parametrize("bad", [{"k:{\"name\":\"a\"}": {}}, {"f:spec": []}, {".": {}}, {"f:a": {".": {"x": {}}}}])
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
    assert owned(out, "m") == {".metadata.finalizers", ".spec", ".spec.model", ".spec.replicas"}


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
