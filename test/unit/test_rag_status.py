"""A RAGService's status from its LLMService and its members' objects (pure), and the controller's mappings: which
LLMService and clusters a RAGService is indexed by, which member objects are its own."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from kubellm.apis.model.v1alpha1.types import RAG_PHASES
from kubellm.client import errors
from kubellm.controller.members import DEPLOYMENTS, PODS, SERVICES, Members
from kubellm.controller.ragservice import controller, status
from kubellm.controller.ragservice.reconciler import (
    CLUSTERS_ANNOTATION,
    RAGServiceReconciler,
    owned_by,
    owner_of,
    recorded_clusters,
)
from kubellm.controller.ragservice.resources import rag_objects
from kubellm.controller.ragservice.status import (
    ClusterPhase,
    LLMReadiness,
    MemberView,
    cleanup_pending,
    cluster_phase,
    llm_readiness,
    overall,
    pod_problem,
    target_clusters,
)
from kubellm.controller.runtime.reconciler import Result

NS = "chat"
STAMP = "2026-11-29T12:00:00Z"
LATER = "2026-11-29T12:05:00Z"
RAG: dict[str, Any] = {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "RAGService",
                       "metadata": {"name": "docs", "namespace": NS, "generation": 2, "uid": "u-1"},
                       "spec": {"llmServiceRef": {"name": "qwen"}, "embedding": {"model": "MiniLM"}, "replicas": 1}}
ENDPOINT = "http://docs-rag.chat.svc.cluster.local"
LLM_URL = "http://qwen.chat.svc.cluster.local:8000/v1"
SERVING_LLM = LLMReadiness("qwen", True, "LLMServiceServing", "LLMService qwen is Serving")


def llm(phase: str = "", *, ready: int = 0, clusters: list[dict[str, Any]] | None = None,
        message: str = "", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "qwen", "namespace": NS}
    if deleting:
        meta["deletionTimestamp"] = STAMP
    out: dict[str, Any] = {"metadata": meta, "spec": {"model": "Qwen/Qwen2.5-3B-Instruct"}}
    if phase:
        out["status"] = {"phase": phase, "message": message, "readyReplicas": ready, "clusters": clusters or [],
                         "endpoint": "http://qwen.chat.svc.cluster.local:8000/v1" if ready else ""}
    return out


def deployment(wanted: int, ready: int, *, generation: int = 1, observed: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": "docs-rag", "generation": generation}, "spec": {"replicas": wanted},
            "status": {"observedGeneration": observed, "replicas": wanted, "readyReplicas": ready}}


def pod(name: str, *, waiting: str = "", unschedulable: str = "") -> dict[str, Any]:
    st: dict[str, Any] = {}
    if waiting:
        st["containerStatuses"] = [{"name": "chat-ui", "image": "rag:bad",
                                    "state": {"waiting": {"reason": waiting, "message": "back-off"}}}]
    if unschedulable:
        st["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                             "message": unschedulable}]
    return {"metadata": {"name": name}, "status": st}


def claim(phase: str) -> dict[str, Any]:
    return {"metadata": {"name": "docs-rag-chroma"}, "status": {"phase": phase}}


# --- the LLMService -----------------------------------------------------------------------------------------


def test_llm_readiness() -> None:
    missing = llm_readiness("qwen", None)
    assert (missing.ready, missing.reason) == (False, "LLMServiceNotFound")
    assert missing.waiting == "waiting for LLMService qwen: it does not exist in this namespace"
    assert llm_readiness("qwen", llm()).waiting == "waiting for LLMService qwen: it has no status yet"
    loading = llm_readiness("qwen", llm("Loading", message="gpu-a: 0/1 replicas ready: the model is loading"))
    assert (loading.ready, loading.reason) == (False, "LLMServiceNotServing")
    assert loading.waiting == "waiting for LLMService qwen: Loading: gpu-a: 0/1 replicas ready: the model is loading"
    failed = llm_readiness("qwen", llm("Failed", message="image pull failed: ErrImagePull on gpu-a"))
    assert not failed.ready and failed.message == "Failed: image pull failed: ErrImagePull on gpu-a"
    serving = llm_readiness("qwen", llm("Serving", ready=1, message="1/1 replicas ready on gpu-a"))
    assert (serving.ready, serving.reason) == (True, "LLMServiceServing")
    assert serving.message == ("LLMService qwen is Serving at http://qwen.chat.svc.cluster.local:8000/v1: "
                               "1/1 replicas ready on gpu-a")
    # a scaling LLMService answers with the replicas it has; without any it does not
    assert llm_readiness("qwen", llm("Scaling", ready=1)).ready
    assert not llm_readiness("qwen", llm("Scaling", ready=0)).ready
    deleting = llm_readiness("qwen", llm("Serving", ready=1, deleting=True))
    assert (deleting.ready, deleting.reason) == (False, "LLMServiceDeleting")
    assert llm_readiness("", None).message == "spec.llmServiceRef.name is empty"


def test_target_clusters_are_where_the_llmservice_has_replicas() -> None:
    assert target_clusters(None) == []
    assert target_clusters(llm()) == []
    entries = [{"name": "gpu-b", "replicas": 1, "phase": "Loading"},
               {"name": "gpu-a", "replicas": 2, "phase": "Serving"},
               {"name": "gpu-c", "replicas": 0, "phase": "Removing"},
               {"name": "gpu-d", "replicas": 1, "phase": "Removing"}]
    assert target_clusters(llm("Scaling", clusters=entries)) == ["gpu-a", "gpu-b"]


# --- one cluster -------------------------------------------------------------------------------------------


def phase(**kw: Any) -> tuple[str, str]:
    result = cluster_phase(MemberView(**{"name": "gpu-a", "connected": True, **kw}))
    return result.phase, result.message


def test_cluster_phases() -> None:
    assert phase(connected=False, note="cannot connect to gpu-a: refused") == ("Pending",
                                                                              "cannot connect to gpu-a: refused")
    assert phase(refused="the member refused the PersistentVolumeClaim docs-rag-chroma: forbidden") == (
        "Failed", "the member refused the PersistentVolumeClaim docs-rag-chroma: forbidden")
    assert phase() == ("Pending", "creating the Deployment")
    assert phase(deployment=deployment(1, 0)) == ("Pending", "waiting for pods")
    assert phase(deployment=deployment(1, 0), claim=claim("Pending")) == (
        "Pending", "waiting for pods (the vector store's claim docs-rag-chroma is Pending: not bound to a volume)")
    assert phase(deployment=deployment(1, 0), pods=[pod("a")]) == (
        "Indexing", "0/1 replicas ready: the chat app is starting and indexing its sources")
    assert phase(deployment=deployment(2, 1), pods=[pod("a"), pod("b")])[0] == "Indexing"
    assert phase(deployment=deployment(1, 1), pods=[pod("a")], claim=claim("Bound")) == (
        "Serving", "1/1 replicas ready")
    # a Deployment whose controller has not seen its latest spec (a hand edit being put back) is not Serving
    assert phase(deployment=deployment(1, 1, generation=3, observed=2), pods=[pod("a")])[0] == "Indexing"
    assert phase(deployment=deployment(1, 0), pods=[pod("a", waiting="ImagePullBackOff")]) == (
        "Failed", "image pull failed: ImagePullBackOff (back-off)")
    assert phase(deployment=deployment(1, 0), pods=[pod("a", waiting="CrashLoopBackOff")]) == (
        "Failed", "the chat app cannot run: CrashLoopBackOff: back-off")
    assert phase(deployment=deployment(1, 0), pods=[pod("a", unschedulable="pod has unbound immediate "
                                                                             "PersistentVolumeClaims")],
                 claim=claim("Pending")) == (
        "Pending", "pods cannot be scheduled: pod has unbound immediate PersistentVolumeClaims (the vector store's "
                   "claim docs-rag-chroma is Pending: not bound to a volume)")
    assert phase(deployment=deployment(1, 0), claim=claim("Lost"))[0] == "Failed"
    assert phase(deployment=deployment(1, 0), note="applying the objects failed: timeout") == (
        "Pending", "applying the objects failed: timeout")
    counts = cluster_phase(MemberView("gpu-a", True, deployment(3, 2), [pod("a")]))
    assert (counts.wanted, counts.ready) == (3, 2)


def test_pod_problem_prefers_failures_and_skips_terminating_pods() -> None:
    terminating = pod("a", waiting="ErrImagePull")
    terminating["metadata"]["deletionTimestamp"] = STAMP
    assert pod_problem([terminating]) is None
    assert pod_problem([pod("a", unschedulable="no room"), pod("b", waiting="ErrImagePull")]) == (
        "Failed", "image pull failed: ErrImagePull (back-off)")
    assert pod_problem([pod("a", unschedulable="no room")]) == ("Pending", "pods cannot be scheduled: no room")


# --- the RAGService --------------------------------------------------------------------------------------------


def condition(st: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in st["conditions"] if c["type"] == kind)


def conditions(st: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]}


def test_pending_while_the_llmservice_is_missing_or_not_serving() -> None:
    st = overall(RAG, llm_readiness("qwen", None), [], ENDPOINT, STAMP)
    assert st["phase"] == "Pending" and st["phase"] in RAG_PHASES
    assert st["message"] == "waiting for LLMService qwen: it does not exist in this namespace"
    assert (st["endpoint"], st["readyReplicas"], st["observedGeneration"]) == ("", 0, 2)
    assert conditions(st) == {"LLMServiceReady": ("False", "LLMServiceNotFound"), "Ready": ("False", "Pending")}
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["message"] == st["message"] and ready["observedGeneration"] == 2

    # the app may already run (it indexes while the model loads): still Pending until the LLMService answers
    loading = llm_readiness("qwen", llm("Loading", message="gpu-a: 0/1 replicas ready: the model is loading"))
    indexing = [ClusterPhase("gpu-a", "Serving", "1/1 replicas ready", 1, 1)]
    st = overall(RAG, loading, indexing, ENDPOINT, STAMP)
    assert st["phase"] == "Pending"
    assert st["message"] == "waiting for LLMService qwen: Loading: gpu-a: 0/1 replicas ready: the model is loading"
    llm_cond = next(c for c in st["conditions"] if c["type"] == "LLMServiceReady")
    assert llm_cond["message"] == st["message"]


def test_serving_indexing_and_failed() -> None:
    serving = [ClusterPhase("gpu-b", "Serving", "1/1 replicas ready", 1, 1),
               ClusterPhase("gpu-a", "Serving", "1/1 replicas ready", 1, 1)]
    st = overall(RAG, SERVING_LLM, serving, ENDPOINT, STAMP)
    assert (st["phase"], st["endpoint"], st["readyReplicas"]) == ("Serving", ENDPOINT, 2)
    assert st["message"] == "2/2 replicas ready on gpu-b, gpu-a"
    assert conditions(st) == {"LLMServiceReady": ("True", "LLMServiceServing"), "Ready": ("True", "Serving")}

    starting = [serving[0], ClusterPhase("gpu-a", "Indexing", "0/1 replicas ready: indexing", 1, 0)]
    st2 = overall({**RAG, "status": st}, SERVING_LLM, starting, ENDPOINT, LATER)
    assert (st2["phase"], st2["message"], st2["endpoint"]) == ("Indexing", "gpu-a: 0/1 replicas ready: indexing",
                                                               ENDPOINT)
    ready = next(c for c in st2["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["lastTransitionTime"]) == ("False", LATER)
    llm_cond = next(c for c in st2["conditions"] if c["type"] == "LLMServiceReady")
    assert llm_cond["lastTransitionTime"] == STAMP  # unchanged status keeps its transition time

    nothing = [ClusterPhase("gpu-a", "Pending", "waiting for pods", 1, 0)]
    assert overall(RAG, SERVING_LLM, nothing, ENDPOINT, STAMP)["phase"] == "Pending"

    # its own failure comes first, even while it also waits for the LLMService
    broken = [ClusterPhase("gpu-a", "Failed", "image pull failed: ErrImagePull", 1, 0), serving[0]]
    failed = overall(RAG, llm_readiness("qwen", None), broken, ENDPOINT, STAMP)
    assert (failed["phase"], failed["message"]) == ("Failed", "gpu-a: image pull failed: ErrImagePull")
    assert conditions(failed)["Ready"] == ("False", "Failed")


def test_nowhere_scaled_to_zero_and_leftovers() -> None:
    assert overall(RAG, SERVING_LLM, [], ENDPOINT, STAMP)["message"] == "LLMService qwen runs in no member cluster"
    zero = {**RAG, "spec": {**RAG["spec"], "replicas": 0}}
    st = overall(zero, SERVING_LLM, [ClusterPhase("gpu-a", "Pending", "waiting for pods", 0, 0)], ENDPOINT, STAMP)
    assert (st["phase"], st["message"]) == ("Pending", "spec.replicas is 0: the chat app is scaled to zero")
    st = overall(RAG, SERVING_LLM, [ClusterPhase("gpu-b", "Serving", "1/1 replicas ready", 1, 1)], ENDPOINT, STAMP,
                 leftovers=["waiting to remove the objects on gpu-a: cannot connect"])
    assert st["phase"] == "Serving"
    assert st["message"] == "1/1 replicas ready on gpu-b; waiting to remove the objects on gpu-a: cannot connect"


def test_base_conditions_are_the_last_written_not_the_lagging_lister() -> None:
    written = overall(RAG, SERVING_LLM, [ClusterPhase("gpu-a", "Serving", "1/1", 1, 1)], ENDPOINT, STAMP)
    again = overall(RAG, SERVING_LLM, [ClusterPhase("gpu-a", "Serving", "1/1", 1, 1)], ENDPOINT, LATER,
                    base_conditions=written["conditions"])
    assert again == written  # nothing to write


def test_cleanup_pending() -> None:
    st = cleanup_pending(RAG, ["waiting to remove the objects on gpu-a: cannot connect to gpu-a: refused"], STAMP)
    assert st["phase"] == "Pending" and st["endpoint"] == ""
    assert st["message"] == "being deleted: waiting to remove the objects on gpu-a: cannot connect to gpu-a: refused"
    assert conditions(st) == {"Ready": ("False", "CleanupPending")}


# --- what the controller maps ------------------------------------------------------------------------------------


def test_member_objects_map_back_to_their_ragservice_and_vllm_pods_do_not() -> None:
    objects = rag_objects(RAG)
    deployment_obj = next(o for o in objects if o["kind"] == "Deployment")
    rag_pod = {"metadata": {"name": "docs-rag-abc", "namespace": NS,
                            "labels": deployment_obj["spec"]["template"]["metadata"]["labels"]}}
    assert controller.owner_key(rag_pod) == f"{NS}/docs"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert controller.owner_key(obj) == f"{NS}/docs"
            assert owned_by(obj, RAG)
    vllm_pod = {"metadata": {"name": "qwen-abc", "namespace": NS, "labels": {
        "app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "docs",
        "app.kubernetes.io/managed-by": "kubellm", "deployment": "docs"}}}
    assert controller.owner_key(vllm_pod) is None
    assert controller.SELECTOR == "app.kubernetes.io/managed-by=kubellm,app.kubernetes.io/name=rag-chat-ui"
    llm_service = {"metadata": {"name": "docs-rag", "namespace": NS, "annotations": {
        "kubellm.io/owner": f"{NS}/docs-rag", "kubellm.io/owner-kind": "LLMService"}}}
    assert not owned_by(llm_service, RAG) and owner_of(llm_service) == f"LLMService {NS}/docs-rag"
    by_hand = {"metadata": {"name": "docs-rag", "managedFields": [{"manager": "kubectl-create"}]}}
    assert owner_of(by_hand) == "someone else (kubectl-create)"


def test_indexes_and_predicates() -> None:
    assert controller.llm_of(RAG) == [f"{NS}/qwen"]
    assert recorded_clusters(RAG) == [] and controller.clusters_of(RAG) == []
    recorded = {**RAG, "metadata": {**RAG["metadata"], "annotations": {CLUSTERS_ANNOTATION: "gpu-b, gpu-a,,"}}}
    assert controller.clusters_of(recorded) == ["gpu-a", "gpu-b"]

    a = llm("Loading", clusters=[{"name": "gpu-a", "replicas": 1, "readyReplicas": 0, "phase": "Loading"}])
    b = llm("Serving", ready=1, clusters=[{"name": "gpu-a", "replicas": 1, "readyReplicas": 1, "phase": "Serving"}])
    assert controller.llm_changed(a, b) and controller.llm_changed(a, a)
    heartbeat = {**a, "metadata": {**a["metadata"], "resourceVersion": "9"},
                 "status": {**a["status"], "conditions": [{"type": "Ready", "lastTransitionTime": LATER}]}}
    assert not controller.llm_changed(a, heartbeat)

    def cluster(generation: int, ready: str, probe: str) -> dict[str, Any]:
        return {"metadata": {"name": "gpu-a", "generation": generation},
                "status": {"lastProbeTime": probe, "conditions": [{"type": "Ready", "status": ready}]}}

    assert not controller.cluster_changed(cluster(1, "True", STAMP), cluster(1, "True", LATER))
    assert controller.cluster_changed(cluster(1, "True", STAMP), cluster(1, "False", LATER))
    assert controller.cluster_changed(cluster(1, "True", STAMP), cluster(2, "True", STAMP))


def test_status_phases_are_the_apis() -> None:
    assert {status.PENDING, status.INDEXING, status.SERVING, status.FAILED} == set(RAG_PHASES)


# --- the reconcile, against fakes of KubeLLM and of the members ----------------------------------------------------


def _error(code: int, message: str) -> errors.APIError:
    return errors.from_response(code, json.dumps({"kind": "Status", "code": code, "message": message}).encode())


class FakeLister:
    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects

    def namespace(self, namespace: str) -> FakeLister:
        return FakeLister({k: v for k, v in self.objects.items() if v["metadata"].get("namespace") == namespace})

    def get(self, name: str) -> dict[str, Any] | None:
        return next((o for o in self.objects.values() if o["metadata"]["name"] == name), None)

    def list(self) -> list[dict[str, Any]]:
        return list(self.objects.values())


class FakeOps:
    """KubeLLM's RAGService verbs: applies land on the lister's object at once, and in the journal."""

    def __init__(self, rags: dict[str, dict[str, Any]], journal: list[str]) -> None:
        self.rags, self.journal = rags, journal

    async def apply(self, config: dict[str, Any], *, field_manager: str, force: bool = False,
                    subresource: str | None = None) -> dict[str, Any]:
        assert field_manager == "kubellm-controller" and force
        obj = self.rags[f"{config['metadata']['namespace']}/{config['metadata']['name']}"]
        if subresource == "status":
            obj["status"] = config["status"]
            self.journal.append(f"status {config['status']['phase']}")
        else:
            meta = obj["metadata"]
            meta["finalizers"] = config["metadata"]["finalizers"]
            annotations = dict(meta.get("annotations") or {})
            annotations.pop(CLUSTERS_ANNOTATION, None)
            annotations.update(config["metadata"].get("annotations") or {})
            meta["annotations"] = annotations
            self.journal.append(f"record {annotations.get(CLUSTERS_ANNOTATION, '')!r} {meta['finalizers']}")
        return obj


class FakeResource:
    def __init__(self, member: FakeMember, ref: Any, namespace: str) -> None:
        self.member, self.ref, self.namespace = member, ref, namespace

    def _key(self, name: str) -> tuple[str, str, str]:
        return (str(self.ref), self.namespace, name)

    async def apply(self, obj: dict[str, Any], *, field_manager: str, force: bool = False) -> dict[str, Any]:
        self.member.check()
        stored = {**obj, "metadata": {**obj["metadata"], "uid": f"uid-{obj['metadata']['name']}"}}
        self.member.objects[self._key(obj["metadata"]["name"])] = stored
        self.member.journal.append(f"apply {self.member.name} {obj['kind']} {obj['metadata']['name']}")
        return stored

    async def get(self, name: str) -> dict[str, Any]:
        self.member.check()
        if self._key(name) not in self.member.objects:
            raise _error(404, "not found")
        return self.member.objects[self._key(name)]

    async def delete(self, name: str, *, propagation_policy: str | None = None,
                     preconditions: dict[str, str] | None = None) -> None:
        self.member.check()
        obj = self.member.objects.pop(self._key(name), None)
        if obj is None:
            raise _error(404, "not found")
        assert preconditions == {"uid": obj["metadata"]["uid"]}
        self.member.journal.append(f"delete {self.member.name} {obj['kind']} {name}")


class FakeMember:
    def __init__(self, name: str, journal: list[str]) -> None:
        self.name, self.journal = name, journal
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.pods: list[dict[str, Any]] = []
        self.reachable = True
        self.synced = True
        self.watched: dict[Any, Any] = {}
        self.namespaces: set[str] = set()

    def check(self) -> None:
        if not self.reachable:
            raise errors.TransportError(f"cannot connect to {self.name}")

    def resource(self, ref: Any, namespace: str = "") -> FakeResource:
        return FakeResource(self, ref, namespace)

    def cached(self, ref: Any, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((str(ref), namespace, name))

    def instance_objects(self, ref: Any, namespace: str, app: str, instance: str) -> list[dict[str, Any]]:
        assert ref is PODS
        return self.pods

    def kinds(self) -> list[str]:
        return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in self.objects.values())


class FakeMembers:
    usable = Members.usable  # the real decision of whether a member can be acted on, over fake connections

    def __init__(self, members: dict[str, FakeMember]) -> None:
        self.members = members

    async def connect(self, name: str, generation: int) -> FakeMember:
        return self.members[name]

    async def close(self) -> None:
        pass


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Any, type: str, reason: str, message: str, **_: str) -> None:
        self.events.append((type, reason, message))


@dataclass
class Fixture:
    reconciler: RAGServiceReconciler
    rags: dict[str, dict[str, Any]]
    llms: dict[str, dict[str, Any]]
    members: dict[str, FakeMember]
    journal: list[str]
    recorder: FakeRecorder

    @property
    def rag(self) -> dict[str, Any]:
        return self.rags[f"{NS}/docs"]

    async def reconcile(self) -> Result | None:
        self.journal.clear()
        return await self.reconciler.reconcile(f"{NS}/docs")

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.recorder.events]


def fixture(*llm_clusters: str, clusters: tuple[str, ...] = ("gpu-a", "gpu-b")) -> Fixture:
    journal: list[str] = []
    rags = {f"{NS}/docs": copy.deepcopy({**RAG, "metadata": {**RAG["metadata"], "finalizers": []}})}
    llms = {}
    if llm_clusters:
        llms[f"{NS}/qwen"] = llm("Serving", ready=len(llm_clusters), clusters=[
            {"name": c, "replicas": 1, "readyReplicas": 1, "phase": "Serving"} for c in llm_clusters])
    members = {c: FakeMember(c, journal) for c in clusters}
    cluster_objects = {c: {"metadata": {"name": c, "generation": 1}} for c in clusters}
    recorder = FakeRecorder()
    reconciler = RAGServiceReconciler(
        cast(Any, FakeLister(rags)), cast(Any, FakeLister(llms)), cast(Any, FakeLister(cluster_objects)),
        cast(Any, FakeOps(rags, journal)), cast(Any, FakeMembers(members)), cast(Any, recorder),
        now=lambda: datetime(2026, 11, 29, 12, tzinfo=UTC))
    return Fixture(reconciler, rags, llms, members, journal, recorder)


def ready(f: Fixture, cluster: str) -> None:
    """The member's Deployment reports its replica ready, with its pod."""
    dep = f.members[cluster].objects[(str(DEPLOYMENTS), NS, "docs-rag")]
    dep["metadata"]["generation"] = 1
    dep["status"] = {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1}
    labels = dep["spec"]["template"]["metadata"]["labels"]
    f.members[cluster].pods = [{"metadata": {"name": "docs-rag-1", "namespace": NS, "labels": labels}, "status": {}}]


