"""The member-cluster objects of a RAGService: the RAG chat app's Deployment (its environment from the spec and
the LLMService it answers with), the ChromaDB claim, the Service; names, labels and identities."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from kubellm.apis.selectors import parse_label_selector
from kubellm.controller.llmservice import resources as llm_resources
from kubellm.controller.llmservice.resources import ObjectId as Id
from kubellm.controller.llmservice.resources import identity
from kubellm.controller.ragservice import resources as r

NS, NAME, UID = "team-a", "docs", "7f0c1a2b-0000-4000-8000-00000000000a"
OWNER = {"kubellm.io/owner": f"{NS}/{NAME}", "kubellm.io/owner-kind": "RAGService", "kubellm.io/owner-uid": UID}
LABELS = {"app.kubernetes.io/name": "rag-chat-ui", "app.kubernetes.io/instance": NAME,
          "app.kubernetes.io/managed-by": "kubellm"}
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def rag(name: str = NAME, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "RAGService",
            "metadata": {"name": name, "namespace": NS, "uid": UID}, "spec": spec, "status": {"phase": "Serving"}}


FULL = rag(
    llmServiceRef={"name": "qwen-3b"},
    embedding={"model": "paraphrase-multilingual-MiniLM-L12-v2", "dimension": 384},
    vectorStore={"type": "chromadb", "endpoint": "", "collection": "bootcamp_docs", "storage": "10Gi",
                 "storageClassName": "longhorn"},
    sources=[{"name": "docs", "type": "git", "uri": "http://gitea-http.gitea.svc:3000/bootcamp/docs.git",
              "refreshInterval": "5m"},
             {"name": "faq", "type": "configMap", "configMapRef": {"name": "faq-docs"}}],
    chunking={"chunkSize": 800, "chunkOverlap": 0},
    retrieval={"topK": 3},
    replicas=1,
)

SOURCES = [{"name": "docs", "type": "git", "uri": "http://gitea-http.gitea.svc:3000/bootcamp/docs.git",
            "refreshInterval": "5m"},
           {"name": "faq", "type": "configMap", "path": "/sources/faq"}]

EXPECTED_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "docs-rag", "namespace": NS, "labels": LABELS, "annotations": OWNER},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": LABELS},
        "template": {
            "metadata": {"labels": LABELS},
            "spec": {
                "containers": [{
                    "name": "chat-ui",
                    "image": "docker.io/kubellm/rag-chat-ui:v0.1.0",
                    "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"},
                              {"name": "metrics", "containerPort": 9100, "protocol": "TCP"}],
                    "env": [
                        {"name": "VLLM_URL", "value": "http://qwen-3b.team-a.svc.cluster.local:8000/v1"},
                        {"name": "MODEL", "value": "qwen-3b"},
                        {"name": "EMBEDDING_MODEL", "value": "paraphrase-multilingual-MiniLM-L12-v2"},
                        {"name": "EMBEDDING_DIMENSION", "value": "384"},
                        {"name": "VECTOR_STORE", "value": "chromadb"},
                        {"name": "CHROMA_PATH", "value": "/data/chroma"},
                        {"name": "COLLECTION", "value": "bootcamp_docs"},
                        {"name": "TOP_K", "value": "3"},
                        {"name": "CHUNK_SIZE", "value": "800"},
                        {"name": "CHUNK_OVERLAP", "value": "0"},
                        {"name": "SOURCES", "value": json.dumps(SOURCES, separators=(",", ":"))},
                    ],
                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                  "limits": {"cpu": "1", "memory": "2Gi"}},
                    "readinessProbe": {"httpGet": {"path": "/", "port": 8000}, "initialDelaySeconds": 20},
                    "volumeMounts": [{"name": "chroma", "mountPath": "/data/chroma"},
                                     {"name": "source-faq", "mountPath": "/sources/faq", "readOnly": True}],
                }],
                "volumes": [{"name": "chroma", "persistentVolumeClaim": {"claimName": "docs-rag-chroma"}},
                            {"name": "source-faq", "configMap": {"name": "faq-docs"}}],
            },
        },
        "strategy": {"type": "Recreate"},
    },
}

EXPECTED_CLAIM = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "docs-rag-chroma", "namespace": NS, "labels": LABELS, "annotations": OWNER},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}},
             "storageClassName": "longhorn"},
}

EXPECTED_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "docs-rag", "namespace": NS, "labels": LABELS, "annotations": OWNER},
    "spec": {"type": "ClusterIP", "selector": LABELS,
             "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                       {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}]},
}


def env(objs: list[dict[str, Any]]) -> dict[str, str]:
    d = next(o for o in objs if o["kind"] == "Deployment")
    return {e["name"]: e["value"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_full_spec() -> None:
    objs = r.rag_objects(FULL)
    assert [o["kind"] for o in objs] == ["Namespace", "PersistentVolumeClaim", "Deployment", "Service"]
    assert objs[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    assert objs[1] == EXPECTED_CLAIM
    assert objs[2] == EXPECTED_DEPLOYMENT
    assert objs[3] == EXPECTED_SERVICE
    for obj in objs:
        assert "status" not in obj


def test_defaults_of_a_minimal_spec() -> None:
    spec = rag(llmServiceRef={"name": "qwen"}, embedding={"model": "bge-small-zh"})
    objs = r.rag_objects(spec)
    claim = next(o for o in objs if o["kind"] == "PersistentVolumeClaim")
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}
    assert env(objs) == {"VLLM_URL": "http://qwen.team-a.svc.cluster.local:8000/v1", "MODEL": "qwen",
                         "EMBEDDING_MODEL": "bge-small-zh", "VECTOR_STORE": "chromadb", "CHROMA_PATH": "/data/chroma",
                         "COLLECTION": NAME, "TOP_K": "4", "CHUNK_SIZE": "512", "CHUNK_OVERLAP": "64", "SOURCES": "[]"}
    d = objs[2]
    assert d["spec"]["replicas"] == 1
    pod = d["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "chroma", "persistentVolumeClaim": {"claimName": "docs-rag-chroma"}}]
    assert r.deployment(rag(llmServiceRef={"name": "qwen"}, replicas=0))["spec"]["replicas"] == 0


def test_settings() -> None:
    settings = r.RAGSettings(image="registry.local/rag:2", storage="1Gi", cpu_request="1", memory_request="1Gi",
                             cpu_limit="2", memory_limit="4Gi")
    objs = r.rag_objects(rag(llmServiceRef={"name": "qwen"}), settings=settings)
    (c,) = objs[2]["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "registry.local/rag:2"
    assert c["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    assert objs[1]["spec"]["resources"] == {"requests": {"storage": "1Gi"}}


@pytest.mark.parametrize("store", [
    {"type": "qdrant", "endpoint": "http://qdrant.vectors.svc:6333"},
    {"type": "chromadb", "endpoint": "http://chroma.vectors.svc:8000", "storage": "5Gi"},
])
def test_external_store_has_no_claim(store: dict[str, Any]) -> None:
    spec = rag(llmServiceRef={"name": "qwen"}, embedding={"model": "bge"}, vectorStore=store)
    objs = r.rag_objects(spec)
    assert [o["kind"] for o in objs] == ["Namespace", "Deployment", "Service"]
    e = env(objs)
    assert e["VECTOR_STORE"] == store["type"] and e["VECTOR_STORE_URL"] == store["endpoint"]
    assert "CHROMA_PATH" not in e
    d = objs[1]
    assert "strategy" not in d["spec"]
    assert "volumes" not in d["spec"]["template"]["spec"]
    assert "volumeMounts" not in d["spec"]["template"]["spec"]["containers"][0]
    assert r.stale_identities(spec, objs) == [Id("v1", "PersistentVolumeClaim", NS, "docs-rag-chroma")]


def test_selector_endpoint_and_identities() -> None:
    assert r.selector_labels(FULL) == LABELS
    selector = parse_label_selector(r.status_selector(FULL))
    assert selector.matches(EXPECTED_DEPLOYMENT["spec"]["template"]["metadata"]["labels"])
    # never the LLMService's pods, nor counted in its queue metric
    assert not selector.matches(llm_resources.pod_labels({"metadata": {"name": NAME, "namespace": NS}}))
    assert "deployment" not in LABELS
    assert r.rag_endpoint(FULL) == "http://docs-rag.team-a.svc.cluster.local"
    owned = r.owned_identities(FULL)
    assert owned == [Id("v1", "Service", NS, "docs-rag"), Id("apps/v1", "Deployment", NS, "docs-rag"),
                     Id("v1", "PersistentVolumeClaim", NS, "docs-rag-chroma")]
    assert {identity(o) for o in r.rag_objects(FULL)[1:]} == set(owned)
    assert r.stale_identities(FULL, r.rag_objects(FULL)) == []


def test_names_do_not_meet_the_llm_objects() -> None:
    spec = rag("qwen", llmServiceRef={"name": "qwen"})
    llm_names = {i.name for i in llm_resources.owned_identities({"metadata": {"name": "qwen", "namespace": NS}})}
    assert not llm_names & {i.name for i in r.owned_identities(spec)}


def test_long_names_are_cut_and_hashed() -> None:
    name = "r" + "a" * 61 + "g"  # 63 characters, the longest RAGService name
    spec = rag(name, llmServiceRef={"name": "qwen"}, sources=[
        {"name": "s" + "o" * 61 + "x", "type": "configMap", "configMapRef": {"name": "cm"}},
        {"name": "s" + "o" * 61 + "y", "type": "configMap", "configMapRef": {"name": "cm2"}}])
    objs = r.rag_objects(spec)
    names = [o["metadata"]["name"] for o in objs[1:]]
    for n in names:
        assert len(n) <= 63 and DNS_LABEL.match(n)
    assert names[0] == r.claim_name(spec) and names[0] != names[1] and names[1] == names[2] == r.app_name(spec)
    assert names[1].endswith("-rag-" + names[1][-8:]) and names[0].startswith("r" + "a" * 20)
    assert r.app_name(spec) == r.app_name(rag(name))  # deterministic
    assert r.app_name(spec) != r.app_name(rag(name[:-1] + "h"))
    pod = objs[2]["spec"]["template"]["spec"]
    volumes = [v["name"] for v in pod["volumes"]]
    assert len(set(volumes)) == 3 and all(len(v) <= 63 and DNS_LABEL.match(v) for v in volumes)
    assert [m["name"] for m in pod["containers"][0]["volumeMounts"]] == volumes
