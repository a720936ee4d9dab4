"""Types of model.kubellm.io/v1alpha1: LLMService (a served model) and RAGService (retrieval on top).

LLMService follows the operator it replaces (vLLM OpenAI server, HPA on `vllm:num_requests_waiting`)
and adds a Karmada-style `placement` over member clusters.

Every field has a default so that decoding never fails on a missing or dropped value; requiredness,
enums and ranges are checked in `validation.py`.
"""

from __future__ import annotations

from pydantic import Field

from kubellm.apis.base import APIModel
from kubellm.apis.cluster.v1alpha1.types import Condition, LabelSelector
from kubellm.apis.meta.v1.types import ObjectMeta, TypedModel

GROUP = "model.kubellm.io"
VERSION = "v1alpha1"

DEFAULT_MAX_MODEL_LEN = 2048
DEFAULT_GPU_MEMORY_UTILIZATION = "0.85"


# --- LLMService ----------------------------------------------------------------------------------


class LLMResources(APIModel):
    gpu: int = 1  # nvidia.com/gpu per replica
    cpu: str = ""  # a quantity, e.g. "4" or "500m"
    memory: str = ""  # a quantity, e.g. "16Gi"


class AutoscalingSpec(APIModel):
    enabled: bool = True
    min_replicas: int = 1
    max_replicas: int | None = None  # required
    waiting_threshold: int = 5  # scale out when vllm:num_requests_waiting per replica exceeds it


class ClusterAffinity(APIModel):
    """Which member clusters qualify: by name, by label, or both (both must match)."""

    cluster_names: list[str] = Field(default_factory=list)
    label_selector: LabelSelector | None = None


class Toleration(APIModel):
    key: str = ""
    operator: str = ""  # Equal (the default when empty) or Exists
    value: str = ""
    effect: str = ""  # empty matches every effect


class StaticClusterWeight(APIModel):
    target_cluster: ClusterAffinity = Field(default_factory=ClusterAffinity)
    weight: int = 1


class ClusterPreferences(APIModel):
    static_weight_list: list[StaticClusterWeight] = Field(default_factory=list)
    dynamic_weight: str = ""  # "" or AvailableReplicas


class ReplicaScheduling(APIModel):
    replica_scheduling_type: str = "Divided"  # Duplicated or Divided
    replica_division_preference: str = ""  # Aggregated or Weighted ("" means Weighted)
    weight_preference: ClusterPreferences | None = None  # unset with Weighted: all clusters weigh the same


class Placement(APIModel):
    cluster_affinity: ClusterAffinity | None = None
    cluster_tolerations: list[Toleration] = Field(default_factory=list)
    replica_scheduling: ReplicaScheduling | None = None


class EnvVar(APIModel):
    name: str = ""
    value: str = ""


class LLMServiceSpec(APIModel):
    model: str = ""  # e.g. "Qwen/Qwen2.5-3B-Instruct"
    quantization: str = ""  # "", awq, gptq, fp8
    max_model_len: int = DEFAULT_MAX_MODEL_LEN
    gpu_memory_utilization: str = DEFAULT_GPU_MEMORY_UTILIZATION
    replicas: int = 1
    image: str = ""  # empty: the server's configured vLLM OpenAI image
    hf_endpoint: str = ""  # empty: the server's configured Hugging Face endpoint
    resources: LLMResources | None = None
    autoscaling: AutoscalingSpec | None = None
    placement: Placement | None = None
    extra_args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)


class LLMServiceClusterStatus(APIModel):
    name: str = ""
    replicas: int = 0
    ready_replicas: int = 0
    phase: str = ""
    message: str = ""


class LLMServiceStatus(APIModel):
    phase: str = ""  # Pending, Loading, Serving, Scaling, Failed
    endpoint: str = ""
    replicas: int = 0
    ready_replicas: int = 0
    selector: str = ""  # label selector of the replicas, for the scale subresource
    message: str = ""
    observed_generation: int = 0
    conditions: list[Condition] = Field(default_factory=list)
    clusters: list[LLMServiceClusterStatus] = Field(default_factory=list)


class LLMService(TypedModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: LLMServiceSpec = Field(default_factory=LLMServiceSpec)
    status: LLMServiceStatus | None = None


# --- RAGService ----------------------------------------------------------------------------------


class LocalObjectReference(APIModel):
    name: str = ""


class EmbeddingSpec(APIModel):
    model: str = ""  # e.g. "paraphrase-multilingual-MiniLM-L12-v2"
    dimension: int | None = None


class VectorStoreSpec(APIModel):
    type: str = "chromadb"  # chromadb, milvus, qdrant, weaviate, pgvector
    endpoint: str = ""  # empty (chromadb only): the server provisions a persistent store
    collection: str = ""  # empty: the RAGService's name
    storage: str = ""  # a quantity, e.g. "5Gi", for a provisioned store
    storage_class_name: str = ""


class DocumentSource(APIModel):
    name: str = ""
    type: str = ""  # git, url, s3, configMap
    uri: str = ""  # for git, url and s3
    config_map_ref: LocalObjectReference | None = None  # for configMap
    refresh_interval: str = ""  # a duration such as "5m"; empty: index once


class ChunkingSpec(APIModel):
    chunk_size: int = 512
    chunk_overlap: int = 64


class RetrievalSpec(APIModel):
    top_k: int = 4


class RAGServiceSpec(APIModel):
    llm_service_ref: LocalObjectReference = Field(default_factory=LocalObjectReference)
    embedding: EmbeddingSpec = Field(default_factory=EmbeddingSpec)
    vector_store: VectorStoreSpec = Field(default_factory=VectorStoreSpec)
    sources: list[DocumentSource] = Field(default_factory=list)
    chunking: ChunkingSpec = Field(default_factory=ChunkingSpec)
    retrieval: RetrievalSpec = Field(default_factory=RetrievalSpec)
    replicas: int = 1


class RAGServiceStatus(APIModel):
    phase: str = ""  # Pending, Indexing, Serving, Failed
    endpoint: str = ""
    ready_replicas: int = 0
    indexed_documents: int = 0
    message: str = ""
    observed_generation: int = 0
    conditions: list[Condition] = Field(default_factory=list)


class RAGService(TypedModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RAGServiceSpec = Field(default_factory=RAGServiceSpec)
    status: RAGServiceStatus | None = None
