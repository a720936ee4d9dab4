"""Schema definitions generated from the pydantic API types, named as Kubernetes names them.

Definitions are built in OpenAPI v2 form (`$ref: "#/definitions/<name>"`, with a description beside
a `$ref`); `documents.py` turns them into v3 form. Names: a type of `kubellm.apis.<g>.<v>.types`
is `<group reversed>.<v>.<Class>` (`io.kubellm.model.v1alpha1.LLMServiceSpec`), a type of
`kubellm.apis.meta.v1.types` is `io.k8s.apimachinery.pkg.apis.meta.v1.<Class>`. The few
apimachinery and autoscaling/v1 types that have no pydantic model here are written out below in
the shape Kubernetes publishes them.

What a field accepts is read from its declaration (`kubellm.apis.constraints`), the one the declared
validator enforces: `required` in the parent (with `minLength: 1` for a string and `minItems: 1` for a
list, since the empty value is refused; a field the server defaults to a non-zero value is not required,
only not empty), `enum`, `minimum`, `maximum`, `minLength`, `maxLength`, `pattern`, `format: byte`, and
`format: date-time` as a reference to meta/v1 Time. List and map semantics (`x-kubernetes-list-type`,
`-list-map-keys`, `-map-type`, patch strategies) are read from the fields and types that declare them
(`kubellm.apis.listtypes`), the same declarations the field manager merges by; a secret field
(`kubellm.apis.secrets`) is `writeOnly`, which `documents.py` keeps in v3 and drops from v2 (Swagger 2.0
has no such keyword). `hints.py` names the few meta/v1 fields published as references (Time, FieldsV1).
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from kubellm.apis import constraints, listtypes
from kubellm.apis.base import APIModel, FreeForm
from kubellm.apis.constraints import Constraints
from kubellm.apis.meta.v1 import types as meta
from kubellm.apis.scheme import ResourceInfo
from kubellm.server.openapi.hints import FIELDS_V1, INT64_FIELDS, RAW_EXTENSION, TIME, Hint, hint

JSON = dict[str, Any]

REF_V2 = "#/definitions/"
META_V1 = "io.k8s.apimachinery.pkg.apis.meta.v1"
AUTOSCALING_V1 = "io.k8s.api.autoscaling.v1"

OBJECT_META = f"{META_V1}.ObjectMeta"
LIST_META = f"{META_V1}.ListMeta"
STATUS = f"{META_V1}.Status"
DELETE_OPTIONS = f"{META_V1}.DeleteOptions"
PATCH = f"{META_V1}.Patch"
WATCH_EVENT = f"{META_V1}.WatchEvent"
SCALE = f"{AUTOSCALING_V1}.Scale"
SCALE_SPEC = f"{AUTOSCALING_V1}.ScaleSpec"
SCALE_STATUS = f"{AUTOSCALING_V1}.ScaleStatus"

GVK = "x-kubernetes-group-version-kind"
WRITE_ONLY = "writeOnly"
VALIDATION_KEYWORDS = ("minimum", "maximum", "minLength", "maxLength", "pattern", "minItems")
"""The value constraints the documents publish besides `required`, `enum` and `format`."""
SCALE_GVK = {"group": "autoscaling", "kind": "Scale", "version": "v1"}

_MODULE_PREFIXES = {meta.__name__: META_V1}


def ref(name: str) -> JSON:
    return {"$ref": REF_V2 + name}


def gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def group_version_prefix(group: str, version: str) -> str:
    """`model.kubellm.io`, `v1alpha1` → `io.kubellm.model.v1alpha1` (as kube names custom resources)."""
    return ".".join([*reversed(group.split(".")), version])


def kind_name(info: ResourceInfo) -> str:
    return definition_name(info.model)


def list_name(info: ResourceInfo) -> str:
    return f"{definition_name(info.model).rsplit('.', 1)[0]}.{info.list_kind}"


def describe(cls: type) -> str:
    """The class docstring, paragraphs kept and lines within a paragraph joined."""
    doc = cls.__dict__.get("__doc__") or ""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def definition_name(cls: type[BaseModel]) -> str:
    module = sys.modules[cls.__module__]
    prefix = _MODULE_PREFIXES.get(module.__name__) or getattr(module, "OPENAPI_PREFIX", None)
    if prefix is None:
        group, version = getattr(module, "GROUP", None), getattr(module, "VERSION", None)
        if not isinstance(group, str) or not isinstance(version, str):
            raise TypeError(f"{cls.__module__} has no GROUP and VERSION: cannot name {cls.__name__}")
        prefix = group_version_prefix(group, version)
    return f"{prefix}.{cls.__name__}"


def _is_zero(value: Any) -> bool:
    return value is None or value == "" or value is False or (type(value) is int and value == 0)


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unions other than Optional are not supported: {annotation}")
        return args[0]
    return annotation


def refs_in(node: Any) -> Iterator[str]:
    """Every definition name that a `$ref` anywhere in `node` points to."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs_in(item)


