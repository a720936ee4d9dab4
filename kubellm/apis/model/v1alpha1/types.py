"""Types of model.kubellm.io/v1alpha1: LLMService (a served model) and RAGService (retrieval on top).

LLMService follows the operator it replaces (vLLM OpenAI server, HPA on `vllm:num_requests_waiting`)
and adds a Karmada-style `placement` over member clusters.

Every field has a default so that decoding never fails on a missing or dropped value; requiredness,
enums, ranges and forms are declared on the fields (`kubellm.apis.constraints`), and `validation.py`
adds the rules that cannot be declared. Docstrings and field descriptions are what `kubectl explain` shows.
"""

from __future__ import annotations

from pydantic import Field

from kubellm.apis.base import APIModel
from kubellm.apis.cluster.v1alpha1.types import TAINT_EFFECTS
from kubellm.apis.constraints import constrained
from kubellm.apis.listtypes import ATOMIC_MAP, atomic_list, map_list, set_list
from kubellm.apis.meta.v1.types import Condition, LabelSelector, ObjectMeta, TypedModel

GROUP = "model.kubellm.io"
VERSION = "v1alpha1"

DEFAULT_MAX_MODEL_LEN = 2048
DEFAULT_GPU_MEMORY_UTILIZATION = "0.85"

QUANTIZATIONS = ("", "awq", "gptq", "fp8")
LLM_PHASES = ("Pending", "Loading", "Serving", "Scaling", "Failed")
RAG_PHASES = ("Pending", "Indexing", "Serving", "Failed")
MIN_MODEL_LEN = 512
MIN_MODEL_NAME_LEN = 3
REPLICA_SCHEDULING_TYPES = ("Duplicated", "Divided")
REPLICA_DIVISION_PREFERENCES = ("", "Aggregated", "Weighted")
DYNAMIC_WEIGHTS = ("", "AvailableReplicas")
TOLERATION_OPERATORS = ("Equal", "Exists")
VECTOR_STORES = ("chromadb", "milvus", "qdrant", "weaviate", "pgvector")
SOURCE_TYPES = ("git", "url", "s3", "configMap")
MAX_TOP_K = 100
MAX_COLLECTION_LEN = 63

ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
ENV_NAME_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or "
    "'.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', "
    "regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)
QUANTITY_PATTERN = r"^(([0-9]+(\.[0-9]*)?|\.[0-9]+)([numkMGTPE]|[KMGTPE]i|[eE][-+]?[0-9]+)?)?$"
"""A Kubernetes quantity without sign, or empty."""
QUANTITY_MSG = 'must be a quantity such as "500m", "4" or "16Gi"'
DECIMAL_PATTERN = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
DECIMAL_MSG = 'must be a decimal number such as "0.85"'
DURATION_PATTERN = r"^(([0-9]+(\.[0-9]+)?)(ns|us|µs|ms|s|m|h))*$"
"""A Go duration without sign, or empty."""
DURATION_MSG = 'must be a duration such as "30s", "5m" or "1h"'
COLLECTION_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9_])?)?$"
COLLECTION_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', start with an alphanumeric character "
    "and end with an alphanumeric character or '_'"
)


# --- LLMService ----------------------------------------------------------------------------------


class LLMResources(APIModel):
    """Compute resources of each replica."""

    gpu: int = constrained(default=1, minimum=1, description="GPUs (nvidia.com/gpu) per replica; at least 1.")
    cpu: str = constrained(
        default="", pattern=QUANTITY_PATTERN, messages={"pattern": QUANTITY_MSG},
        description='CPU per replica, a quantity such as "4" or "500m"; empty: no request.',
    )
    memory: str = constrained(
        default="", pattern=QUANTITY_PATTERN, messages={"pattern": QUANTITY_MSG},
        description='Memory per replica, a quantity such as "16Gi"; empty: no request.',
    )


class AutoscalingSpec(APIModel):
    """Horizontal autoscaling on the number of requests waiting in vLLM's queue."""

    enabled: bool = Field(default=True, description="Whether the replicas are autoscaled.")
    min_replicas: int = constrained(
        default=1, minimum=1, description="Fewest replicas; at least 1 and at most maxReplicas."
    )
    max_replicas: int | None = constrained(
        default=None, required=True, minimum=1, description="Most replicas; at least 1."
    )
    waiting_threshold: int = constrained(
        default=5, minimum=1,
        description="Scale out when vllm:num_requests_waiting per replica exceeds this number; at least 1.",
    )


