"""The OpenAPI documents: v2 (`/openapi/v2`), the v3 index (`/openapi/v3`) and one v3 document per
group-version (`/openapi/v3/apis/<group>/<version>`).

Documents are built once per set of resources and cached; the functions return the cached dicts,
which callers must not change. `serialize` gives the bytes to serve (compact JSON, sorted keys),
and `document_hash` the digest the v3 index puts in each `serverRelativeURL` (`?hash=`): uppercase
hex SHA-512 of exactly those bytes, as kube-apiserver computes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata
from typing import Any

import orjson

from kubellm.apis.scheme import ResourceInfo
from kubellm.registry.registry import describe
from kubellm.registry.rest import Served
from kubellm.server.openapi import paths as rest
from kubellm.server.openapi import proto
from kubellm.server.openapi.schemas import (
    JSON,
    REF_V2,
    SCALE,
    SCALE_SPEC,
    SCALE_STATUS,
    WATCH_EVENT,
    WRITE_ONLY,
    SchemaBuilder,
    kind_name,
    list_name,
    reachable,
    refs_in,
)

REF_V3 = "#/components/schemas/"
TITLE = "KubeLLM"
SECURITY_SCHEME = {
    "BearerToken": {
        "type": "apiKey",
        "name": "authorization",
        "in": "header",
        "description": "Bearer token authentication: 'authorization: Bearer <token>'.",
    }
}


def _version() -> str:
    try:
        return "v" + metadata.version("kubellm")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unversioned"


def serialize(doc: JSON) -> bytes:
    """The bytes to serve for a document: compact JSON with sorted keys (stable for hashing)."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def document_hash(doc: JSON) -> str:
    """The `?hash=` of a v3 document: uppercase hex SHA-512 of `serialize(doc)`."""
    return hashlib.sha512(serialize(doc)).hexdigest().upper()


def v3_path(group: str, version: str) -> str:
    """The key of a group-version in the v3 index, and the tail of its URL after `/openapi/v3/`."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


class _Catalog:
    """Every definition and path for one set of resources, in v2 form."""

    def __init__(self, resources: tuple[Served, ...]) -> None:
        self.resources = resources
        self.group_versions = sorted({(r.group, r.version) for r in resources})
        builder = SchemaBuilder()
        builder.add_meta(self.group_versions)
        for served in resources:
            builder.add_kind(served.info)
        self.definitions = builder.definitions

    def served(self, group: str, version: str) -> list[Served]:
        return [r for r in self.resources if r.group == group and r.version == version]

    def definitions_for(self, infos: Sequence[Served], paths: JSON, extra: Sequence[str]) -> JSON:
        roots = {*refs_in(paths), *extra}
        for r in infos:
            roots.update((kind_name(r.info), list_name(r.info)))
        names = reachable(self.definitions, roots)
        return {name: self.definitions[name] for name in sorted(names)}


def _info() -> JSON:
    return {"title": TITLE, "version": _version()}


def _to_v3(node: Any) -> Any:
    """v2 schema → v3: references under #/components/schemas/, and a reference with siblings (a
    description, say) wrapped in allOf, as kube-apiserver publishes v3."""
    if isinstance(node, list):
        return [_to_v3(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_v3(value) for key, value in node.items() if key != "$ref"}
    target = node.get("$ref")
    if isinstance(target, str):
        target = REF_V3 + target.removeprefix(REF_V2)
        if out:
            out["allOf"] = [{"$ref": target}]
        else:
            out["$ref"] = target
    return out


def _to_v2(schema: Any) -> Any:
    """A schema as Swagger 2.0 can say it: without `writeOnly` (a 3.0 keyword; v2 has only readOnly).
    Schemas that change are copied, the others shared."""
    if not isinstance(schema, dict):
        return schema
    out = {key: value for key, value in schema.items() if key != WRITE_ONLY}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: _to_v2(sub) for name, sub in out["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _to_v2(out[key])
    if isinstance(out.get("allOf"), list):
        out["allOf"] = [_to_v2(sub) for sub in out["allOf"]]
    return out


def as_served(resources: Sequence[Served | ResourceInfo]) -> tuple[Served, ...]:
    """Resources as served; bare type information is described with the registry's strategies."""
    bare = [r for r in resources if isinstance(r, ResourceInfo)]
    described = dict(zip(bare, describe(bare), strict=True)) if bare else {}
    return tuple(described[r] if isinstance(r, ResourceInfo) else r for r in resources)


@lru_cache(maxsize=8)
def _catalog(resources: tuple[Served, ...]) -> _Catalog:
    return _Catalog(resources)


@lru_cache(maxsize=8)
def _v2(resources: tuple[Served, ...]) -> JSON:
    catalog = _catalog(resources)
    paths: JSON = {}
    for served in resources:
        paths.update(rest.render_v2(served))
    extra = [WATCH_EVENT, SCALE, SCALE_SPEC, SCALE_STATUS]
    return {
        "swagger": "2.0",
        "info": _info(),
        "paths": dict(sorted(paths.items())),
        "definitions": {name: _to_v2(schema)
                        for name, schema in catalog.definitions_for(resources, paths, extra).items()},
        "securityDefinitions": SECURITY_SCHEME,
        "security": [{"BearerToken": []}],
    }


@lru_cache(maxsize=64)
def _v3(resources: tuple[Served, ...], group: str, version: str) -> JSON:
    catalog = _catalog(resources)
    served = catalog.served(group, version)
    if not served:
        raise KeyError(f"{group}/{version} is not served")
    paths: JSON = {}
    for r in served:
        paths.update(rest.render_v3(r))
    schemas = catalog.definitions_for(served, paths, [WATCH_EVENT])
    return {
        "openapi": "3.0.0",
        "info": _info(),
        "paths": _to_v3(dict(sorted(paths.items()))),
        "components": {"schemas": _to_v3(schemas), "securitySchemes": SECURITY_SCHEME},
        "security": [{"BearerToken": []}],
    }


@lru_cache(maxsize=8)
def _v3_index(resources: tuple[Served, ...]) -> JSON:
    catalog = _catalog(resources)
    index: JSON = {}
    for group, version in catalog.group_versions:
        digest = document_hash(_v3(resources, group, version))
        path = v3_path(group, version)
        index[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": index}


def build_v2(resources: Sequence[Served | ResourceInfo]) -> JSON:
    """The Swagger 2.0 document of `/openapi/v2`. Cached: do not modify the result."""
    return _v2(as_served(resources))


@lru_cache(maxsize=8)
def _v2_protobuf(resources: tuple[Served, ...]) -> bytes:
    return proto.encode_document(_v2(resources))


def build_v2_protobuf(resources: Sequence[Served | ResourceInfo]) -> bytes:
    """`build_v2` as a serialized gnostic `openapi_v2.Document`: what kubectl asks for (`proto.MEDIA_TYPE`)."""
    return _v2_protobuf(as_served(resources))


def build_v3(resources: Sequence[Served | ResourceInfo], group: str, version: str) -> JSON:
    """The OpenAPI 3.0 document of one group-version. KeyError if none of `resources` is in it.
    Cached: do not modify the result."""
    return _v3(as_served(resources), group, version)


def build_v3_index(resources: Sequence[Served | ResourceInfo]) -> JSON:
    """The `/openapi/v3` index: each group-version's document URL with the hash of its content."""
    return _v3_index(as_served(resources))