def reachable(definitions: dict[str, JSON], roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(refs_in(definitions[name]))
    return seen


class SchemaBuilder:
    """Walks pydantic models into definitions; each model once, nested models as references."""

    def __init__(self) -> None:
        self.definitions: dict[str, JSON] = {}
        self._names: dict[type[BaseModel], str] = {}

    def name_of(self, cls: type[BaseModel]) -> str:
        name = self._names.get(cls)
        if name is None:
            name = definition_name(cls)
            self.add_model(cls, name)
        return name

    def add_model(self, cls: type[BaseModel], name: str) -> None:
        owner = next((c for c, n in self._names.items() if n == name), None)
        if owner is not None and owner is not cls:
            raise TypeError(f"{cls.__module__}.{cls.__name__} and {owner.__module__}.{owner.__name__} share {name}")
        if cls in self._names:
            return
        self._names[cls] = name
        schema: JSON = {"description": describe(cls), "type": "object"}  # every type has one (unit-tested)
        self.definitions[name] = schema  # before the fields: a model may refer to itself
        properties: JSON = {}
        required: list[str] = []
        declared = {d.name: d.constraints for d in constraints.declared_fields(cls)}
        for field_name, info in cls.model_fields.items():
            json_name = info.alias or field_name
            field_hint = hint(cls, field_name) if issubclass(cls, APIModel) else Hint()
            rules = declared.get(field_name)
            properties[json_name] = self.field_schema(cls, field_name, info, field_hint, rules)
            if info.is_required() or (rules is not None and rules.required and constraints.is_zero_default(info)):
                required.append(json_name)
        if properties:
            schema["properties"] = properties
        if required:
            schema["required"] = sorted(required)
        schema.update(listtypes.type_extensions(cls))

    def field_schema(self, cls: type[BaseModel], field_name: str, info: FieldInfo, field_hint: Hint,
                     rules: Constraints | None = None) -> JSON:
        annotation = _unwrap_optional(info.annotation)
        if field_hint.ref is not None:
            schema = ref(field_hint.ref)
        elif rules is not None and rules.format == "date-time":
            schema = ref(TIME)
        else:
            schema = self.type_schema(annotation, field_name)
            default = info.default
            if (
                default is not PydanticUndefined
                and isinstance(default, (str, int, float, bool))
                and not _is_zero(default)
            ):
                schema["default"] = default
        if info.description:  # every field has one; the unit tests check it
            schema["description"] = " ".join(info.description.split())
        if rules is not None:
            schema.update(constraint_keywords(rules, schema))
        schema.update(listtypes.field_extensions(info))
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get(WRITE_ONLY) is True:  # secret fields (apis.secrets)
            schema[WRITE_ONLY] = True
        return schema

    def type_schema(self, annotation: Any, field_name: str) -> JSON:
        annotation = _unwrap_optional(annotation)
        origin = get_origin(annotation)
        if annotation is Any:
            return {"x-kubernetes-preserve-unknown-fields": True}
        if annotation is bool:
            return {"type": "boolean"}
        if annotation is int:
            return {"type": "integer", "format": "int64" if field_name in INT64_FIELDS else "int32"}
        if annotation is float:
            return {"type": "number", "format": "double"}
        if annotation is str:
            return {"type": "string"}
        if origin is Literal:
            values = get_args(annotation)
            if not all(isinstance(v, str) for v in values):
                raise TypeError(f"only string literals are supported: {annotation}")
            return {"type": "string", "enum": sorted(values)}
        if origin is list:
            (item,) = get_args(annotation)
            return {"type": "array", "items": self.type_schema(item, field_name)}
        if origin is dict:
            key, value = get_args(annotation)
            if key is not str:
                raise TypeError(f"only string keys are supported: {annotation}")
            if value is Any:
                return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            return {"type": "object", "additionalProperties": self.type_schema(value, field_name)}
        if isinstance(annotation, type) and issubclass(annotation, FreeForm):
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return ref(self.name_of(annotation))
        raise TypeError(f"no OpenAPI mapping for {annotation!r}")

    # --- kinds -------------------------------------------------------------------------------------

    def add_kind(self, info: ResourceInfo) -> str:
        """The kind's definition, with its group-version-kind, and its List's."""
        name = self._names.get(info.model) or kind_name(info)
        self.add_model(info.model, name)
        _add_gvk(self.definitions[name], gvk(info.group, info.version, info.kind))
        type_meta = self._type_meta_properties()
        self.definitions[list_name(info)] = {
            "description": f"{info.list_kind} is a list of {info.kind}.",
            "type": "object",
            "properties": {
                **type_meta,
                "items": {
                    "type": "array",
                    "items": ref(name),
                    "description": f"The {info.plural}.",
                },
                "metadata": {**ref(LIST_META), "description": "Standard list metadata."},
            },
            "required": ["items"],
            GVK: [gvk(info.group, info.version, info.list_kind)],
        }
        return name

    def _type_meta_properties(self) -> JSON:
        props: JSON = {}
        for field_name, info in meta.TypedModel.model_fields.items():
            props[info.alias or field_name] = self.field_schema(meta.TypedModel, field_name, info, Hint())
        return props

    def add_meta(self, group_versions: Sequence[tuple[str, str]]) -> None:
        """The apimachinery and autoscaling/v1 definitions every document has."""
        for cls in (meta.ObjectMeta, meta.ListMeta, meta.Status, meta.DeleteOptions, meta.WatchEvent):
            self.name_of(cls)
        everywhere = list(dict.fromkeys([("", "v1"), *group_versions]))
        _add_gvk(self.definitions[STATUS], gvk("", "v1", "Status"))
        for g, v in everywhere:
            _add_gvk(self.definitions[DELETE_OPTIONS], gvk(g, v, "DeleteOptions"))
            _add_gvk(self.definitions[WATCH_EVENT], gvk(g, v, "WatchEvent"))
        self.definitions[TIME] = {
            "description": "A timestamp in RFC3339 form, such as 2006-01-02T15:04:05Z.",
            "type": "string",
            "format": "date-time",
        }
        self.definitions[FIELDS_V1] = {
            "description": "A set of fields in the FieldsV1 format: a tree of field paths as JSON object keys.",
            "type": "object",
        }
        self.definitions[RAW_EXTENSION] = {
            "description": "An embedded object, in its own JSON form.",
            "type": "object",
        }
        self.definitions[PATCH] = {
            "description": "The body of a PATCH request, in the format its Content-Type names.",
            "type": "object",
        }
        self.definitions[SCALE] = {
            "description": "Scale is the desired and observed number of replicas of a scalable resource.",
            "type": "object",
            "properties": {
                **self._type_meta_properties(),
                "metadata": {**ref(OBJECT_META), "description": "Standard object metadata."},
                "spec": {**ref(SCALE_SPEC), "description": "The desired number of replicas."},
                "status": {**ref(SCALE_STATUS), "description": "The observed number of replicas; read-only."},
            },
            GVK: [SCALE_GVK],
        }
        self.definitions[SCALE_SPEC] = {
            "description": "ScaleSpec is the desired number of replicas.",
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "format": "int32", "description": "The desired number of replicas."},
            },
        }
        self.definitions[SCALE_STATUS] = {
            "description": "ScaleStatus is the observed number of replicas and how to select them.",
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "format": "int32", "description": "The observed number of replicas."},
                "selector": {
                    "type": "string",
                    "description": "Label selector of the replicas, in the string form of a label query.",
                },
            },
            "required": ["replicas"],
        }


def constraint_keywords(rules: Constraints, schema: JSON) -> JSON:
    """The OpenAPI keywords of a field's declared constraints, for its `schema` (its type or reference)."""
    out: JSON = {}
    kind = schema.get("type")
    if rules.enum is not None:
        out["enum"] = sorted(set(rules.enum))
    for key, value in (("minimum", rules.minimum), ("maximum", rules.maximum), ("minLength", rules.min_length),
                       ("maxLength", rules.max_length), ("pattern", rules.pattern)):
        if value is not None:
            out[key] = value
    if rules.format is not None and "$ref" not in schema:
        out["format"] = rules.format
    regex = rules.regex
    empty_passes = ((rules.enum is None or "" in rules.enum) and rules.min_length is None and rules.format is None
                    and (regex is None or regex.fullmatch("") is not None))
    if rules.required and kind == "string" and empty_passes:
        out["minLength"] = 1  # "" is refused as missing
    if rules.required and kind == "array":
        out["minItems"] = 1
    return out


def _add_gvk(schema: JSON, value: dict[str, str]) -> None:
    existing: list[dict[str, str]] = schema.setdefault(GVK, [])
    if value not in existing:
        existing.append(value)
