"""Types of meta.k8s.io/v1 used by every resource, and the meta/v1 shapes the groups share (LabelSelector,
Condition), published under Kubernetes' names (`io.k8s.apimachinery.pkg.apis.meta.v1.Condition`).

Field descriptions are what `kubectl explain` shows; they are published in the OpenAPI documents.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from kubellm.apis.base import APIModel
from kubellm.apis.constraints import constrained
from kubellm.apis.listtypes import ATOMIC_MAP, atomic_list, map_list, set_list


class OwnerReference(APIModel):
    """An object that owns this one. Owned objects are listed as dependents of their owner."""

    api_version: str = Field(description="API version of the owner, e.g. model.kubellm.io/v1alpha1.")
    kind: str = Field(description="Kind of the owner, e.g. LLMService.")
    name: str = Field(description="Name of the owner, in the same namespace as this object.")
    uid: str = Field(description="UID of the owner; a new object with the same name does not own this one.")
    controller: bool | None = Field(default=None, description="If true, the owner is the managing controller.")
    block_owner_deletion: bool | None = Field(
        default=None,
        description="If true, foreground deletion of the owner waits until this object is deleted.",
    )


class ManagedFieldsEntry(APIModel):
    """The fields of an object that one manager set, and how (server-side apply bookkeeping)."""

    manager: str | None = Field(default=None, description="Name of the workflow that manages these fields.")
    operation: str | None = Field(default=None, description="Operation that last set these fields: Apply or Update.")
    api_version: str | None = Field(
        default=None, description="API version of the object the fields were set in; fieldsV1 is relative to it."
    )
    time: str | None = Field(default=None, description="When these fields were last changed (RFC3339).")
    fields_type: str | None = Field(default=None, description='Format of the field set; the only value is "FieldsV1".')
    fields_v1: dict[str, Any] | None = Field(
        default=None, alias="fieldsV1", description="The set of fields, in the FieldsV1 format."
    )
    subresource: str | None = Field(
        default=None, description='Subresource the fields were set through, e.g. "status"; empty for the object.'
    )


class ObjectMeta(APIModel):
    """Metadata that every persisted object has: name, namespace, labels, versions and ownership."""

    name: str | None = Field(
        default=None, description="Name, unique among objects of this kind (in the namespace if namespaced)."
    )
    generate_name: str | None = Field(
        default=None,
        description="Prefix from which the server generates a unique name when name is not set.",
    )
    namespace: str | None = Field(
        default=None, description="Namespace of a namespaced object; empty for cluster-scoped objects."
    )
    self_link: str | None = Field(default=None, description="Deprecated and not set by this server.")
    uid: str | None = Field(
        default=None, description="Unique ID of this object for its whole life; set by the server, read-only."
    )
    resource_version: str | None = Field(
        default=None,
        description="Opaque version of this object, for optimistic concurrency and watches; set by the server.",
    )
    generation: int | None = Field(
        default=None,
        description="Sequence number of the desired state; the server bumps it when the spec changes. Read-only.",
    )
    creation_timestamp: str | None = Field(
        default=None, description="When the object was created (RFC3339); set by the server, read-only."
    )
    deletion_timestamp: str | None = Field(
        default=None,
        description="When deletion was requested (RFC3339); the object goes once its finalizers are removed.",
    )
    deletion_grace_period_seconds: int | None = Field(
        default=None, description="Seconds allowed for graceful termination once deletion was requested."
    )
    labels: dict[str, str] | None = Field(
        default=None, description="Key/value pairs to organise and select objects (label selectors)."
    )
    annotations: dict[str, str] | None = Field(
        default=None, description="Key/value pairs of unstructured data for tools; not used to select objects."
    )
    owner_references: list[OwnerReference] | None = map_list(
        "uid", patch_merge_key="uid", patch_strategy="merge",
        default=None, description="Objects this object depends on; each owner appears at most once."
    )
    finalizers: list[str] | None = set_list(
        patch_strategy="merge",
        default=None,
        description="Keys that must all be removed before the server deletes the object.",
    )
    managed_fields: list[ManagedFieldsEntry] | None = atomic_list(
        default=None,
        description="Which manager set which fields (server-side apply); mostly for the server's own use.",
    )

    @field_validator("labels", "annotations", "owner_references", "finalizers", "managed_fields",
                     "generate_name", "namespace", mode="after")
    @classmethod
    def _omit_empty(cls, value: Any) -> Any:
        """Empty maps, lists and strings are omitted, as Go's `omitempty` does for ObjectMeta."""
        return value or None