async def test_the_cluster_is_recorded_before_anything_is_created_there() -> None:
    f = fixture("gpu-a")
    result = await f.reconcile()
    assert f.journal == [
        "record 'gpu-a' ['model.kubellm.io/member-cleanup']",
        "apply gpu-a Namespace chat", "apply gpu-a PersistentVolumeClaim docs-rag-chroma",
        "apply gpu-a Deployment docs-rag", "apply gpu-a Service docs-rag",
        "status Pending"]
    assert (f.rag["status"]["phase"], f.rag["status"]["message"]) == ("Pending", "gpu-a: waiting for pods")
    assert result is not None and result.requeue_after == 10.0
    assert ("Normal", "Deployed", "running the chat app on gpu-a, next to LLMService qwen") in f.recorder.events
    assert f.members["gpu-b"].objects == {}

    ready(f, "gpu-a")
    await f.reconcile()
    assert f.journal == ["status Serving"]  # nothing differs on the member: nothing applied
    assert f.rag["status"]["endpoint"] == ENDPOINT and f.rag["status"]["readyReplicas"] == 1
    assert f.reasons()[-1] == "Serving"
    await f.reconcile()
    assert f.journal == []  # the same status is not written twice


async def test_hand_edits_are_put_back() -> None:
    f = fixture("gpu-a")
    await f.reconcile()
    ready(f, "gpu-a")
    dep = f.members["gpu-a"].objects[(str(DEPLOYMENTS), NS, "docs-rag")]
    dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "http://elsewhere:8000/v1"
    await f.reconcile()
    assert "apply gpu-a Deployment docs-rag" in f.journal
    fixed = f.members["gpu-a"].objects[(str(DEPLOYMENTS), NS, "docs-rag")]
    assert fixed["spec"]["template"]["spec"]["containers"][0]["env"][0] == {"name": "VLLM_URL", "value": LLM_URL}


