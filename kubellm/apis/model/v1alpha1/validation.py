"""Validation of model.kubellm.io/v1alpha1 LLMService and RAGService (spec, and status when present)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from kubellm.apis.cluster.v1alpha1.validation import (
    at_least,
    at_most,
    url_problems,
    validate_conditions,
    validate_label_name,
    validate_label_selector,
    validate_taint_effect,
    validate_unique_names,
)
from kubellm.apis.model.v1alpha1.types import (
    AutoscalingSpec,
    ClusterAffinity,
    DocumentSource,
    EnvVar,
    LLMResources,
    LLMService,
    LLMServiceSpec,
    LLMServiceStatus,
    Placement,
    RAGService,
    RAGServiceSpec,
    RAGServiceStatus,
    ReplicaScheduling,
    Toleration,
)
from kubellm.apis.validation import field, names
from kubellm.apis.validation.field import ErrorList, Path

SPEC = Path("spec")
STATUS = Path("status")

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

# vLLM flags the server derives from the spec; extraArgs may not set them.
MANAGED_ARGS = {
    "--model": "spec.model",
    "--quantization": "spec.quantization",
    "--max-model-len": "spec.maxModelLen",
    "--gpu-memory-utilization": "spec.gpuMemoryUtilization",
    "--host": "",
    "--port": "",
    "--served-model-name": "",
}

_DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
ENV_NAME_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or "
    "'.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', "
    "regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)
_QUANTITY_RE = re.compile(r"^(\d+(\.\d*)?|\.\d+)([numkMGTPE]|[KMGTPE]i|[eE][-+]?\d+)?$")
QUANTITY_MSG = 'must be a quantity such as "500m", "4" or "16Gi"'
_DECIMAL_RE = re.compile(r"^(\d+(\.\d*)?|\.\d+)$")
_DURATION_RE = re.compile(r"^((\d+(\.\d+)?)(ns|us|µs|ms|s|m|h))+$")
DURATION_MSG = 'must be a duration such as "30s", "5m" or "1h"'
_COLLECTION_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9_])?$")
COLLECTION_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', start with an alphanumeric character "
    "and end with an alphanumeric character or '_'"
)
_MAX_COLLECTION_LEN = 63


def dns1035_label(value: str) -> list[str]:
    """Name rule for LLMService and RAGService: their names become Service names in member clusters.

    Pass it as the Store's name validator for these kinds.
    """
    errs: list[str] = []
    if len(value) > names.DNS1123_LABEL_MAX:
        errs.append(f"must be no more than {names.DNS1123_LABEL_MAX} characters")
    if not _DNS1035_LABEL_RE.match(value):
        errs.append(DNS1035_LABEL_MSG)
    return errs


def _quantity(value: str, path: Path) -> ErrorList:
    if value and not _QUANTITY_RE.match(value):
        return [field.invalid(path, value, QUANTITY_MSG)]
    return []


def _no_whitespace(value: str, path: Path) -> ErrorList:
    if value != value.strip():
        return [field.invalid(path, value, "must not have leading or trailing whitespace")]
    if any(c.isspace() for c in value):
        return [field.invalid(path, value, "must not contain whitespace")]
    return []


# --- LLMService spec -----------------------------------------------------------------------------


def _validate_model_name(model: str, path: Path) -> ErrorList:
    if not model:
        return [field.required(path)]
    if len(model) < MIN_MODEL_NAME_LEN:
        return [field.invalid(path, model, f"must be at least {MIN_MODEL_NAME_LEN} characters")]
    return _no_whitespace(model, path)


def _validate_gpu_memory_utilization(value: str, path: Path) -> ErrorList:
    if not value:
        return [field.required(path)]
    if not _DECIMAL_RE.match(value):
        return [field.invalid(path, value, 'must be a decimal number such as "0.85"')]
    try:
        number = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        return [field.invalid(path, value, 'must be a decimal number such as "0.85"')]
    if not Decimal(0) < number <= Decimal(1):
        return [field.invalid(path, value, "must be greater than 0 and less than or equal to 1")]
    return []


def _validate_resources(res: LLMResources | None, path: Path) -> ErrorList:
    if res is None:
        return []
    errs = at_least(res.gpu, 1, path.child("gpu"))
    errs.extend(_quantity(res.cpu, path.child("cpu")))
    errs.extend(_quantity(res.memory, path.child("memory")))
    return errs


def _validate_autoscaling(auto: AutoscalingSpec | None, path: Path) -> ErrorList:
    if auto is None:
        return []
    errs = at_least(auto.min_replicas, 1, path.child("minReplicas"))
    if auto.max_replicas is None:
        errs.append(field.required(path.child("maxReplicas")))
    else:
        errs.extend(at_least(auto.max_replicas, 1, path.child("maxReplicas")))
        if auto.min_replicas > auto.max_replicas:
            errs.append(
                field.invalid(
                    path.child("minReplicas"),
                    auto.min_replicas,
                    f"must be less than or equal to {path.child('maxReplicas')}",
                )
            )
    errs.extend(at_least(auto.waiting_threshold, 1, path.child("waitingThreshold")))
    return errs


def _validate_cluster_affinity(aff: ClusterAffinity, path: Path) -> ErrorList:
    errs: ErrorList = []
    for i, name in enumerate(aff.cluster_names):
        p = path.child("clusterNames").index(i)
        errs.extend(field.invalid(p, name, m) for m in names.dns1123_subdomain(name))
    errs.extend(validate_unique_names(aff.cluster_names, path.child("clusterNames")))
    errs.extend(validate_label_selector(aff.label_selector, path.child("labelSelector")))
    return errs


def _validate_tolerations(tolerations: Sequence[Toleration], path: Path) -> ErrorList:
    """corev1 ValidateTolerations, without tolerationSeconds."""
    errs: ErrorList = []
    for i, t in enumerate(tolerations):
        p = path.index(i)
        if t.key:
            errs.extend(validate_label_name(t.key, p.child("key")))
        elif t.operator != "Exists":
            errs.append(
                field.invalid(
                    p.child("operator"),
                    t.operator,
                    'operator must be Exists when `key` is empty, which means "match all values and all '
                    'keys"',
                )
            )
        if t.operator in ("", "Equal"):
            if msgs := names.label_value(t.value):
                errs.append(field.invalid(p.child("operator"), t.value, ";".join(msgs)))
        elif t.operator == "Exists":
            if t.value:
                errs.append(
                    field.invalid(
                        p.child("operator"),
                        t.model_dump(by_alias=True),
                        "value must be empty when `operator` is 'Exists'",
                    )
                )
        else:
            errs.append(field.not_supported(p.child("operator"), t.operator, TOLERATION_OPERATORS))
        errs.extend(validate_taint_effect(t.effect, p.child("effect"), allow_empty=True))
    return errs


def _validate_replica_scheduling(rs: ReplicaScheduling | None, path: Path) -> ErrorList:
    if rs is None:
        return []
    errs: ErrorList = []
    if rs.replica_scheduling_type not in REPLICA_SCHEDULING_TYPES:
        errs.append(
            field.not_supported(
                path.child("replicaSchedulingType"), rs.replica_scheduling_type, REPLICA_SCHEDULING_TYPES
            )
        )
    pref_path = path.child("replicaDivisionPreference")
    if rs.replica_division_preference not in REPLICA_DIVISION_PREFERENCES:
        errs.append(
            field.not_supported(pref_path, rs.replica_division_preference, REPLICA_DIVISION_PREFERENCES)
        )
    divided = rs.replica_scheduling_type == "Divided"
    if rs.replica_scheduling_type == "Duplicated" and rs.replica_division_preference:
        errs.append(field.forbidden(pref_path, "may only be set when replicaSchedulingType is Divided"))
    wp = rs.weight_preference
    if wp is None:
        return errs
    wp_path = path.child("weightPreference")
    if not divided or rs.replica_division_preference == "Aggregated":
        errs.append(
            field.forbidden(
                wp_path,
                "may only be set when replicaSchedulingType is Divided and replicaDivisionPreference is "
                "Weighted",
            )
        )
    if wp.dynamic_weight not in DYNAMIC_WEIGHTS:
        errs.append(field.not_supported(wp_path.child("dynamicWeight"), wp.dynamic_weight, DYNAMIC_WEIGHTS))
    list_path = wp_path.child("staticWeightList")
    if wp.dynamic_weight and wp.static_weight_list:
        errs.append(field.forbidden(list_path, "may not be set when dynamicWeight is set"))
    elif not wp.dynamic_weight and not wp.static_weight_list:
        errs.append(field.required(wp_path, "must specify staticWeightList or dynamicWeight"))
    for i, w in enumerate(wp.static_weight_list):
        p = list_path.index(i)
        target = w.target_cluster
        if not target.cluster_names and target.label_selector is None:
            errs.append(
                field.required(p.child("targetCluster"), "must specify clusterNames or labelSelector")
            )
        errs.extend(_validate_cluster_affinity(target, p.child("targetCluster")))
        errs.extend(at_least(w.weight, 1, p.child("weight")))
    return errs


def _validate_placement(placement: Placement | None, path: Path) -> ErrorList:
    if placement is None:
        return []
    errs: ErrorList = []
    if placement.cluster_affinity is not None:
        errs.extend(_validate_cluster_affinity(placement.cluster_affinity, path.child("clusterAffinity")))
    errs.extend(_validate_tolerations(placement.cluster_tolerations, path.child("clusterTolerations")))
    errs.extend(_validate_replica_scheduling(placement.replica_scheduling, path.child("replicaScheduling")))
    return errs


def _validate_extra_args(args: Sequence[str], path: Path) -> ErrorList:
    errs: ErrorList = []
    for i, arg in enumerate(args):
        flag = arg.split("=", 1)[0].replace("_", "-")
        if flag in MANAGED_ARGS:
            source = MANAGED_ARGS[flag]
            detail = f"{flag} is set by the server" + (f" from {source}" if source else "")
            errs.append(field.invalid(path.index(i), arg, detail))
    return errs


def _validate_env(env: Sequence[EnvVar], path: Path) -> ErrorList:
    errs: ErrorList = []
    for i, var in enumerate(env):
        p = path.index(i).child("name")
        if not var.name:
            errs.append(field.required(p))
        elif not _ENV_NAME_RE.match(var.name):
            errs.append(field.invalid(p, var.name, ENV_NAME_MSG))
    return errs


def validate_llm_service_spec(spec: LLMServiceSpec, path: Path = SPEC) -> ErrorList:
    errs = _validate_model_name(spec.model, path.child("model"))
    if spec.quantization not in QUANTIZATIONS:
        errs.append(field.not_supported(path.child("quantization"), spec.quantization, QUANTIZATIONS))
    errs.extend(at_least(spec.max_model_len, MIN_MODEL_LEN, path.child("maxModelLen")))
    errs.extend(
        _validate_gpu_memory_utilization(spec.gpu_memory_utilization, path.child("gpuMemoryUtilization"))
    )
    errs.extend(at_least(spec.replicas, 0, path.child("replicas")))
    errs.extend(_no_whitespace(spec.image, path.child("image")))
    if spec.hf_endpoint:
        errs.extend(
            field.invalid(path.child("hfEndpoint"), spec.hf_endpoint, m)
            for m in url_problems(spec.hf_endpoint, ("http", "https"))
        )
    errs.extend(_validate_resources(spec.resources, path.child("resources")))
    errs.extend(_validate_autoscaling(spec.autoscaling, path.child("autoscaling")))
    errs.extend(_validate_placement(spec.placement, path.child("placement")))
    errs.extend(_validate_extra_args(spec.extra_args, path.child("extraArgs")))
    errs.extend(_validate_env(spec.env, path.child("env")))
    return errs


# --- LLMService status ---------------------------------------------------------------------------


def _phase(phase: str, allowed: Sequence[str], path: Path) -> ErrorList:
    if phase and phase not in allowed:
        return [field.not_supported(path, phase, allowed)]
    return []


def _ready_not_above(ready: int, total: int, path: Path, total_path: Path) -> ErrorList:
    if ready > total:
        return [field.invalid(path, ready, f"cannot be greater than {total_path}")]
    return []


def validate_llm_service_status(status: LLMServiceStatus, path: Path = STATUS) -> ErrorList:
    errs = _phase(status.phase, LLM_PHASES, path.child("phase"))
    errs.extend(at_least(status.replicas, 0, path.child("replicas")))
    errs.extend(at_least(status.ready_replicas, 0, path.child("readyReplicas")))
    errs.extend(
        _ready_not_above(
            status.ready_replicas, status.replicas, path.child("readyReplicas"), path.child("replicas")
        )
    )
    errs.extend(at_least(status.observed_generation, 0, path.child("observedGeneration")))
    errs.extend(validate_conditions(status.conditions, path.child("conditions")))
    clusters = path.child("clusters")
    for i, c in enumerate(status.clusters):
        p = clusters.index(i)
        if not c.name:
            errs.append(field.required(p.child("name")))
        errs.extend(at_least(c.replicas, 0, p.child("replicas")))
        errs.extend(at_least(c.ready_replicas, 0, p.child("readyReplicas")))
        errs.extend(
            _ready_not_above(c.ready_replicas, c.replicas, p.child("readyReplicas"), p.child("replicas"))
        )
        errs.extend(_phase(c.phase, LLM_PHASES, p.child("phase")))
    errs.extend(validate_unique_names((c.name for c in status.clusters), clusters, "name"))
    return errs


def validate_llm_service(obj: LLMService) -> ErrorList:
    errs = validate_llm_service_spec(obj.spec)
    if obj.status is not None:
        errs.extend(validate_llm_service_status(obj.status))
    return errs


def validate_llm_service_update(new: LLMService, old: LLMService) -> ErrorList:
    """Every LLMService field may change: a new model or setting rolls the replicas."""
    return validate_llm_service(new)


# --- RAGService ----------------------------------------------------------------------------------


def _validate_source(src: DocumentSource, path: Path) -> ErrorList:
    errs: ErrorList = []
    if not src.name:
        errs.append(field.required(path.child("name")))
    else:
        errs.extend(field.invalid(path.child("name"), src.name, m) for m in names.dns1123_label(src.name))
    uri_path, ref_path = path.child("uri"), path.child("configMapRef")
    if not src.type:
        errs.append(field.required(path.child("type")))
    elif src.type not in SOURCE_TYPES:
        errs.append(field.not_supported(path.child("type"), src.type, SOURCE_TYPES))
    elif src.type == "configMap":
        if src.config_map_ref is None or not src.config_map_ref.name:
            errs.append(field.required(ref_path.child("name"), "must be set when type is configMap"))
        else:
            errs.extend(
                field.invalid(ref_path.child("name"), src.config_map_ref.name, m)
                for m in names.dns1123_subdomain(src.config_map_ref.name)
            )
        if src.uri:
            errs.append(field.forbidden(uri_path, "may not be set when type is configMap"))
    else:
        if src.config_map_ref is not None:
            errs.append(field.forbidden(ref_path, "may only be set when type is configMap"))
        if not src.uri:
            errs.append(field.required(uri_path, f"must be set when type is {src.type}"))
        elif src.type == "url":
            errs.extend(field.invalid(uri_path, src.uri, m) for m in url_problems(src.uri, ("http", "https")))
        elif src.type == "s3":
            errs.extend(field.invalid(uri_path, src.uri, m) for m in url_problems(src.uri, ("s3",)))
        else:
            errs.extend(_no_whitespace(src.uri, uri_path))
    if src.refresh_interval and not _DURATION_RE.match(src.refresh_interval):
        errs.append(field.invalid(path.child("refreshInterval"), src.refresh_interval, DURATION_MSG))
    return errs


def validate_rag_service_spec(spec: RAGServiceSpec, path: Path = SPEC) -> ErrorList:
    errs: ErrorList = []
    ref = path.child("llmServiceRef", "name")
    if not spec.llm_service_ref.name:
        errs.append(field.required(ref))
    else:
        errs.extend(
            field.invalid(ref, spec.llm_service_ref.name, m)
            for m in names.dns1123_subdomain(spec.llm_service_ref.name)
        )

    emb = path.child("embedding")
    if not spec.embedding.model:
        errs.append(field.required(emb.child("model")))
    else:
        errs.extend(_no_whitespace(spec.embedding.model, emb.child("model")))
    if spec.embedding.dimension is not None:
        errs.extend(at_least(spec.embedding.dimension, 1, emb.child("dimension")))

    vs, store = path.child("vectorStore"), spec.vector_store
    if not store.type:
        errs.append(field.required(vs.child("type")))
    elif store.type not in VECTOR_STORES:
        errs.append(field.not_supported(vs.child("type"), store.type, VECTOR_STORES))
    elif store.type != "chromadb" and not store.endpoint:
        errs.append(field.required(vs.child("endpoint"), f'must be set when type is "{store.type}"'))
    errs.extend(_no_whitespace(store.endpoint, vs.child("endpoint")))
    if store.collection:
        if len(store.collection) > _MAX_COLLECTION_LEN:
            errs.append(
                field.invalid(
                    vs.child("collection"),
                    store.collection,
                    f"must be no more than {_MAX_COLLECTION_LEN} characters",
                )
            )
        if not _COLLECTION_RE.match(store.collection):
            errs.append(field.invalid(vs.child("collection"), store.collection, COLLECTION_MSG))
    errs.extend(_quantity(store.storage, vs.child("storage")))
    if store.storage_class_name:
        errs.extend(
            field.invalid(vs.child("storageClassName"), store.storage_class_name, m)
            for m in names.dns1123_subdomain(store.storage_class_name)
        )

    sources = path.child("sources")
    seen: set[str] = set()
    for i, src in enumerate(spec.sources):
        errs.extend(_validate_source(src, sources.index(i)))
        if src.name and src.name in seen:
            errs.append(field.duplicate(sources.index(i).child("name"), src.name))
        seen.add(src.name)

    ch = path.child("chunking")
    errs.extend(at_least(spec.chunking.chunk_size, 1, ch.child("chunkSize")))
    errs.extend(at_least(spec.chunking.chunk_overlap, 0, ch.child("chunkOverlap")))
    if spec.chunking.chunk_size >= 1 and spec.chunking.chunk_overlap >= spec.chunking.chunk_size:
        errs.append(
            field.invalid(
                ch.child("chunkOverlap"),
                spec.chunking.chunk_overlap,
                f"must be less than {ch.child('chunkSize')}",
            )
        )

    top_k = path.child("retrieval", "topK")
    errs.extend(at_least(spec.retrieval.top_k, 1, top_k))
    errs.extend(at_most(spec.retrieval.top_k, MAX_TOP_K, top_k))
    errs.extend(at_least(spec.replicas, 0, path.child("replicas")))
    return errs


def validate_rag_service_status(status: RAGServiceStatus, path: Path = STATUS) -> ErrorList:
    errs = _phase(status.phase, RAG_PHASES, path.child("phase"))
    errs.extend(at_least(status.ready_replicas, 0, path.child("readyReplicas")))
    errs.extend(at_least(status.indexed_documents, 0, path.child("indexedDocuments")))
    errs.extend(at_least(status.observed_generation, 0, path.child("observedGeneration")))
    errs.extend(validate_conditions(status.conditions, path.child("conditions")))
    return errs


def validate_rag_service(obj: RAGService) -> ErrorList:
    errs = validate_rag_service_spec(obj.spec)
    if obj.status is not None:
        errs.extend(validate_rag_service_status(obj.status))
    return errs


def validate_rag_service_update(new: RAGService, old: RAGService) -> ErrorList:
    """The embedding and the kind of vector store are immutable: changing them invalidates the index."""
    errs = validate_rag_service(new)
    emb = SPEC.child("embedding")
    if new.spec.embedding.model != old.spec.embedding.model:
        errs.append(field.invalid(emb.child("model"), new.spec.embedding.model, "field is immutable"))
    if new.spec.embedding.dimension != old.spec.embedding.dimension:
        errs.append(field.invalid(emb.child("dimension"), new.spec.embedding.dimension, "field is immutable"))
    if new.spec.vector_store.type != old.spec.vector_store.type:
        errs.append(
            field.invalid(SPEC.child("vectorStore", "type"), new.spec.vector_store.type, "field is immutable")
        )
    return errs


__all__ = [
    "LLM_PHASES",
    "QUANTIZATIONS",
    "RAG_PHASES",
    "VECTOR_STORES",
    "dns1035_label",
    "validate_llm_service",
    "validate_llm_service_spec",
    "validate_llm_service_status",
    "validate_llm_service_update",
    "validate_rag_service",
    "validate_rag_service_spec",
    "validate_rag_service_status",
    "validate_rag_service_update",
]


def validate_llm_service_status_update(new: LLMService, old: LLMService) -> ErrorList:
    """The status subresource: only the status is written, so only the status is checked."""
    return validate_llm_service_status(new.status) if new.status is not None else []


def validate_rag_service_status_update(new: RAGService, old: RAGService) -> ErrorList:
    """The status subresource: only the status is written, so only the status is checked."""
    return validate_rag_service_status(new.status) if new.status is not None else []
