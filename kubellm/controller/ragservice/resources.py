"""The objects a RAGService puts on a member cluster, as plain dicts for server-side apply.

The application is the operator's RAG chat app (Chainlit, ChromaDB, sentence-transformers): it reads its
settings from the environment (`VLLM_URL`, `MODEL` as the chat app did; the embedding, vector store, collection,
top-k, chunking and sources added for the RAGService), serves the chat on 8000 and Prometheus metrics on 9100,
and keeps a ChromaDB store under `/data/chroma` on a ReadWriteOnce PersistentVolumeClaim (5Gi by default) when
the RAGService asks the server to provision one (type chromadb without an endpoint).

The Deployment, Service and claim are named `<name>-rag...` so they never meet the LLMService objects, which are
named after the LLMService, in the same namespace; long names are cut and hashed (`child_name`). Labels and the
owner annotations follow the LLMService objects' conventions. Everything here is a pure function.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubellm.controller.llmservice.resources import (
    APPS_V1,
    CORE_V1,
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    ObjectId,
    child_name,
    endpoint,
    identity,
    name_of,
    namespace_object,
    namespace_of,
    owner_annotations,
    selector_string,
)

Obj = dict[str, Any]

APP_NAME = "rag-chat-ui"
CONTAINER = "chat-ui"
HTTP_PORT = 8000
METRICS_PORT = 9100
SERVICE_PORT = 80
CHROMA_PATH = "/data/chroma"
CHROMA_VOLUME = "chroma"
SOURCES_PATH = "/sources"

DEFAULT_RAG_IMAGE = "docker.io/kubellm/rag-chat-ui:v0.1.0"
DEFAULT_STORAGE = "5Gi"
DEFAULT_CHUNK_SIZE = 512
DEFAULT_CHUNK_OVERLAP = 64
DEFAULT_TOP_K = 4


@dataclass(frozen=True)
class RAGSettings:
    """The application's image and resources, and the size of a provisioned store when the spec gives none."""

    image: str = DEFAULT_RAG_IMAGE
    storage: str = DEFAULT_STORAGE
    cpu_request: str = "100m"
    memory_request: str = "256Mi"
    cpu_limit: str = "1"
    memory_limit: str = "2Gi"
    """The chat app's 1Gi plus room for the embedding model and ChromaDB, which run in the same process."""


def _spec(rag: Mapping[str, Any]) -> Mapping[str, Any]:
    return rag.get("spec") or {}