async def test_the_app_follows_its_llmservice_and_an_unreachable_cluster_stays_recorded() -> None:
    f = fixture("gpu-a")
    await f.reconcile()
    f.llms[f"{NS}/qwen"] = llm("Serving", ready=1, clusters=[
        {"name": "gpu-b", "replicas": 1, "readyReplicas": 1, "phase": "Serving"},
        {"name": "gpu-a", "replicas": 0, "readyReplicas": 0, "phase": "Removing"}])
    f.members["gpu-a"].reachable = False
    await f.reconcile()
    assert f.journal[0] == "record 'gpu-a,gpu-b' ['model.kubellm.io/member-cleanup']"
    assert "apply gpu-b Deployment docs-rag" in f.journal
    assert f.rag["metadata"]["annotations"][CLUSTERS_ANNOTATION] == "gpu-a,gpu-b"  # gpu-a not forgotten
    assert "waiting to remove the objects on gpu-a: cannot connect to gpu-a" in f.rag["status"]["message"]

    f.members["gpu-a"].reachable = True
    ready(f, "gpu-b")
    await f.reconcile()
    assert f.members["gpu-a"].kinds() == ["Namespace/chat"]
    assert f.rag["metadata"]["annotations"][CLUSTERS_ANNOTATION] == "gpu-b"
    assert f.rag["status"]["phase"] == "Serving" and f.rag["status"]["message"] == "1/1 replicas ready on gpu-b"
    assert "Removed" in f.reasons()

    # the LLMService deleted: the app stays where it runs (its store is kept), nothing is removed
    del f.llms[f"{NS}/qwen"]
    await f.reconcile()
    assert f.members["gpu-b"].kinds() == ["Deployment/docs-rag", "Namespace/chat",
                                          "PersistentVolumeClaim/docs-rag-chroma", "Service/docs-rag"]
    assert f.rag["status"]["phase"] == "Pending"
    assert f.rag["status"]["message"] == "waiting for LLMService qwen: it does not exist in this namespace"
    assert f.reasons()[-1] == "WaitingForLLMService"


