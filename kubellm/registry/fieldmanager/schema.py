"""The type an object is merged and tracked by.

Callers pass the type (`ResourceInfo.model`) or its `Node`; without one, the served type of the object's
apiVersion and kind is used, and an object of no served type is tracked as kube tracks an unstructured
object: `metadata` as ObjectMeta, everything else free-form (maps key by key, lists atomic).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from kubellm.apis.listtypes import SCALAR, Node, struct_of, structure
from kubellm.apis.meta.v1.types import ObjectMeta

Schema = Node | type[BaseModel]

UNKNOWN_OBJECT = struct_of({"apiVersion": SCALAR, "kind": SCALAR, "metadata": structure(ObjectMeta)})


@functools.cache
def _served() -> dict[tuple[str, str], type[BaseModel]]:
    # Imported here: the registry module builds the Stores, which use this package.
    from kubellm.registry.registry import ALL_RESOURCES

    return {(info.api_version, info.kind): info.model for info in ALL_RESOURCES}


def object_schema(schema: Schema | None, *objects: Mapping[str, Any] | None) -> Node:
    """The node of the object's type: `schema` when given, else the served type of the first object's
    apiVersion and kind."""
    if isinstance(schema, Node):
        return schema
    if schema is not None:
        return structure(schema)
    for obj in objects:
        if obj and obj.get("apiVersion") and obj.get("kind"):
            model = _served().get((str(obj["apiVersion"]), str(obj["kind"])))
            return structure(model) if model is not None else UNKNOWN_OBJECT
    return UNKNOWN_OBJECT
