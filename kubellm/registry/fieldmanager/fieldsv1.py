"""Kubernetes' `fieldsV1` encoding of a field set.

`{"f:spec": {".": {}, "f:replicas": {}}}` holds `.spec` and `.spec.replicas`: `f:<key>` descends into a
map key, an empty object marks a member leaf, and `"."` marks a member that also has children. Lists
are atomic here (as for custom resources without list-type markers), so `k:`, `v:` and `i:` elements
are never produced and are refused when decoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubellm.registry.fieldmanager.paths import Path

FIELD_PREFIX = "f:"
SELF = "."


def set_to_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """Encode a set of paths as a `fieldsV1` object (`"."` first, then keys in sorted order)."""
    members = set(paths)
    tree: dict[str, Any] = {}
    for path in members:
        if not path:
            raise ValueError("the empty path cannot be a member of a field set")
        node = tree
        for key in path:
            node = node.setdefault(key, {})
    return _emit(tree, (), members)


def _emit(tree: dict[str, Any], prefix: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if prefix in members and tree:
        out[SELF] = {}
    for key in sorted(tree):
        out[FIELD_PREFIX + key] = _emit(tree[key], (*prefix, key), members)
    return out


def fields_to_set(fields: Mapping[str, Any]) -> set[Path]:
    """Decode a `fieldsV1` object; ValueError when it is not one this server writes."""
    if not isinstance(fields, Mapping):
        raise ValueError("fieldsV1 must be an object")
    out: set[Path] = set()
    _parse(fields, (), out)
    return out


def _parse(node: Mapping[str, Any], prefix: Path, out: set[Path]) -> None:
    for key, child in node.items():
        if not isinstance(child, Mapping):
            raise ValueError(f"fieldsV1 entry {key!r} must be an object")
        if key == SELF:
            if not prefix or child:
                raise ValueError('"." must be an empty object below a field')
            out.add(prefix)
            continue
        if not key.startswith(FIELD_PREFIX):
            raise ValueError(f"unsupported fieldsV1 path element {key!r}: only f:<name> (lists are atomic)")
        path = (*prefix, key[len(FIELD_PREFIX):])
        if child:
            _parse(child, path, out)
        else:
            out.add(path)