async def test_an_object_of_another_owner_is_neither_taken_over_nor_deleted() -> None:
    f = fixture("gpu-a")
    theirs = {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "docs-rag", "namespace": NS, "uid": "theirs",
        "annotations": {"kubellm.io/owner": f"{NS}/docs-rag", "kubellm.io/owner-kind": "LLMService"}}}
    f.members["gpu-a"].objects[(str(SERVICES), NS, "docs-rag")] = theirs
    await f.reconcile()
    assert "apply gpu-a Service docs-rag" not in f.journal
    assert f.rag["status"]["phase"] == "Failed"
    assert f.rag["status"]["message"] == (f"gpu-a: Service {NS}/docs-rag exists and belongs to LLMService "
                                          f"{NS}/docs-rag: not taken over")
    assert ("Warning", "Failed", f.rag["status"]["message"]) in f.recorder.events

    f.rag["metadata"]["deletionTimestamp"] = STAMP
    await f.reconcile()
    assert f.members["gpu-a"].objects[(str(SERVICES), NS, "docs-rag")] is theirs
    assert f.rag["metadata"]["finalizers"] == []


async def test_deletion_waits_for_an_unreachable_cluster_then_lets_go() -> None:
    f = fixture("gpu-a")
    await f.reconcile()
    f.rag["metadata"]["deletionTimestamp"] = STAMP
    f.members["gpu-a"].reachable = False
    result = await f.reconcile()
    assert result is not None and result.requeue_after == 10.0
    assert f.rag["metadata"]["finalizers"] == ["model.kubellm.io/member-cleanup"]
    st = f.rag["status"]
    assert (st["phase"], condition(st, "Ready")["reason"]) == ("Pending", "CleanupPending")
    assert condition(st, "Ready")["message"] == (
        "being deleted: waiting to remove the objects on gpu-a: cannot connect to gpu-a")
    assert f.recorder.events[-1][:2] == ("Warning", "CleanupPending")

    f.members["gpu-a"].reachable = True
    assert await f.reconcile() is None
    assert f.members["gpu-a"].kinds() == ["Namespace/chat"]  # shared: not the RAGService's to delete
    assert f.journal[-1] == "record '' []"
    assert f.recorder.events[-1] == ("Normal", "CleanedUp", "removed the chat app from gpu-a")


async def test_a_deleted_cluster_needs_no_cleanup() -> None:
    f = fixture("gpu-a")
    await f.reconcile()
    f.rag["metadata"]["deletionTimestamp"] = STAMP
    f.reconciler.clusters = cast(Any, FakeLister({}))
    assert await f.reconcile() is None
    assert f.rag["metadata"]["finalizers"] == []



async def test_the_claim_goes_once_the_store_has_an_endpoint() -> None:
    f = fixture("gpu-a")
    await f.reconcile()
    assert "PersistentVolumeClaim/docs-rag-chroma" in f.members["gpu-a"].kinds()
    f.rag["spec"]["vectorStore"] = {"type": "chromadb", "endpoint": "http://chroma.vectors.svc:8000"}
    await f.reconcile()
    assert "delete gpu-a PersistentVolumeClaim docs-rag-chroma" in f.journal
    assert f.members["gpu-a"].kinds() == ["Deployment/docs-rag", "Namespace/chat", "Service/docs-rag"]
    await f.reconcile()
    assert not [line for line in f.journal if line.startswith(("apply", "delete"))]  # settled
