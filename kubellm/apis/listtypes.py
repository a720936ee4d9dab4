"""List and map semantics of the API types: declared once on the types, published and enforced from there.

Kubernetes describes how server-side apply merges a list or a map with OpenAPI extensions, and this
module is where the types declare them:

- `atomic_list(...)`, `set_list(...)`, `map_list(*keys, ...)`: pydantic `Field`s whose `json_schema_extra`
  carries `x-kubernetes-list-type` (`atomic`, `set`, `map`), `x-kubernetes-list-map-keys` and, where the
  field has one, the strategic-merge `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`;
  any `json_schema_extra` given (a secret field's, say) is combined with them, never overwritten.
  A list without a list type is atomic, as in a CustomResourceDefinition.
- `ATOMIC_MAP`: the `model_config` of a type replaced whole by apply (`x-kubernetes-map-type: atomic`),
  such as a label selector.

Readers: `field_extensions(info)` and `type_extensions(model)` give the extensions to publish (the
OpenAPI generator), and `structure(model)` walks a type into `Node`s that say, for every field path,
whether it is a struct, a map, an atomic value or list, a set or a map-list with its keys (the field
manager merges and tracks ownership with it).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

LIST_TYPE = "x-kubernetes-list-type"
LIST_MAP_KEYS = "x-kubernetes-list-map-keys"
MAP_TYPE = "x-kubernetes-map-type"
PATCH_STRATEGY = "x-kubernetes-patch-strategy"
PATCH_MERGE_KEY = "x-kubernetes-patch-merge-key"
EXTENSIONS = (LIST_TYPE, LIST_MAP_KEYS, MAP_TYPE, PATCH_STRATEGY, PATCH_MERGE_KEY)
"""The extensions this module declares; `field_extensions` and `type_extensions` return only these."""

ATOMIC = "atomic"
SET = "set"
MAP = "map"
GRANULAR = "granular"

ListType = Literal["atomic", "set", "map"]

ATOMIC_MAP = ConfigDict(json_schema_extra={MAP_TYPE: ATOMIC})
"""`model_config` of a type that apply replaces whole (pydantic merges it with the base class's config)."""


def combine(*extras: Mapping[str, Any] | None) -> dict[str, Any]:
    """One `json_schema_extra` from several; the same key with two different values is a TypeError."""
    out: dict[str, Any] = {}
    for extra in extras:
        if extra is None:
            continue
        if not isinstance(extra, Mapping):
            raise TypeError(f"json_schema_extra must be a mapping to be combined, not {type(extra).__name__}")
        for key, value in extra.items():
            if key in out and out[key] != value:
                raise TypeError(f"conflicting {key}: {out[key]!r} and {value!r}")
            out[key] = value
    return out


def atomic_list(*, json_schema_extra: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
    """A list that apply replaces whole and that is owned as one field."""
    return Field(json_schema_extra=combine(json_schema_extra, {LIST_TYPE: ATOMIC}), **kwargs)


def set_list(*, patch_strategy: str | None = None, json_schema_extra: Mapping[str, Any] | None = None,
             **kwargs: Any) -> Any:
    """A list of unique scalars: apply merges the items and each item has its own owners."""
    extra: dict[str, Any] = {LIST_TYPE: SET}
    if patch_strategy:
        extra[PATCH_STRATEGY] = patch_strategy
    return Field(json_schema_extra=combine(json_schema_extra, extra), **kwargs)


def map_list(*keys: str, patch_merge_key: str | None = None, patch_strategy: str | None = None,
             json_schema_extra: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
    """A list of objects identified by `keys` (unique, required): apply merges items by key, and the
    fields of an item field by field, each with its own owners."""
    if not keys:
        raise TypeError("a map list needs at least one key")
    extra: dict[str, Any] = {LIST_TYPE: MAP, LIST_MAP_KEYS: list(keys)}
    if patch_merge_key:
        extra[PATCH_MERGE_KEY] = patch_merge_key
    if patch_strategy:
        extra[PATCH_STRATEGY] = patch_strategy
    return Field(json_schema_extra=combine(json_schema_extra, extra), **kwargs)


def _declared(extra: object) -> dict[str, Any]:
    if not isinstance(extra, Mapping):
        return {}
    return {key: list(value) if isinstance(value, list) else value
            for key, value in extra.items() if key in EXTENSIONS}


def field_extensions(info: FieldInfo) -> dict[str, Any]:
    """The list/map extensions a field declares (copies: safe to publish and change)."""
    return _declared(info.json_schema_extra)


def type_extensions(model: type[BaseModel]) -> dict[str, Any]:
    """The extensions a type declares in its `model_config` (e.g. `x-kubernetes-map-type: atomic`)."""
    return _declared(model.model_config.get("json_schema_extra"))


# --- structure: what each field path is ---------------------------------------------------------------


Kind = Literal["scalar", "struct", "map", "list", "any"]


@dataclass(eq=False)
class Node:
    """The merge semantics of one place in an object.

    `kind`: `scalar`; `struct` (a type with named fields, unknown keys are `any`); `map` (string keys,
    values of `element`); `list` (items of `element`, merged as `list_type` says, by `keys` for a map
    list); `any` (free-form: objects are maps of `any`, lists are atomic). `atomic` structs, maps and
    lists are replaced whole and owned as one field.
    """

    kind: Kind
    atomic: bool = False
    list_type: ListType = "atomic"
    keys: tuple[str, ...] = ()
    element: Node | None = None
    _fields: Callable[[], Mapping[str, Node]] | None = field(default=None, repr=False)
    _resolved: dict[str, Node] | None = field(default=None, repr=False)

    @property
    def fields(self) -> Mapping[str, Node]:
        """Named fields of a struct, by JSON name (resolved on first use: types may refer to themselves)."""
        if self._resolved is None:
            self._resolved = dict(self._fields()) if self._fields is not None else {}
        return self._resolved

    @property
    def granular(self) -> bool:
        """Whether apply merges inside it (a struct, map, set or map list not declared atomic)."""
        if self.kind == "list":
            return self.list_type != ATOMIC
        return self.kind in ("struct", "map", "any") and not self.atomic

    def named(self, key: str) -> bool:
        """Whether `key` is a named field of this struct (not a key of a map or an unknown field)."""
        return self.kind == "struct" and key in self.fields

    def child(self, key: str) -> Node:
        """The node of `key` in an object at this node."""
        if self.kind == "struct":
            return self.fields.get(key, ANY)
        if self.kind == "map" and self.element is not None:
            return self.element
        return ANY

    def item(self) -> Node:
        """The node of an item of a list at this node."""
        return self.element if self.kind == "list" and self.element is not None else ANY

    def describe(self) -> str:
        """`struct`, `atomic map`, `atomic list`, `set`, `map list by type`, ..."""
        if self.kind == "list":
            return {"atomic": "atomic list", "set": "set"}.get(self.list_type) or f"map list by {','.join(self.keys)}"
        return f"atomic {self.kind}" if self.atomic else self.kind


SCALAR = Node("scalar")
ANY = Node("any")


def unwrap_optional(annotation: Any) -> Any:
    """`X` for `X | None` (and `Optional[X]`); any other annotation unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def node_of(annotation: Any, extensions: Mapping[str, Any] | None = None, where: str = "") -> Node:
    """The node of a value of type `annotation` in a field declaring `extensions`."""
    ext = extensions or {}
    annotation = unwrap_optional(annotation)
    origin = get_origin(annotation)
    if origin is list:
        (item_type,) = get_args(annotation) or (Any,)
        element = node_of(item_type, None, f"{where}[]")
        list_type = ext.get(LIST_TYPE, ATOMIC)
        keys = tuple(ext.get(LIST_MAP_KEYS) or ())
        if list_type == MAP and (not keys or element.kind != "struct" or element.atomic
                                 or not set(keys) <= set(element.fields)):
            raise TypeError(f"{where}: a map list needs keys that are fields of its (non-atomic) items")
        if list_type == SET and element.kind != "scalar":
            raise TypeError(f"{where}: a set holds scalars only")
        if list_type not in (ATOMIC, SET, MAP):
            raise TypeError(f"{where}: unknown list type {list_type!r}")
        return Node("list", list_type=list_type, keys=keys if list_type == MAP else (), element=element)
    if origin is dict:
        _, value_type = get_args(annotation) or (str, Any)
        return Node("map", atomic=ext.get(MAP_TYPE) == ATOMIC, element=node_of(value_type, None, f"{where}{{}}"))
    if annotation is Any or (isinstance(annotation, type) and issubclass(annotation, BaseModel)
                             and annotation.model_config.get("extra") == "allow"):
        return ANY
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return structure(annotation)
    return SCALAR


@functools.cache
def structure(model: type[BaseModel]) -> Node:
    """The node of a type: a struct of its fields by JSON name (atomic if the type says so)."""

    def fields() -> dict[str, Node]:
        return {info.alias or name: node_of(info.annotation, field_extensions(info), f"{model.__name__}.{name}")
                for name, info in model.model_fields.items()}

    return Node("struct", atomic=type_extensions(model).get(MAP_TYPE) == ATOMIC, _fields=fields)


def struct_of(fields: Mapping[str, Node]) -> Node:
    """A struct node with the given named fields (for objects whose type is not known)."""
    frozen = dict(fields)
    return Node("struct", _fields=lambda: frozen)


def node_at(model: type[BaseModel], path: Iterable[str]) -> Node:
    """The node at a path of JSON names; `*` steps into a list's items: `("status", "conditions", "*")`."""
    node = structure(model)
    for key in path:
        node = node.item() if key == "*" else node.child(key)
    return node
