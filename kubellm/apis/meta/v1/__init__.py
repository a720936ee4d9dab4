"""meta.k8s.io/v1: object and list metadata, Status, WatchEvent, DeleteOptions, Table."""

from kubellm.apis.meta.v1.types import (
    APIResource,
    DeleteOptions,
    ListMeta,
    ManagedFieldsEntry,
    ObjectMeta,
    OwnerReference,
    Preconditions,
    Status,
    StatusCause,
    StatusDetails,
    Table,
    TableColumnDefinition,
    TableRow,
    TypedModel,
    WatchEvent,
)

__all__ = [
    "APIResource",
    "DeleteOptions",
    "ListMeta",
    "ManagedFieldsEntry",
    "ObjectMeta",
    "OwnerReference",
    "Preconditions",
    "Status",
    "StatusCause",
    "StatusDetails",
    "Table",
    "TableColumnDefinition",
    "TableRow",
    "TypedModel",
    "WatchEvent",
]