class ListMeta(APIModel):
    """Metadata of a list: its resource version and the token for the next page."""

    self_link: str | None = Field(default=None, description="Deprecated and not set by this server.")
    resource_version: str | None = Field(
        default=None, description="Version of the list; start a watch from it to see every change after it."
    )
    continue_: str | None = Field(
        default=None,
        alias="continue",
        description="Token for the next page when the list was limited; empty on the last page.",
    )
    remaining_item_count: int | None = Field(
        default=None, description="Number of items after this page, when the server can count them cheaply."
    )


class TypedModel(APIModel):
    """An object with apiVersion and kind."""

    api_version: str | None = Field(
        default=None,
        description="Versioned schema of this representation of the object, e.g. model.kubellm.io/v1alpha1.",
    )
    kind: str | None = Field(
        default=None, description="Kind of the object, in CamelCase, e.g. LLMService. Cannot be updated."
    )


class StatusCause(APIModel):
    """One cause of an error, usually a field that failed validation."""

    reason: str | None = Field(
        default=None, description='Machine-readable cause, e.g. "FieldValueRequired" or "FieldValueInvalid".'
    )
    message: str | None = Field(default=None, description="Human-readable description of the cause.")
    field: str | None = Field(default=None, description='Path of the field at fault, e.g. "spec.model".')


class StatusDetails(APIModel):
    """Details of an error: the object it is about and the causes."""

    name: str | None = Field(default=None, description="Name of the object the error is about.")
    group: str | None = Field(default=None, description="API group of the object the error is about.")
    kind: str | None = Field(default=None, description="Kind (or resource) of the object the error is about.")
    uid: str | None = Field(default=None, description="UID of the object the error is about.")
    causes: list[StatusCause] | None = atomic_list(default=None, description="The individual causes of the error.")
    retry_after_seconds: int | None = Field(default=None, description="Seconds the client should wait before retrying.")


class Status(TypedModel):
    """The result of a call that returns no object, and the body of every error."""

    metadata: ListMeta = Field(default_factory=ListMeta, description="Standard list metadata.")
    status: Literal["Success", "Failure"] | None = Field(
        default=None, description="Outcome of the operation: Success or Failure."
    )
    message: str | None = Field(default=None, description="Human-readable description of the outcome.")
    reason: str | None = Field(
        default=None, description='Machine-readable reason of a failure, e.g. "NotFound" or "Invalid".'
    )
    details: StatusDetails | None = Field(default=None, description="More data about the failure, by reason.")
    code: int | None = Field(default=None, description="HTTP status code of this outcome.")


class Preconditions(APIModel):
    """Conditions that must hold for a delete to proceed."""

    uid: str | None = Field(default=None, description="The object's UID must be this.")
    resource_version: str | None = Field(default=None, description="The object's resourceVersion must be this.")


class DeleteOptions(TypedModel):
    """Options of a delete request."""

    grace_period_seconds: int | None = Field(
        default=None, description="Seconds before the object is deleted; zero means immediately."
    )
    preconditions: Preconditions | None = Field(
        default=None, description="Must hold for the deletion to proceed; otherwise it is a 409 Conflict."
    )
    orphan_dependents: bool | None = Field(
        default=None, description="Deprecated: use propagationPolicy. If true, dependents are orphaned."
    )
    propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = Field(
        default=None, description="Whether and how dependents are deleted: Orphan, Background or Foreground."
    )
    dry_run: list[str] | None = atomic_list(
        default=None, description='"All" runs every stage of the deletion but does not persist it.'
    )


