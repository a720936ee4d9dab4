"""An LLMService's status from its members' Deployments and pods (pure), and the drift check."""

from __future__ import annotations

from typing import Any

from kubellm.controller.applier import contains
from kubellm.controller.llmservice.placement import Decision
from kubellm.controller.llmservice.status import ClusterView, cluster_status, overall, pod_problem

LLM: dict[str, Any] = {"metadata": {"name": "qwen", "namespace": "ml", "generation": 3}, "spec": {"replicas": 2}}
STAMP = "2026-11-29T12:00:00Z"


def deployment(wanted: int, ready: int, *, generation: int = 1, observed: int = 1) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": {"replicas": wanted},
            "status": {"observedGeneration": observed, "replicas": wanted, "readyReplicas": ready}}


def pod(name: str, *, waiting: str = "", unschedulable: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {}
    if waiting:
        status["containerStatuses"] = [{"name": "vllm", "image": "vllm:bad",
                                        "state": {"waiting": {"reason": waiting, "message": "not found"}}}]
    if unschedulable:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": unschedulable}]
    return {"metadata": {"name": name}, "status": status}


def test_cluster_phases() -> None:
    def phase(**kw: Any) -> tuple[str, str]:
        args = {"name": "gpu-a", "placed": 2, "connected": True, "deployment": None, "pods": [], **kw}
        entry = cluster_status(ClusterView(**args))
        return entry["phase"], entry["message"]

    assert phase(connected=False, note="cannot connect") == ("Pending", "cannot connect")
    assert phase() == ("Pending", "creating the Deployment")
    assert phase(deployment=deployment(2, 0)) == ("Pending", "waiting for pods")
    assert phase(deployment=deployment(2, 0), pods=[pod("a")])[0] == "Loading"
    assert phase(deployment=deployment(2, 1), pods=[pod("a"), pod("b")]) == ("Scaling", "1/2 replicas ready")
    assert phase(deployment=deployment(2, 2), pods=[pod("a"), pod("b")]) == ("Serving", "2/2 replicas ready")
    # a Deployment whose controller has not seen its latest spec is not Serving yet
    assert phase(deployment=deployment(2, 2, generation=2, observed=1))[0] == "Scaling"
    assert phase(deployment=deployment(2, 0), pods=[pod("a", waiting="ImagePullBackOff")]) == (
        "Failed", "image pull failed: ImagePullBackOff (not found) on gpu-a")
    assert phase(deployment=deployment(2, 0), pods=[pod("a", unschedulable="0/2 nodes are available")]) == (
        "Pending", "pods cannot be scheduled: 0/2 nodes are available on gpu-a")
    assert phase(placed=0, connected=False, note="gpu-a unreachable")[0] == "Removing"


def test_pod_problem_prefers_failures_and_skips_terminating_pods() -> None:
    terminating = pod("a", waiting="ErrImagePull")
    terminating["metadata"]["deletionTimestamp"] = STAMP
    assert pod_problem([terminating]) is None
    assert pod_problem([pod("a", unschedulable="no room"), pod("b", waiting="ErrImagePull")]) == (
        "Failed", "image pull failed: ErrImagePull (not found)")


def test_overall_phase_message_and_conditions() -> None:
    placed = Decision({"gpu-a": 1, "gpu-b": 1}, message="2 replicas placed: gpu-a 1, gpu-b 1")
    serving = [{"name": "gpu-b", "replicas": 1, "readyReplicas": 1, "phase": "Serving", "message": "1/1"},
               {"name": "gpu-a", "replicas": 1, "readyReplicas": 1, "phase": "Serving", "message": "1/1"}]
    st = overall(LLM, placed, serving, "http://qwen.ml.svc.cluster.local:8000/v1", "sel", STAMP)
    assert (st["phase"], st["replicas"], st["readyReplicas"], st["observedGeneration"]) == ("Serving", 2, 2, 3)
    assert st["endpoint"] == "http://qwen.ml.svc.cluster.local:8000/v1"
    assert [c["name"] for c in st["clusters"]] == ["gpu-a", "gpu-b"]
    assert {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]} == {
        "Placed": ("True", "Placed"), "Ready": ("True", "Serving")}

    loading = [dict(serving[0], readyReplicas=0, phase="Loading", message="loading"), serving[1]]
    st2 = overall({**LLM, "status": st}, placed, loading, "e", "sel", "2026-11-29T12:01:00Z")
    assert st2["phase"] == "Scaling" and "gpu-b: loading" in st2["message"]
    ready = next(c for c in st2["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["lastTransitionTime"] == "2026-11-29T12:01:00Z"
    placed_cond = next(c for c in st2["conditions"] if c["type"] == "Placed")
    assert placed_cond["lastTransitionTime"] == STAMP  # unchanged status keeps its transition time

    nowhere = Decision({}, unschedulable=2, reason="Unschedulable",
                       message="no Ready cluster has a node with 8 free GPUs (gpu-a: largest free 4)")
    failed = overall(LLM, nowhere, [], "e", "sel", STAMP)
    assert failed["phase"] == "Failed" and failed["message"] == nowhere.message and failed["endpoint"] == ""
    assert {c["type"]: c["reason"] for c in failed["conditions"]} == {"Placed": "Unschedulable", "Ready": "Failed"}

    broken = [dict(serving[0], phase="Failed", message="image pull failed: ErrImagePull on gpu-b"), serving[1]]
    assert overall(LLM, placed, broken, "e", "s", STAMP)["message"] == "image pull failed: ErrImagePull on gpu-b"


def test_contains_ignores_server_defaults_but_not_changes() -> None:
    want = {"spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": "v:1", "args": ["--a"]}]}}}}
    live = {"metadata": {"uid": "x"}, "spec": {"revisionHistoryLimit": 10, "template": {"spec": {
        "dnsPolicy": "ClusterFirst",
        "containers": [{"name": "vllm", "image": "v:1", "args": ["--a"], "terminationMessagePath": "/dev/x"}]}}}}
    assert contains(want, live)
    edited = {"spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": "hacked", "args": ["--a"]}]}}}}
    assert not contains(want, edited)
    assert not contains({"spec": {"args": ["--a", "--b"]}}, {"spec": {"args": ["--a"]}})
    assert not contains({"spec": {"replicas": 2}}, {"spec": {}})


def test_the_controllers_predicates_read_typed_objects_and_dicts_alike() -> None:
    from kubellm.apis.model.v1alpha1 import LLMService
    from kubellm.controller.llmservice.controller import UNSETTLED, clusters_of, spec_or_deletion

    data: dict[str, Any] = {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
            "metadata": {"name": "x", "namespace": "n", "generation": 1}, "spec": {"model": "m"},
            "status": {"phase": "Serving", "clusters": [{"name": "gpu-a", "replicas": 1}]}}
    typed = LLMService.model_validate(data)
    assert clusters_of(typed) == clusters_of(data) == ["gpu-a"]
    loading = typed.model_copy(deep=True)
    assert loading.status is not None
    loading.status.phase = "Loading"
    assert clusters_of(loading) == ["gpu-a", UNSETTLED]
    deleting = typed.model_copy(deep=True)
    deleting.metadata.deletion_timestamp = STAMP
    assert spec_or_deletion(typed, deleting) and not spec_or_deletion(typed, loading)
    assert spec_or_deletion(data, {**data, "metadata": {**data["metadata"], "generation": 2}})
