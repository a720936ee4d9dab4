"""What the pydantic types do not say about the API: required fields, enums, timestamps.

Every field of an API type has a default (requiredness and enums are semantic checks in each group's
`validation.py`), so the schema generator learns them here. Enum values come from the constants the
validation functions check against, so the two cannot drift apart. Keys are (model, Python field
name); the unit tests check that every key names an existing field.

List and map semantics (`x-kubernetes-list-type`, `-list-map-keys`, `-map-type`, patch strategies) are
not here: the types declare them (`kubellm.apis.listtypes`), and the generator and the field manager
both read them from there.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubellm.apis.base import APIModel
from kubellm.apis.cluster.v1alpha1 import types as cluster
from kubellm.apis.cluster.v1alpha1 import validation as cluster_validation
from kubellm.apis.iam.v1alpha1 import types as iam
from kubellm.apis.iam.v1alpha1 import validation as iam_validation
from kubellm.apis.meta.v1 import types as meta
from kubellm.apis.model.v1alpha1 import types as model
from kubellm.apis.model.v1alpha1 import validation as model_validation

TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
FIELDS_V1 = "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"

INT64_FIELDS = frozenset(
    {
        "generation",
        "observed_generation",
        "deletion_grace_period_seconds",
        "grace_period_seconds",
        "remaining_item_count",
    }
)
"""Integer fields (by Python name) published as int64, as Kubernetes does; every other integer is int32."""


@dataclass(frozen=True)
class Hint:
    required: bool = False
    enum: tuple[str, ...] | None = None
    ref: str | None = None
    """Publish the field as a reference to this definition instead of its Python type (e.g. Time)."""


NO_HINT = Hint()
REQUIRED = Hint(required=True)
TIMESTAMP = Hint(ref=TIME)
def enum(values: tuple[str, ...] | list[str], *, required: bool = False, allow_empty: bool = False) -> Hint:
    """An enum; `allow_empty` adds "" where validation accepts an empty value (e.g. a phase not yet set)."""
    return Hint(required=required, enum=(("",) if allow_empty else ()) + tuple(values))


HINTS: dict[tuple[type[APIModel], str], Hint] = {
    # --- meta.k8s.io/v1 ------------------------------------------------------------------------------
    (meta.ObjectMeta, "creation_timestamp"): TIMESTAMP,
    (meta.ObjectMeta, "deletion_timestamp"): TIMESTAMP,
    (meta.ManagedFieldsEntry, "time"): TIMESTAMP,
    (meta.ManagedFieldsEntry, "fields_v1"): Hint(ref=FIELDS_V1),
    (meta.WatchEvent, "object"): Hint(ref=RAW_EXTENSION),
    # --- shared shapes (cluster.kubellm.io module) ---------------------------------------------------
    (cluster.LabelSelectorRequirement, "key"): REQUIRED,
    (cluster.LabelSelectorRequirement, "operator"): enum(cluster_validation._SELECTOR_OPERATORS, required=True),
    (cluster.Condition, "type"): REQUIRED,
    (cluster.Condition, "status"): enum(cluster_validation.CONDITION_STATUSES, required=True),
    (cluster.Condition, "last_transition_time"): Hint(required=True, ref=TIME),
    (cluster.Condition, "reason"): REQUIRED,
    # --- cluster.kubellm.io/v1alpha1 -----------------------------------------------------------------
    (cluster.Cluster, "spec"): REQUIRED,
    (cluster.ClusterSpec, "api_endpoint"): REQUIRED,
    (cluster.Taint, "key"): REQUIRED,
    (cluster.Taint, "effect"): enum(cluster_validation.TAINT_EFFECTS, required=True),
    (cluster.ClusterStatus, "last_probe_time"): TIMESTAMP,
    (cluster.GPUInventory, "model"): REQUIRED,
    # --- iam.kubellm.io/v1alpha1 ---------------------------------------------------------------------
    (iam.User, "spec"): REQUIRED,
    (iam.UserSpec, "email"): REQUIRED,
    (iam.UserSpec, "state"): enum(iam_validation.USER_SPEC_STATES),
    (iam.UserStatus, "state"): enum(iam_validation.USER_STATES, allow_empty=True),
    (iam.UserStatus, "locked_until"): TIMESTAMP,
    (iam.UserStatus, "last_login_time"): TIMESTAMP,
    (iam.LoginRecord, "spec"): REQUIRED,
    (iam.LoginRecordSpec, "username"): REQUIRED,
    (iam.LoginRecordSpec, "reason"): enum(iam_validation.LOGIN_REASONS, allow_empty=True),
    (iam.LoginRecordSpec, "time"): TIMESTAMP,
    (iam.PolicyRule, "verbs"): REQUIRED,
    (iam.AggregationRule, "cluster_role_selectors"): REQUIRED,
    (iam.Subject, "kind"): enum(iam_validation.SUBJECT_KINDS, required=True),
    (iam.Subject, "name"): REQUIRED,
    (iam.RoleRef, "api_group"): enum((iam.GROUP,)),
    (iam.RoleRef, "kind"): enum(("Role", "ClusterRole"), required=True),
    (iam.RoleRef, "name"): REQUIRED,
    (iam.RoleBinding, "role_ref"): REQUIRED,
    (iam.ClusterRoleBinding, "role_ref"): REQUIRED,
    # --- model.kubellm.io/v1alpha1 -------------------------------------------------------------------
    (model.LLMService, "spec"): REQUIRED,
    (model.LLMServiceSpec, "model"): REQUIRED,
    (model.LLMServiceSpec, "quantization"): enum(model_validation.QUANTIZATIONS),
    (model.AutoscalingSpec, "max_replicas"): REQUIRED,
    (model.Toleration, "operator"): enum(model_validation.TOLERATION_OPERATORS, allow_empty=True),
    (model.Toleration, "effect"): enum(cluster_validation.TAINT_EFFECTS, allow_empty=True),
    (model.StaticClusterWeight, "target_cluster"): REQUIRED,
    (model.ClusterPreferences, "dynamic_weight"): enum(model_validation.DYNAMIC_WEIGHTS),
    (model.ReplicaScheduling, "replica_scheduling_type"): enum(model_validation.REPLICA_SCHEDULING_TYPES),
    (model.ReplicaScheduling, "replica_division_preference"): enum(model_validation.REPLICA_DIVISION_PREFERENCES),
    (model.EnvVar, "name"): REQUIRED,
    (model.LLMServiceStatus, "phase"): enum(model_validation.LLM_PHASES, allow_empty=True),
    (model.LLMServiceClusterStatus, "name"): REQUIRED,
    (model.LLMServiceClusterStatus, "phase"): enum(model_validation.LLM_PHASES, allow_empty=True),
    (model.RAGService, "spec"): REQUIRED,
    (model.RAGServiceSpec, "llm_service_ref"): REQUIRED,
    (model.RAGServiceSpec, "embedding"): REQUIRED,
    (model.LocalObjectReference, "name"): REQUIRED,
    (model.EmbeddingSpec, "model"): REQUIRED,
    (model.VectorStoreSpec, "type"): enum(model_validation.VECTOR_STORES),
    (model.DocumentSource, "name"): REQUIRED,
    (model.DocumentSource, "type"): enum(model_validation.SOURCE_TYPES, required=True),
    (model.RAGServiceStatus, "phase"): enum(model_validation.RAG_PHASES, allow_empty=True),
}


def hint(model_type: type[APIModel], name: str) -> Hint:
    """The hint of a field, looked up on the class and then on its API base classes (e.g. TypedModel)."""
    for cls in model_type.__mro__:
        found = HINTS.get((cls, name))
        if found is not None:
            return found
    return NO_HINT
