"""Validation of model.kubellm.io/v1alpha1 LLMService and RAGService (spec, and status when present).

What the fields declare (required models and references, enums, ranges, quantities, durations: `types.py`)
is checked by the declared validator; this module adds what cannot be declared (names, URLs, whitespace,
cross-field rules, uniqueness) and returns both in the order of the fields.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from kubellm.apis.model.v1alpha1.types import (
    SOURCE_TYPES,
    VECTOR_STORES,
    ClusterAffinity,
    DocumentSource,
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
from kubellm.apis.validation import declared, field, names
from kubellm.apis.validation.field import ErrorList, Path
from kubellm.apis.validation.meta import validate_conditions, validate_label_selector
from kubellm.apis.validation.values import no_whitespace, url_problems, validate_unique_names

SPEC = Path("spec")
STATUS = Path("status")

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

_DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?\Z")
DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


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


# --- LLMService spec -----------------------------------------------------------------------------


def _validate_gpu_memory_utilization(value: str, path: Path) -> ErrorList:
    """The range of a value the declarations accepted as a decimal."""
    if not Decimal(0) < Decimal(value) <= Decimal(1):
        return [field.invalid(path, value, "must be greater than 0 and less than or equal to 1")]
    return []


def _validate_cluster_affinity(aff: ClusterAffinity, path: Path) -> ErrorList:
    errs: ErrorList = []
    for i, name in enumerate(aff.cluster_names):
        p = path.child("clusterNames").index(i)
        errs.extend(field.invalid(p, name, m) for m in names.dns1123_subdomain(name))
    errs.extend(validate_unique_names(aff.cluster_names, path.child("clusterNames")))
    errs.extend(validate_label_selector(aff.label_selector, path.child("labelSelector")))
    return errs


def _validate_tolerations(tolerations: Sequence[Toleration], path: Path) -> ErrorList:
    """corev1 ValidateTolerations, without tolerationSeconds (operators and effects are declared)."""
    errs: ErrorList = []
    for i, t in enumerate(tolerations):
        p = path.index(i)
        if t.key:
            errs.extend(names.validate_label_name(t.key, p.child("key")))
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
        elif t.operator == "Exists" and t.value:
            errs.append(
                field.invalid(
                    p.child("operator"),
                    t.model_dump(by_alias=True),
                    "value must be empty when `operator` is 'Exists'",
                )
            )
    return errs


def _validate_replica_scheduling(rs: ReplicaScheduling | None, path: Path) -> ErrorList:
    if rs is None:
        return []
    errs: ErrorList = []
    pref_path = path.child("replicaDivisionPreference")
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


def validate_llm_service_spec(spec: LLMServiceSpec, path: Path = SPEC) -> ErrorList:
    errs = declared.validate(spec, path)
    if not declared.rejected(errs, path.child("model")):
        errs.extend(no_whitespace(spec.model, path.child("model")))
    gmu = path.child("gpuMemoryUtilization")
    if not declared.rejected(errs, gmu):
        errs.extend(_validate_gpu_memory_utilization(spec.gpu_memory_utilization, gmu))
    errs.extend(no_whitespace(spec.image, path.child("image")))
    if spec.hf_endpoint:
        errs.extend(
            field.invalid(path.child("hfEndpoint"), spec.hf_endpoint, m)
            for m in url_problems(spec.hf_endpoint, ("http", "https"))
        )
    auto = spec.autoscaling
    if auto is not None and auto.max_replicas is not None and auto.min_replicas > auto.max_replicas:
        p = path.child("autoscaling")
        detail = f"must be less than or equal to {p.child('maxReplicas')}"
        errs.append(field.invalid(p.child("minReplicas"), auto.min_replicas, detail))
    errs.extend(_validate_placement(spec.placement, path.child("placement")))
    errs.extend(_validate_extra_args(spec.extra_args, path.child("extraArgs")))
    return errs


# --- LLMService status ---------------------------------------------------------------------------


def _ready_not_above(ready: int, total: int, path: Path, total_path: Path) -> ErrorList:
    if ready > total:
        return [field.invalid(path, ready, f"cannot be greater than {total_path}")]
    return []


def validate_llm_service_status(status: LLMServiceStatus, path: Path = STATUS) -> ErrorList:
    errs = declared.validate(status, path)
    errs.extend(
        _ready_not_above(
            status.ready_replicas, status.replicas, path.child("readyReplicas"), path.child("replicas")
        )
    )
    errs.extend(validate_conditions(status.conditions, path.child("conditions")))
    clusters = path.child("clusters")
    for i, c in enumerate(status.clusters):
        p = clusters.index(i)
        errs.extend(
            _ready_not_above(c.ready_replicas, c.replicas, p.child("readyReplicas"), p.child("replicas"))
        )
    errs.extend(validate_unique_names((c.name for c in status.clusters), clusters, "name"))
    return errs


def validate_llm_service(obj: LLMService) -> ErrorList:
    return declared.spec_and_status(obj, validate_llm_service_spec, validate_llm_service_status)


def validate_llm_service_update(new: LLMService, old: LLMService) -> ErrorList:
    """Every LLMService field may change: a new model or setting rolls the replicas."""
    return validate_llm_service(new)


validate_llm_service_status_update = declared.status_only(validate_llm_service_status)
"""The status subresource: only the status is written, so only the status is checked."""


# --- RAGService ----------------------------------------------------------------------------------


def _validate_source(src: DocumentSource, path: Path) -> ErrorList:
    errs: ErrorList = []
    if src.name:
        errs.extend(field.invalid(path.child("name"), src.name, m) for m in names.dns1123_label(src.name))
    uri_path, ref_path = path.child("uri"), path.child("configMapRef")
    if src.type not in SOURCE_TYPES:
        pass  # declared: required, and one of SOURCE_TYPES
    elif src.type == "configMap":
        if src.config_map_ref is None:
            errs.append(field.required(ref_path.child("name"), "must be set when type is configMap"))
        elif src.config_map_ref.name:
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
            errs.extend(no_whitespace(src.uri, uri_path))
    return errs


def validate_rag_service_spec(spec: RAGServiceSpec, path: Path = SPEC) -> ErrorList:
    errs = declared.validate(spec, path)
    ref = path.child("llmServiceRef", "name")
    if spec.llm_service_ref.name:
        errs.extend(
            field.invalid(ref, spec.llm_service_ref.name, m)
            for m in names.dns1123_subdomain(spec.llm_service_ref.name)
        )
    if spec.embedding.model:
        errs.extend(no_whitespace(spec.embedding.model, path.child("embedding", "model")))

    vs, store = path.child("vectorStore"), spec.vector_store
    if store.type in VECTOR_STORES and store.type != "chromadb" and not store.endpoint:
        errs.append(field.required(vs.child("endpoint"), f'must be set when type is "{store.type}"'))
    errs.extend(no_whitespace(store.endpoint, vs.child("endpoint")))
    if store.storage_class_name:
        errs.extend(
            field.invalid(vs.child("storageClassName"), store.storage_class_name, m)
            for m in names.dns1123_subdomain(store.storage_class_name)
        )

    sources = path.child("sources")
    for i, src in enumerate(spec.sources):
        errs.extend(_validate_source(src, sources.index(i)))
    errs.extend(validate_unique_names((s.name for s in spec.sources), sources, "name"))

    ch = path.child("chunking")
    if spec.chunking.chunk_size >= 1 and spec.chunking.chunk_overlap >= spec.chunking.chunk_size:
        errs.append(
            field.invalid(
                ch.child("chunkOverlap"),
                spec.chunking.chunk_overlap,
                f"must be less than {ch.child('chunkSize')}",
            )
        )
    return errs


def validate_rag_service_status(status: RAGServiceStatus, path: Path = STATUS) -> ErrorList:
    errs = declared.validate(status, path)
    errs.extend(validate_conditions(status.conditions, path.child("conditions")))
    return errs


def validate_rag_service(obj: RAGService) -> ErrorList:
    return declared.spec_and_status(obj, validate_rag_service_spec, validate_rag_service_status)


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
    return declared.in_field_order(RAGService, errs)


validate_rag_service_status_update = declared.status_only(validate_rag_service_status)
"""The status subresource: only the status is written, so only the status is checked."""


__all__ = [
    "dns1035_label",
    "validate_llm_service",
    "validate_llm_service_spec",
    "validate_llm_service_status",
    "validate_llm_service_status_update",
    "validate_llm_service_update",
    "validate_rag_service",
    "validate_rag_service_spec",
    "validate_rag_service_status",
    "validate_rag_service_status_update",
    "validate_rag_service_update",
]
