"""Kubernetes' `fieldsV1` encoding of a field set (structured-merge-diff's `Set.ToJSON` / `FromJSON`).

`{"f:spec": {".": {}, "f:replicas": {}}}` holds `.spec` and `.spec.replicas`: `f:<name>` descends into a
field or map key, `k:{"type":"Ready"}` into the map-list item with those key fields, `v:"a"` into the
set item with that value; an empty object marks a member leaf, and `"."` a member that also has
children. Children are written in structured-merge-diff's order (field names, then keys, then values).
Index elements (`i:<n>`) belong to lists this server never tracks by position and are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubellm.registry.fieldmanager.paths import (
    Element,
    KeyElement,
    Path,
    ValueElement,
    canonical,
    element_order,
    parse_json,
)

FIELD_PREFIX = "f:"
KEY_PREFIX = "k:"
VALUE_PREFIX = "v:"
SELF = "."


def element_key(element: Element) -> str:
    """The fieldsV1 key of a path element."""
    if isinstance(element, str):
        return FIELD_PREFIX + element
    if isinstance(element, KeyElement):
        return KEY_PREFIX + "{" + ",".join(f"{canonical(name)}:{text}" for name, text in element.fields) + "}"
    return VALUE_PREFIX + element.value


def parse_element(key: str) -> Element:
    """The path element of a fieldsV1 key; ValueError when it is not one this server reads."""
    if key.startswith(FIELD_PREFIX):
        return key[len(FIELD_PREFIX):]
    if key.startswith(KEY_PREFIX):
        fields = parse_json(key[len(KEY_PREFIX):])
        if not isinstance(fields, dict) or not fields:
            raise ValueError(f"fieldsV1 key {key!r} must name at least one key field")
        return KeyElement.of(fields)
    if key.startswith(VALUE_PREFIX):
        return ValueElement.of(parse_json(key[len(VALUE_PREFIX):]))
    raise ValueError(f"unsupported fieldsV1 path element {key!r}: only f:, k: and v: elements")


def set_to_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """Encode a set of paths as a `fieldsV1` object (`"."` first, then children in order)."""
    members = set(paths)
    tree: dict[Element, Any] = {}
    for path in members:
        if not path:
            raise ValueError("the empty path cannot be a member of a field set")
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    return _emit(tree, (), members)


def _emit(tree: dict[Element, Any], prefix: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if prefix in members and tree:
        out[SELF] = {}
    for element in sorted(tree, key=element_order):
        out[element_key(element)] = _emit(tree[element], (*prefix, element), members)
    return out


def fields_to_set(fields: Mapping[str, Any]) -> set[Path]:
    """Decode a `fieldsV1` object; ValueError when it is not one this server reads."""
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
        path = (*prefix, parse_element(key))
        if child:
            _parse(child, path, out)
        else:
            out.add(path)