class ClusterAffinity(APIModel):
    """Which member clusters qualify: by name, by label, or both (both must match)."""

    cluster_names: list[str] = set_list(default_factory=list, description="Names of the Clusters that qualify.")
    label_selector: LabelSelector | None = Field(default=None, description="Labels the qualifying Clusters must have.")


class Toleration(APIModel):
    """Lets replicas be placed on member clusters with a matching taint."""

    key: str = Field(default="", description="Taint key to match; empty (with operator Exists) matches every key.")
    operator: str = constrained(
        default="", enum=("", *TOLERATION_OPERATORS),
        description="Equal (the default when empty) matches key and value; Exists matches the key.",
    )
    value: str = Field(default="", description="Taint value to match with operator Equal; empty with Exists.")
    effect: str = constrained(
        default="", enum=("", *TAINT_EFFECTS),
        description="Taint effect to match: NoSchedule, PreferNoSchedule or NoExecute; empty: all.",
    )


class StaticClusterWeight(APIModel):
    """A weight for the member clusters a target selects."""

    target_cluster: ClusterAffinity = constrained(
        required=True, default_factory=ClusterAffinity,
        description="The clusters that get this weight (names or labels).",
    )
    weight: int = constrained(default=1, minimum=1, description="Relative share of the replicas; at least 1.")


class ClusterPreferences(APIModel):
    """How replicas are weighted between member clusters: static weights or a dynamic rule, not both."""

    static_weight_list: list[StaticClusterWeight] = Field(
        default_factory=list, description="Fixed weights per group of clusters."
    )
    dynamic_weight: str = constrained(
        default="", enum=DYNAMIC_WEIGHTS,
        description='"AvailableReplicas": weigh each cluster by how many replicas it can still take.',
    )


class ReplicaScheduling(APIModel):
    """How replicas are spread over the selected member clusters."""

    replica_scheduling_type: str = constrained(
        default="Divided", enum=REPLICA_SCHEDULING_TYPES,
        description="Duplicated runs all replicas in every cluster; Divided splits them between clusters.",
    )
    replica_division_preference: str = constrained(
        default="", enum=REPLICA_DIVISION_PREFERENCES,
        description='With Divided: Aggregated packs replicas into few clusters, Weighted ("") follows weights.',
    )
    weight_preference: ClusterPreferences | None = Field(
        default=None, description="Weights for Weighted division; unset: all clusters weigh the same."
    )


class Placement(APIModel):
    """Which member clusters run the replicas, and how many each."""

    cluster_affinity: ClusterAffinity | None = Field(
        default=None, description="Clusters that may run replicas; unset: every schedulable cluster."
    )
    cluster_tolerations: list[Toleration] = Field(
        default_factory=list, description="Taints of member clusters that the replicas tolerate."
    )
    replica_scheduling: ReplicaScheduling | None = Field(
        default=None, description="How replicas are spread over the clusters; unset: Divided, Weighted."
    )


class EnvVar(APIModel):
    """An environment variable of the vLLM container."""

    name: str = constrained(
        default="", required=True, pattern=ENV_NAME_PATTERN, messages={"pattern": ENV_NAME_MSG},
        description="Name of the variable, e.g. VLLM_LOGGING_LEVEL.",
    )
    value: str = Field(default="", description="Value of the variable.")


class LLMServiceSpec(APIModel):
    """The model to serve, how vLLM runs it, and where its replicas go."""

    model: str = constrained(
        default="", required=True, min_length=MIN_MODEL_NAME_LEN,
        description='Hugging Face model ID to serve, e.g. "Qwen/Qwen2.5-3B-Instruct".',
    )
    quantization: str = constrained(
        default="", enum=QUANTIZATIONS, description='Quantization method of the weights: awq, gptq or fp8; "" for none.'
    )
    max_model_len: int = constrained(
        default=DEFAULT_MAX_MODEL_LEN, minimum=MIN_MODEL_LEN,
        description="Context length in tokens (vLLM --max-model-len); at least 512.",
    )
    gpu_memory_utilization: str = constrained(
        default=DEFAULT_GPU_MEMORY_UTILIZATION, required=True, pattern=DECIMAL_PATTERN,
        messages={"pattern": DECIMAL_MSG},
        description='Fraction of GPU memory vLLM may use, a decimal in (0, 1] such as "0.85".',
    )
    replicas: int = constrained(
        default=1, minimum=0, description="Number of replicas when autoscaling is off; at least 0."
    )
    image: str = Field(default="", description="vLLM OpenAI server image; empty: the server's configured image.")
    hf_endpoint: str = Field(
        default="", description="Hugging Face endpoint URL to download from; empty: the server's configured one."
    )
    resources: LLMResources | None = Field(default=None, description="GPUs, CPU and memory per replica.")
    autoscaling: AutoscalingSpec | None = Field(
        default=None, description="Autoscaling on queued requests; unset: a fixed number of replicas."
    )
    placement: Placement | None = Field(
        default=None, description="Member clusters that run the replicas; unset: any schedulable cluster."
    )
    extra_args: list[str] = atomic_list(
        default_factory=list,
        description="More vLLM arguments; flags the server derives from the spec (--model ...) are not allowed.",
    )
    env: list[EnvVar] = Field(default_factory=list, description="Environment variables of the vLLM container.")