class WatchEvent(APIModel):
    """One event of a watch stream."""

    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"] = Field(
        description="ADDED, MODIFIED, DELETED, BOOKMARK, or ERROR (then object is a Status)."
    )
    object: dict[str, Any] = Field(
        description="The object after the change (before it, for DELETED), a bookmark, or a Status."
    )


class TableColumnDefinition(APIModel):
    """A column of a server-side table."""

    name: str
    type: str
    format: str = ""
    description: str = ""
    priority: int = 0


class TableRow(APIModel):
    """A row of a server-side table."""

    cells: list[Any]
    object: dict[str, Any] | None = None


class Table(TypedModel):
    """A server-side table (kubectl get), meta.k8s.io/v1 Table."""

    metadata: ListMeta = Field(default_factory=ListMeta)
    column_definitions: list[TableColumnDefinition] = Field(default_factory=list)
    rows: list[TableRow] = Field(default_factory=list)


class APIResource(APIModel):
    """A resource of an API group version, as discovery lists it."""

    name: str
    singular_name: str
    namespaced: bool
    kind: str
    verbs: list[str]
    short_names: list[str] | None = None
    categories: list[str] | None = None
    group: str | None = None
    version: str | None = None


# --- shapes the groups share (metav1.LabelSelector, metav1.Condition) -------------------------------------

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class LabelSelectorRequirement(APIModel):
    """A label key, an operator and values: for example `gpu In (a100, h100)`."""

    key: str = constrained(default="", required=True, description="The label key the requirement applies to.")
    operator: str = constrained(
        default="", required=True, enum=SELECTOR_OPERATORS, messages={"enum": "not a valid selector operator"},
        description="How the key relates to the values: In, NotIn, Exists or DoesNotExist.",
    )
    values: list[str] = atomic_list(
        default_factory=list,
        description="Values for In and NotIn (at least one); must be empty for Exists and DoesNotExist.",
    )


class LabelSelector(APIModel):
    """A label query over objects. Both parts must match; an empty selector matches everything."""

    model_config = ATOMIC_MAP  # replaced whole by server-side apply, as in Kubernetes

    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels that must all be present with exactly these values."
    )
    match_expressions: list[LabelSelectorRequirement] = atomic_list(
        default_factory=list, description="Requirements that must all hold."
    )


CONDITION_STATUSES = ("True", "False", "Unknown")
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
CONDITION_REASON_MSG = (
    "a condition reason must start with alphabetic character, optionally followed by a string of "
    "alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'"
)
CONDITION_REASON_MAX = 1024
CONDITION_MESSAGE_MAX = 32 * 1024


class Condition(APIModel):
    """One aspect of an object's current state, such as Ready, with the time it last changed."""

    type: str = constrained(
        default="", required=True, description='Type of condition in CamelCase, e.g. "Ready"; unique in the list.'
    )
    status: str = constrained(
        default="", required=True, enum=CONDITION_STATUSES,
        description="Status of the condition: True, False or Unknown.",
    )
    observed_generation: int = constrained(
        default=0, minimum=0, messages={"minimum": "must be greater than or equal to zero"},
        description="The metadata.generation the condition was set for.",
    )
    last_transition_time: str | None = constrained(
        default=None, required="must be set", format="date-time", description="When the status last changed (RFC3339)."
    )
    reason: str = constrained(
        default="", required="must be set", max_length=CONDITION_REASON_MAX, pattern=CONDITION_REASON_PATTERN,
        messages={"pattern": CONDITION_REASON_MSG},
        description="Machine-readable reason for the last transition, in CamelCase.",
    )
    message: str = constrained(
        default="", max_length=CONDITION_MESSAGE_MAX, description="Human-readable details of the last transition."
    )
