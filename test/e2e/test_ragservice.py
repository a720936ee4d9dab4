"""The RAGService controller for real: a KubeLLM API server, the controller manager (`cluster,llmservice,ragservice`)
and one member cluster (real kube-apiserver, kube-controller-manager and kube-scheduler; the node simulator plays
the kubelet and 4 A100s). Everything is driven and read with kubectl, on KubeLLM and on the member.

The story, in order (the tests share the world): a RAGService created before its LLMService waits, Pending,
naming it; the LLMService goes Serving, then the RAGService does, with the chat app on the member talking to the
LLMService's in-cluster endpoint, its vector store on a claim, and its Service; hand edits on the member are put
back; deleting it removes its member objects, then the object; an unreachable member holds the deletion with a
condition saying so until it is back.

Members have no volume provisioner: PersistentVolumes are created here for the vector store's claims (the
member's binder and claim protection controllers bind them; deploy/member grants KubeLLM the claims).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import APIServer, running_apiserver, secret
from managers import Manager, managers, start_manager
from polling import until
from test_member_cluster import start_member

from kubellm.devcluster import MemberCluster, MemberOptions
from kubellm.nodesim.options import NodePool

NS = "chat"
INTERVAL = 2.0
RAG_IMAGE = "registry.example/kubellm/rag-chat-ui:e2e"
LLM_ENDPOINT = f"http://qwen.{NS}.svc.cluster.local:8000/v1"
def volume(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/var/lib/kubellm-e2e/{name}"}}}


def condition(st: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((dict(c) for c in st.get("conditions") or [] if c["type"] == kind), {})


@dataclass
class World:
    server: APIServer
    member: MemberCluster
    manager: Manager

    def apply(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        manifest = {"apiVersion": "model.kubellm.io/v1alpha1", "kind": kind,
                    "metadata": {"name": name, "namespace": NS}, "spec": spec}
        self.server.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def get(self, resource: str, name: str) -> dict[str, Any] | None:
        out = self.server.kubectl("get", resource, name, "-n", NS, "-o", "json", "--ignore-not-found").stdout
        return json.loads(out) if out.strip() else None

    def status(self, resource: str, name: str) -> dict[str, Any]:
        obj = self.get(resource, name)
        assert obj is not None, f"{resource}/{name} is gone"
        return dict(obj.get("status") or {})

    def remote(self, kind: str, name: str) -> dict[str, Any] | None:
        out = self.member.kubectl("get", kind, name, "-n", NS, "-o", "json", "--ignore-not-found").stdout
        return json.loads(out) if out.strip() else None

    def event_reasons(self, name: str) -> dict[str, str]:
        out = self.server.kubectl("get", "events", "-n", NS, "--field-selector",
                                  f"involvedObject.name={name}", "-o", "json").stdout
        return {e["reason"]: e["message"] for e in json.loads(out)["items"]}

    def serving(self, name: str, timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            obj = self.get("ragservices", name)
            st = (obj or {}).get("status") or {}
            return st if st.get("phase") == "Serving" and obj and st.get("observedGeneration") == obj[
                "metadata"]["generation"] else None

        return until(check, timeout, f"RAGService {name} Serving")


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("ragservice")
    member = start_member(root / "gpu-a", MemberOptions(
        name="gpu-a", pools=(NodePool(count=1, gpus=4, product="NVIDIA-A100-SXM4-80GB", memory_mib=81920),),
        ready_delay=1.0, probe_delay_scale=0.1))  # the chat app's readiness probe waits 20 s: 2 s here
    try:
        member.control_plane.apply(volume("chroma-1"), volume("chroma-2"))  # no provisioner on the member
        state = root / "kubellm"
        state.mkdir()
        with running_apiserver(state) as server, managers() as started:
            server.kubectl("create", "namespace", NS)
            secret(member.token)
            manifest, _ = member.write_files()
            server.kubectl("apply", "-f", str(manifest))
            started.append(start_manager(state / "controller-manager.kubeconfig", root / "managers", "cm",
                                         "--controllers", "cluster,llmservice,ragservice", "--leader-elect=false",
                                         "--cluster-probe-interval", f"{INTERVAL}s", "--rag-image", RAG_IMAGE,
                                         plugin=False))
            until(lambda: "True" in server.kubectl(
                "get", "cluster", "gpu-a", "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}').stdout,
                60, "gpu-a Ready")
            yield World(server, member, started[0])
    finally:
        member.stop()


RAG_SPEC: dict[str, Any] = {
    "llmServiceRef": {"name": "qwen"},
    "embedding": {"model": "paraphrase-multilingual-MiniLM-L12-v2"},
    "vectorStore": {"type": "chromadb", "collection": "bootcamp_docs", "storage": "1Gi"},
    "sources": [{"name": "k8s-docs", "type": "url", "uri": "https://kubernetes.io/docs/concepts/"}],
    "retrieval": {"topK": 3},
    "replicas": 1,
}


def test_a_ragservice_goes_serving_after_its_llmservice(world: World) -> None:
    world.apply("RAGService", "docs", RAG_SPEC)
    waiting = until(lambda: (s := world.status("ragservices", "docs")).get("phase") == "Pending" and s, 30,
                         "the RAGService Pending")
    assert waiting["message"] == "waiting for LLMService qwen: it does not exist in this namespace"
    assert (condition(waiting, "LLMServiceReady")["status"], condition(waiting, "LLMServiceReady")["reason"]) == (
        "False", "LLMServiceNotFound")
    assert condition(waiting, "Ready")["status"] == "False" and waiting["endpoint"] == ""
    rag = world.get("ragservices", "docs")
    assert rag is not None and "model.kubellm.io/member-cleanup" in rag["metadata"]["finalizers"]
    assert world.remote("deployment", "docs-rag") is None  # nothing runs before the LLMService is placed
    assert "WaitingForLLMService" in world.server.kubectl("describe", "ragservices", "docs", "-n", NS).stdout

    world.apply("LLMService", "qwen", {"model": "Qwen/Qwen2.5-3B-Instruct", "replicas": 1})

    def llm_serving() -> dict[str, Any] | None:
        rag_phase = world.status("ragservices", "docs").get("phase")
        llm = world.status("llmservices", "qwen")
        if llm.get("phase") == "Serving":
            return llm
        assert rag_phase != "Serving", "the RAGService went Serving before its LLMService"
        return None

    llm = until(llm_serving, 90, "the LLMService Serving")
    assert llm["endpoint"] == LLM_ENDPOINT
    st = world.serving("docs")
    assert st["endpoint"] == f"http://docs-rag.{NS}.svc.cluster.local"
    assert st["readyReplicas"] == 1 and st["message"] == "1/1 replicas ready on gpu-a"
    assert condition(st, "Ready")["status"] == "True" and condition(st, "Ready")["reason"] == "Serving"
    assert condition(st, "LLMServiceReady")["status"] == "True"
    llm_ready = condition(world.status("llmservices", "qwen"), "Ready")
    assert condition(st, "Ready")["lastTransitionTime"] >= llm_ready["lastTransitionTime"]
    rag = world.get("ragservices", "docs")
    assert rag is not None and rag["metadata"]["annotations"]["model.kubellm.io/member-clusters"] == "gpu-a"

    # on the member: the chat app talks to the LLMService's in-cluster endpoint, keeps its store on the claim
    dep = world.remote("deployment", "docs-rag")
    assert dep is not None
    env = env_of(dep)
    assert env["VLLM_URL"] == llm["endpoint"] and env["MODEL"] == "qwen"
    assert (env["CHROMA_PATH"], env["COLLECTION"], env["TOP_K"]) == ("/data/chroma", "bootcamp_docs", "3")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == RAG_IMAGE
    assert dep["spec"]["replicas"] == 1 and dep["status"]["readyReplicas"] == 1
    assert dep["metadata"]["annotations"]["kubellm.io/owner"] == f"{NS}/docs"
    claim = world.remote("pvc", "docs-rag-chroma")
    assert claim is not None and claim["status"]["phase"] == "Bound"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    svc = world.remote("service", "docs-rag")
    assert svc is not None and [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http", 80),
                                                                                          ("metrics", 9100)]
    assert svc["spec"]["selector"]["app.kubernetes.io/name"] == "rag-chat-ui"
    # the LLMService's own objects are untouched next to it
    assert world.remote("deployment", "qwen") is not None and world.remote("service", "qwen") is not None

    reasons = world.event_reasons("docs")
    assert {"WaitingForLLMService", "Deployed", "Serving"} <= set(reasons), reasons
    assert reasons["Deployed"] == "running the chat app on gpu-a, next to LLMService qwen"
    table = world.server.kubectl("get", "ragservices", "-n", NS).stdout.splitlines()
    assert table[1].split()[1:5] == ["qwen", "chromadb", "Serving", st["endpoint"]]


def test_hand_edits_on_the_member_are_put_back(world: World) -> None:
    world.member.kubectl("set", "env", "deployment/docs-rag", "-n", NS, "VLLM_URL=http://elsewhere:8000/v1")
    until(lambda: (d := world.remote("deployment", "docs-rag")) is not None
               and env_of(d)["VLLM_URL"] == LLM_ENDPOINT, 30, "VLLM_URL put back")
    world.member.kubectl("delete", "service", "docs-rag", "-n", NS)
    until(lambda: world.remote("service", "docs-rag") is not None, 30, "the deleted Service recreated")
    st = world.serving("docs")
    assert st["endpoint"] == f"http://docs-rag.{NS}.svc.cluster.local"

    # a spec edit flows through to the member, and the status says which generation it is for
    world.server.kubectl("patch", "ragservices", "docs", "-n", NS, "--type", "merge", "-p",
                         json.dumps({"spec": {"retrieval": {"topK": 5}}}))
    until(lambda: (d := world.remote("deployment", "docs-rag")) is not None and env_of(d)["TOP_K"] == "5", 30,
               "the new TOP_K on the member")
    generation = world.get("ragservices", "docs")["metadata"]["generation"]  # type: ignore[index]
    assert world.serving("docs")["observedGeneration"] == generation


def test_deleting_removes_the_member_objects_then_the_object(world: World) -> None:
    world.server.kubectl("delete", "ragservices", "docs", "-n", NS, "--wait=false")
    until(lambda: world.get("ragservices", "docs") is None, 30, "the RAGService gone")
    # its finalizer went only after the member accepted the deletions
    assert world.remote("deployment", "docs-rag") is None and world.remote("service", "docs-rag") is None
    claim = world.remote("pvc", "docs-rag-chroma")
    assert claim is None or claim["metadata"].get("deletionTimestamp"), claim
    until(lambda: world.remote("pvc", "docs-rag-chroma") is None, 30, "the claim gone once its pod is")
    reasons = world.event_reasons("docs")
    assert reasons.get("CleanedUp") == "removed the chat app from gpu-a", reasons
    # the LLMService it used is not affected
    assert world.status("llmservices", "qwen")["phase"] == "Serving"
    assert world.remote("deployment", "qwen") is not None


def test_an_unreachable_member_holds_the_deletion_with_a_condition(world: World) -> None:
    world.apply("RAGService", "notes", {**RAG_SPEC, "vectorStore": {
        "type": "qdrant", "endpoint": "http://qdrant.vectors.svc:6333", "collection": "notes"}})
    world.serving("notes")
    dep = world.remote("deployment", "notes-rag")
    assert dep is not None and env_of(dep)["VECTOR_STORE_URL"] == "http://qdrant.vectors.svc:6333"
    assert world.remote("pvc", "notes-rag-chroma") is None  # an external store: no claim

    world.member.stop()
    try:
        world.server.kubectl("delete", "ragservices", "notes", "-n", NS, "--wait=false")
        held = until(lambda: (s := world.status("ragservices", "notes")) and condition(
            s, "Ready").get("reason") == "CleanupPending" and s, 40, "Ready=False with CleanupPending")
        message = condition(held, "Ready")["message"]
        assert message.startswith("being deleted: waiting to remove the objects on gpu-a: "), message
        assert held["phase"] == "Pending" and held["endpoint"] == ""
        rag = world.get("ragservices", "notes")
        assert rag is not None and rag["metadata"]["deletionTimestamp"]
        assert rag["metadata"]["annotations"]["model.kubellm.io/member-clusters"] == "gpu-a"
        assert "CleanupPending" in world.event_reasons("notes")
    finally:
        world.member.start()
    until(lambda: world.get("ragservices", "notes") is None, 60, "deleted once the member is back")
    assert world.remote("deployment", "notes-rag") is None and world.remote("service", "notes-rag") is None