class LLMServiceClusterStatus(APIModel):
    """The replicas of an LLMService in one member cluster."""

    name: str = constrained(default="", required=True, description="Name of the member Cluster; unique in the list.")
    replicas: int = constrained(default=0, minimum=0, description="Replicas placed in this cluster.")
    ready_replicas: int = constrained(
        default=0, minimum=0, description="Replicas ready to serve in this cluster; at most replicas."
    )
    phase: str = constrained(
        default="", enum=("", *LLM_PHASES, "Removing"),
        description="Phase in this cluster: Pending, Loading, Serving, Scaling or Failed; Removing while the "
        "objects of a cluster no longer chosen wait to be deleted (it is unreachable).",
    )
    message: str = Field(default="", description="Human-readable details of the phase in this cluster.")


class LLMServiceStatus(APIModel):
    """The observed state of an LLMService."""

    phase: str = constrained(
        default="", enum=("", *LLM_PHASES), description="Lifecycle phase: Pending, Loading, Serving, Scaling or Failed."
    )
    endpoint: str = Field(default="", description="URL of the OpenAI-compatible API once serving.")
    replicas: int = constrained(default=0, minimum=0, description="Replicas placed, in all clusters.")
    ready_replicas: int = constrained(
        default=0, minimum=0, description="Replicas ready to serve, in all clusters; at most replicas."
    )
    selector: str = Field(
        default="", description="Label selector of the replicas, for the scale subresource and autoscalers."
    )
    message: str = Field(default="", description="Human-readable details of the phase.")
    observed_generation: int = constrained(
        default=0, minimum=0, description="The metadata.generation this status is for."
    )
    conditions: list[Condition] = map_list(
        "type", default_factory=list, description="Current conditions, such as Ready."
    )
    clusters: list[LLMServiceClusterStatus] = map_list(
        "name", default_factory=list, description="Replicas per member cluster."
    )


class LLMService(TypedModel):
    """LLMService serves one large language model with vLLM's OpenAI-compatible server on member clusters."""

    metadata: ObjectMeta = constrained(
        required=True, default_factory=ObjectMeta, description="Standard object metadata."
    )
    spec: LLMServiceSpec = constrained(
        required=True, default_factory=LLMServiceSpec, description="The desired state of the service."
    )
    status: LLMServiceStatus | None = Field(
        default=None, description="Observed state of the service; written by the server through /status."
    )


# --- RAGService ----------------------------------------------------------------------------------


class LocalObjectReference(APIModel):
    """A reference to an object by name, in the same namespace."""

    model_config = ATOMIC_MAP  # replaced whole by server-side apply, as in Kubernetes

    name: str = constrained(default="", required=True, description="Name of the referenced object.")


class EmbeddingSpec(APIModel):
    """The embedding model that turns documents and queries into vectors. Immutable."""

    model: str = constrained(
        default="", required=True,
        description='Embedding model ID, e.g. "paraphrase-multilingual-MiniLM-L12-v2"; immutable.',
    )
    dimension: int | None = constrained(
        default=None, minimum=1, description="Dimension of the vectors; unset: the model's own. Immutable."
    )


