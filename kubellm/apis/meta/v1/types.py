"""Types of meta.k8s.io/v1 used by every resource."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kubellm.apis.base import APIModel


class OwnerReference(APIModel):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ManagedFieldsEntry(APIModel):
    manager: str | None = None
    operation: str | None = None
    api_version: str | None = None
    time: str | None = None
    fields_type: str | None = None
    fields_v1: dict[str, Any] | None = Field(default=None, alias="fieldsV1")
    subresource: str | None = None


class ObjectMeta(APIModel):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    self_link: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    managed_fields: list[ManagedFieldsEntry] | None = None


class ListMeta(APIModel):
    self_link: str | None = None
    resource_version: str | None = None
    continue_: str | None = Field(default=None, alias="continue")
    remaining_item_count: int | None = None


class TypedModel(APIModel):
    api_version: str | None = None
    kind: str | None = None


class StatusCause(APIModel):
    reason: str | None = None
    message: str | None = None
    field: str | None = None


class StatusDetails(APIModel):
    name: str | None = None
    group: str | None = None
    kind: str | None = None
    uid: str | None = None
    causes: list[StatusCause] | None = None
    retry_after_seconds: int | None = None


class Status(TypedModel):
    metadata: ListMeta = Field(default_factory=ListMeta)
    status: Literal["Success", "Failure"] | None = None
    message: str | None = None
    reason: str | None = None
    details: StatusDetails | None = None
    code: int | None = None


class Preconditions(APIModel):
    uid: str | None = None
    resource_version: str | None = None


class DeleteOptions(TypedModel):
    grace_period_seconds: int | None = None
    preconditions: Preconditions | None = None
    orphan_dependents: bool | None = None
    propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = None
    dry_run: list[str] | None = None


class WatchEvent(APIModel):
    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]
    object: dict[str, Any]


class TableColumnDefinition(APIModel):
    name: str
    type: str
    format: str = ""
    description: str = ""
    priority: int = 0


class TableRow(APIModel):
    cells: list[Any]
    object: dict[str, Any] | None = None


class Table(TypedModel):
    metadata: ListMeta = Field(default_factory=ListMeta)
    column_definitions: list[TableColumnDefinition] = Field(default_factory=list)
    rows: list[TableRow] = Field(default_factory=list)


class APIResource(APIModel):
    name: str
    singular_name: str
    namespaced: bool
    kind: str
    verbs: list[str]
    short_names: list[str] | None = None
    categories: list[str] | None = None
    group: str | None = None
    version: str | None = None