def _part(rag: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return _spec(rag).get(key) or {}


def _int(value: Any, default: int) -> int:
    """`value` (0 included), or `default` when unset."""
    return default if value is None else int(value)


def app_name(rag: Mapping[str, Any]) -> str:
    """Name of the Deployment and the Service: `<name>-rag`, a DNS label."""
    return child_name(name_of(rag), "rag")


def claim_name(rag: Mapping[str, Any]) -> str:
    """Name of the vector store's PersistentVolumeClaim: `<name>-rag-chroma`, a DNS label."""
    return child_name(name_of(rag), "rag-chroma")


def llm_name(rag: Mapping[str, Any]) -> str:
    return str((_spec(rag).get("llmServiceRef") or {}).get("name") or "")


def provisioned(rag: Mapping[str, Any]) -> bool:
    """Whether the server provisions the store: chromadb (the default) without an endpoint."""
    store = _part(rag, "vectorStore")
    return (store.get("type") or "chromadb") == "chromadb" and not store.get("endpoint")


def selector_labels(rag: Mapping[str, Any]) -> dict[str, str]:
    return {NAME_LABEL: APP_NAME, INSTANCE_LABEL: name_of(rag), MANAGED_BY_LABEL: MANAGED_BY}


def status_selector(rag: Mapping[str, Any]) -> str:
    return selector_string(selector_labels(rag))


def rag_endpoint(rag: Mapping[str, Any]) -> str:
    """URL of the chat application's Service inside a member cluster (port 80)."""
    return f"http://{app_name(rag)}.{namespace_of(rag)}.svc.cluster.local"


def _metadata(rag: Mapping[str, Any], name: str) -> Obj:
    return {"name": name, "namespace": namespace_of(rag), "labels": selector_labels(rag),
            "annotations": owner_annotations(rag, "RAGService")}


def source_volume(source_name: str) -> str:
    return child_name(f"source-{source_name}")


def _config_map_sources(rag: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _spec(rag).get("sources") or [] if s.get("type") == "configMap" and s.get("configMapRef")]


def sources_json(rag: Mapping[str, Any]) -> str:
    """The documents to index, for the application: name, type, where (`uri`, or `path` of a mounted ConfigMap),
    and `refreshInterval` when set."""
    out = []
    for s in _spec(rag).get("sources") or []:
        item = {"name": str(s.get("name") or ""), "type": str(s.get("type") or "")}
        if s.get("type") == "configMap":
            item["path"] = f"{SOURCES_PATH}/{item['name']}"
        elif s.get("uri"):
            item["uri"] = str(s["uri"])
        if s.get("refreshInterval"):
            item["refreshInterval"] = str(s["refreshInterval"])
        out.append(item)
    return json.dumps(out, separators=(",", ":"))


def rag_env(rag: Mapping[str, Any]) -> list[Obj]:
    """The chat app's `VLLM_URL` (the LLMService's OpenAI base URL) and `MODEL` (its served model name), then
    the embedding, the vector store, the collection, retrieval, chunking and sources."""
    llm = llm_name(rag)
    embedding, store = _part(rag, "embedding"), _part(rag, "vectorStore")
    chunking, retrieval = _part(rag, "chunking"), _part(rag, "retrieval")
    env = [("VLLM_URL", endpoint(llm, namespace_of(rag))), ("MODEL", llm),
           ("EMBEDDING_MODEL", str(embedding.get("model") or ""))]
    if embedding.get("dimension"):
        env.append(("EMBEDDING_DIMENSION", str(embedding["dimension"])))
    env.append(("VECTOR_STORE", str(store.get("type") or "chromadb")))
    if provisioned(rag):
        env.append(("CHROMA_PATH", CHROMA_PATH))
    else:
        env.append(("VECTOR_STORE_URL", str(store.get("endpoint") or "")))
    env += [
        ("COLLECTION", str(store.get("collection") or name_of(rag))),
        ("TOP_K", str(retrieval.get("topK") or DEFAULT_TOP_K)),
        ("CHUNK_SIZE", str(chunking.get("chunkSize") or DEFAULT_CHUNK_SIZE)),
        ("CHUNK_OVERLAP", str(_int(chunking.get("chunkOverlap"), DEFAULT_CHUNK_OVERLAP))),
        ("SOURCES", sources_json(rag)),
    ]
    return [{"name": n, "value": v} for n, v in env]


def claim(rag: Mapping[str, Any], settings: RAGSettings | None = None) -> Obj:
    """The ReadWriteOnce claim of a provisioned ChromaDB store: `vectorStore.storage` (or the default size),
    `storageClassName` when set (empty: the cluster's default class)."""
    settings = settings or RAGSettings()
    store = _part(rag, "vectorStore")
    spec: Obj = {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": str(store.get("storage") or settings.storage)}}}
    if store.get("storageClassName"):
        spec["storageClassName"] = str(store["storageClassName"])
    return {"apiVersion": CORE_V1, "kind": "PersistentVolumeClaim", "metadata": _metadata(rag, claim_name(rag)),
            "spec": spec}


def deployment(rag: Mapping[str, Any], settings: RAGSettings | None = None) -> Obj:
    settings = settings or RAGSettings()
    mounts: list[Obj] = []
    volumes: list[Obj] = []
    if provisioned(rag):
        mounts.append({"name": CHROMA_VOLUME, "mountPath": CHROMA_PATH})
        volumes.append({"name": CHROMA_VOLUME, "persistentVolumeClaim": {"claimName": claim_name(rag)}})
    for s in _config_map_sources(rag):
        volume = source_volume(str(s["name"]))
        mounts.append({"name": volume, "mountPath": f"{SOURCES_PATH}/{s['name']}", "readOnly": True})
        volumes.append({"name": volume, "configMap": {"name": str(s["configMapRef"]["name"])}})
    container: Obj = {
        "name": CONTAINER,
        "image": settings.image,
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "env": rag_env(rag),
        "resources": {"requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
                      "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit}},
        "readinessProbe": {"httpGet": {"path": "/", "port": HTTP_PORT}, "initialDelaySeconds": 20},
    }
    if mounts:
        container["volumeMounts"] = mounts
    pod: Obj = {"containers": [container]}
    if volumes:
        pod["volumes"] = volumes
    spec: Obj = {
        "replicas": _int(_spec(rag).get("replicas"), 1),
        "selector": {"matchLabels": selector_labels(rag)},
        "template": {"metadata": {"labels": selector_labels(rag)}, "spec": pod},
    }
    if provisioned(rag):  # a ReadWriteOnce volume: the old pod lets go of it before the new one starts
        spec["strategy"] = {"type": "Recreate"}
    return {"apiVersion": APPS_V1, "kind": "Deployment", "metadata": _metadata(rag, app_name(rag)), "spec": spec}


def service(rag: Mapping[str, Any]) -> Obj:
    """ClusterIP: the chat on port 80 (to 8000) and the metrics on 9100, as the chat app's Service."""
    ports = [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"},
             {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}]
    return {"apiVersion": CORE_V1, "kind": "Service", "metadata": _metadata(rag, app_name(rag)),
            "spec": {"type": "ClusterIP", "selector": selector_labels(rag), "ports": ports}}


def rag_objects(rag: Mapping[str, Any], *, settings: RAGSettings | None = None) -> list[Obj]:
    """Namespace, the store's claim (when provisioned), Deployment and Service of `rag` on a member cluster."""
    out = [namespace_object(namespace_of(rag))]
    if provisioned(rag):
        out.append(claim(rag, settings))
    return [*out, deployment(rag, settings), service(rag)]


def owned_identities(rag: Mapping[str, Any]) -> list[ObjectId]:
    """Every object the controller may have applied for `rag` on a member, for deletion (not the namespace)."""
    ns = namespace_of(rag)
    return [ObjectId(CORE_V1, "Service", ns, app_name(rag)), ObjectId(APPS_V1, "Deployment", ns, app_name(rag)),
            ObjectId(CORE_V1, "PersistentVolumeClaim", ns, claim_name(rag))]


def stale_identities(rag: Mapping[str, Any], desired: Iterable[Mapping[str, Any]]) -> list[ObjectId]:
    """Owned objects that `desired` no longer has (the claim once the store has an endpoint)."""
    keep = {identity(o) for o in desired}
    return [i for i in owned_identities(rag) if i not in keep]