class VectorStoreSpec(APIModel):
    """Where the vectors are stored."""

    type: str = constrained(
        default="chromadb", required=True, enum=VECTOR_STORES,
        description="Kind of vector store: chromadb, milvus, qdrant, weaviate or pgvector.",
    )
    endpoint: str = Field(
        default="", description="URL of the store; empty (chromadb only): the server provisions a persistent store."
    )
    collection: str = constrained(
        default="", max_length=MAX_COLLECTION_LEN, pattern=COLLECTION_PATTERN,
        messages={"maxLength": f"must be no more than {MAX_COLLECTION_LEN} characters", "pattern": COLLECTION_MSG},
        description="Collection to use; empty: the RAGService's name.",
    )
    storage: str = constrained(
        default="", pattern=QUANTITY_PATTERN, messages={"pattern": QUANTITY_MSG},
        description='Volume size of a provisioned store, a quantity such as "5Gi".',
    )
    storage_class_name: str = Field(
        default="", description="StorageClass of a provisioned store's volume; empty: the cluster default."
    )


class DocumentSource(APIModel):
    """A place to read documents from: a git repository, a URL, an S3 bucket or a ConfigMap."""

    name: str = constrained(
        default="", required=True, description="Name of the source, a DNS label unique in the list."
    )
    type: str = constrained(
        default="", required=True, enum=SOURCE_TYPES, description="Kind of source: git, url, s3 or configMap."
    )
    uri: str = Field(default="", description="Location of the documents, for git, url and s3.")
    config_map_ref: LocalObjectReference | None = Field(
        default=None, description="ConfigMap holding the documents, for type configMap."
    )
    refresh_interval: str = constrained(
        default="", pattern=DURATION_PATTERN, messages={"pattern": DURATION_MSG},
        description='How often to re-index, a duration such as "5m"; empty: index once.',
    )


class ChunkingSpec(APIModel):
    """How documents are split before embedding."""

    chunk_size: int = constrained(default=512, minimum=1, description="Size of a chunk; at least 1.")
    chunk_overlap: int = constrained(
        default=64, minimum=0, description="Overlap between consecutive chunks; less than chunkSize."
    )


class RetrievalSpec(APIModel):
    """How many chunks are retrieved for a query."""

    top_k: int = constrained(
        default=4, minimum=1, maximum=MAX_TOP_K, description="Number of chunks retrieved per query, from 1 to 100."
    )


class RAGServiceSpec(APIModel):
    """The model answering, the embedding, the vector store and the documents of a RAGService."""

    llm_service_ref: LocalObjectReference = constrained(
        required=True, default_factory=LocalObjectReference,
        description="The LLMService, in this namespace, that answers.",
    )
    embedding: EmbeddingSpec = constrained(
        required=True, default_factory=EmbeddingSpec, description="The embedding model; immutable."
    )
    vector_store: VectorStoreSpec = Field(
        default_factory=VectorStoreSpec, description="Where the vectors are stored; its type is immutable."
    )
    sources: list[DocumentSource] = map_list("name", default_factory=list, description="Documents to index.")
    chunking: ChunkingSpec = Field(default_factory=ChunkingSpec, description="How documents are split.")
    retrieval: RetrievalSpec = Field(default_factory=RetrievalSpec, description="How chunks are retrieved.")
    replicas: int = constrained(
        default=1, minimum=0, description="Number of replicas of the retrieval service; at least 0."
    )


class RAGServiceStatus(APIModel):
    """The observed state of a RAGService."""

    phase: str = constrained(
        default="", enum=("", *RAG_PHASES), description="Lifecycle phase: Pending, Indexing, Serving or Failed."
    )
    endpoint: str = Field(default="", description="URL of the retrieval API once serving.")
    ready_replicas: int = constrained(default=0, minimum=0, description="Replicas ready to serve.")
    indexed_documents: int = constrained(default=0, minimum=0, description="Number of documents indexed.")
    message: str = Field(default="", description="Human-readable details of the phase.")
    observed_generation: int = constrained(
        default=0, minimum=0, description="The metadata.generation this status is for."
    )
    conditions: list[Condition] = map_list(
        "type", default_factory=list, description="Current conditions, such as Ready."
    )


class RAGService(TypedModel):
    """RAGService answers questions about a set of documents with retrieval on top of an LLMService."""

    metadata: ObjectMeta = constrained(
        required=True, default_factory=ObjectMeta, description="Standard object metadata."
    )
    spec: RAGServiceSpec = constrained(
        required=True, default_factory=RAGServiceSpec, description="The desired state of the service."
    )
    status: RAGServiceStatus | None = Field(
        default=None, description="Observed state of the service; written by the server through /status."
    )
