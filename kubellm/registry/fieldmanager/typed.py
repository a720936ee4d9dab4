"""Walks over JSON objects that follow their type's list and map semantics, as structured-merge-diff's
`typed` package does for server-side apply (`apis.listtypes.Node` says what each place is):

- structs and maps are walked key by key (a struct's unknown keys are free-form); atomic ones, scalars
  and atomic lists are single values;
- a `set` list is walked item by item (`v:<value>`), a `map` list item by item by its key fields
  (`k:{...}`) and into each item's fields.

`field_set` is the set an applied configuration owns (`ToFieldSet`), `nodes` every node of an object
for comparisons (`Compare`), `merge` merges a configuration into the live object (`Merge`), `remove`
takes paths out (`RemoveItems`), `expand` adds the named fields above paths
(`EnsureNamedFieldsAreMembers`) and `reconcile` folds paths under what became atomic
(`ReconcileFieldSetWithSchema`).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from kubellm.apis.listtypes import MAP, SET, Node
from kubellm.registry.fieldmanager.paths import (
    Element,
    KeyElement,
    Path,
    ValueElement,
    element_string,
    path_string,
)

Container = Literal["map", "list"] | None


class ItemError(ValueError):
    """A list item that cannot be told apart from the others (no keys, a map in a set, ...)."""


class SchemaErrors(ValueError):
    """A configuration that does not fit its type's list semantics; `str()` is structured-merge-diff's
    ValidationErrors text (`.spec.sources: duplicate entries for key [name="a"]`)."""

    def __init__(self, errors: list[tuple[Path, str]]) -> None:
        self.errors = errors
        lines = [f"{path_string(p)}: {m}" if p else m for p, m in errors]
        super().__init__(lines[0] if len(lines) == 1 else "\n  ".join(["errors:", *lines]))


def container(value: Any, node: Node) -> Container:
    """How a value at `node` is walked: a map key by key, a list item by item, or None: one value."""
    if isinstance(value, dict) and node.kind != "list" and node.granular:
        return "map"
    if isinstance(value, list) and node.kind == "list" and node.granular:
        return "list"
    return None


def item_element(item: Any, node: Node) -> Element:
    """The path element of an item of the list at `node` (a set or a map list)."""
    if node.list_type == MAP:
        if item is None:
            raise ItemError("associative list with keys may not have a null element")
        if not isinstance(item, dict):
            raise ItemError("associative list with keys may not have non-map elements")
        present = {key: item[key] for key in node.keys if key in item}
        if not present:
            keys = " ".join(f'"{k}"' for k in node.keys)
            raise ItemError(f"associative list with keys has an element that omits all key fields [{keys}] "
                            "(and doesn't have default values for any key fields)")
        return KeyElement.of(present)
    if node.list_type == SET:
        if isinstance(item, dict):
            raise ItemError("associative list without keys has an element that's a map type")
        if isinstance(item, list):
            raise ItemError("not supported: associative list with lists as elements")
        if item is None:
            raise ItemError("associative list without keys has an element that's an explicit null")
        return ValueElement.of(item)
    raise ItemError("invalid indexing of non-associative list")


def _elements(items: list[Any], node: Node) -> list[Element] | None:
    """The elements of a live list's items, or None when one cannot be told apart (the list is then
    treated as one value instead of failing the write)."""
    try:
        return [item_element(item, node) for item in items]
    except ItemError:
        return None


# --- what a configuration owns -----------------------------------------------------------------------------


def field_set(value: Mapping[str, Any], root: Node) -> set[Path]:
    """The paths an applied configuration sets: its leaves, atomic values, list items (each a member,
    with the fields in it), keys of maps and unknown fields, and empty or null fields. A struct field
    holding a non-empty object or list is not a member itself. SchemaErrors for items that cannot be told
    apart or that repeat (kube refuses those in an apply)."""
    out: set[Path] = set()
    errors: list[tuple[Path, str]] = []
    _field_set(value, root, (), out, errors)
    if errors:
        raise SchemaErrors(errors)
    return out


def _field_set(value: Any, node: Node, path: Path, out: set[Path], errors: list[tuple[Path, str]]) -> None:
    kind = container(value, node)
    if kind == "map":
        for key, child in value.items():
            child_path = (*path, key)
            _field_set(child, node.child(key), child_path, out, errors)
            if child is None or child == {} or not node.named(key):
                out.add(child_path)
        return
    if kind == "list":
        seen: set[Element] = set()
        found: list[tuple[Element, Any]] = []
        for index, item in enumerate(value):
            try:
                element = item_element(item, node)
            except ItemError as exc:
                errors.append((path, f"element {index}: {exc}"))
                return
            if element in seen:
                errors.append((path, f"duplicate entries for key {element_string(element)}"))
            seen.add(element)
            found.append((element, item))
        for element, item in found:
            _field_set(item, node.item(), (*path, element), out, errors)
            out.add((*path, element))
        return
    if path:
        out.add(path)


# --- every node, for comparisons ------------------------------------------------------------------------


def nodes(value: Mapping[str, Any], root: Node) -> dict[Path, tuple[Any, Container]]:
    """Every node under `value` by path, with its value and how it is walked. Items of a list that repeat
    are one node holding all of them; a list whose items cannot be told apart is one value."""
    out: dict[Path, tuple[Any, Container]] = {}
    _nodes(value, root, (), out)
    return out


def _nodes(value: Any, node: Node, path: Path, out: dict[Path, tuple[Any, Container]]) -> None:
    kind = container(value, node)
    if kind == "map":
        if path:
            out[path] = (value, kind)
        for key, child in value.items():
            _nodes(child, node.child(key), (*path, key), out)
        return
    if kind == "list":
        elements = _elements(value, node)
        if elements is None:
            out[path] = (value, None)
            return
        out[path] = (value, kind)
        counts = Counter(elements)
        for element, item in zip(elements, value):
            if counts[element] == 1:
                _nodes(item, node.item(), (*path, element), out)
        for element, count in counts.items():
            if count > 1:
                out[(*path, element)] = ([v for e, v in zip(elements, value) if e == element], None)
        return
    if path:
        out[path] = (value, None)


# --- merging a configuration into the live object -------------------------------------------------------

_ABSENT: Any = object()


def merge(live: Any, config: Any, node: Node) -> Any:
    """`config` merged into `live` (which is not changed; unchanged parts of it are shared): maps key by
    key, sets and map lists item by item in structured-merge-diff's order, everything else replaced.
    `config` must have passed `field_set`."""
    if live is _ABSENT:
        return copy.deepcopy(config)
    kind = container(config, node)
    if kind is None or container(live, node) != kind or (not live and not config):
        return copy.deepcopy(config)
    if kind == "map":
        out = dict(live)
        for key, child in config.items():
            out[key] = merge(live.get(key, _ABSENT), child, node.child(key))
        return out
    return _merge_list(live, config, node)


def _merge_list(live: list[Any], config: list[Any], node: Node) -> list[Any]:
    """Items of both, in structured-merge-diff's order: the live order, with the configuration's items
    placed where the configuration puts them relative to the items both have."""
    live_elements = _elements(live, node)
    if live_elements is None:
        return copy.deepcopy(config)
    config_elements = [item_element(item, node) for item in config]
    counts = Counter(live_elements)
    live_by = {e: item for e, item in zip(live_elements, live) if counts[e] == 1}  # repeated: not merged
    config_by = dict(zip(config_elements, config))
    shared = iter([e for e in config_elements if e in counts])
    next_shared = next(shared, None)
    done: set[Element] = set()
    out: list[Any] = []

    def take(element: Element) -> None:
        done.add(element)
        out.append(merge(live_by.get(element, _ABSENT), config_by[element], node.item()))

    li = ci = 0
    while li < len(live) or ci < len(config):
        if li < len(live) and ci < len(config):
            element = live_elements[li]
            if element == config_elements[ci]:
                take(element)
                li, ci = li + 1, ci + 1
                next_shared = next(shared, None)
                continue
            if element in config_by and next_shared is not None and next_shared != element:
                li += 1  # both have it, but the configuration puts it later: placed when reached there
                continue
        if li < len(live):
            element = live_elements[li]
            if element not in config_by:
                out.append(live[li])
                li += 1
                continue
            if element in done:
                li += 1
        if ci < len(config):
            element = config_elements[ci]
            take(element)
            ci += 1
            if next_shared is not None and next_shared == element:
                next_shared = next(shared, None)
    return out


# --- removing, expanding, reconciling ---------------------------------------------------------------------


def remove(obj: dict[str, Any], paths: Iterable[Path], root: Node) -> None:
    """Remove the nodes at `paths` (with everything under them) from `obj`, in place: map keys are
    deleted, list items dropped (every item with that element)."""
    for path in sorted(paths, key=len):
        if path:
            _remove(obj, path, root)


def _remove(value: Any, path: Path, node: Node) -> None:
    head, rest = path[0], path[1:]
    if isinstance(head, str):
        if not isinstance(value, dict) or head not in value:
            return
        if rest:
            _remove(value[head], rest, node.child(head))
        else:
            del value[head]
        return
    if container(value, node) != "list":
        return
    elements = _elements(value, node)
    if elements is None:
        return
    matches = [i for i, element in enumerate(elements) if element == head]
    if rest:
        for i in matches:
            _remove(value[i], rest, node.item())
    else:
        for i in reversed(matches):
            del value[i]


def _step(node: Node, element: Element) -> Node | None:
    """The node one element below `node`, or None when the element cannot be there."""
    if isinstance(element, str):
        return node.child(element) if node.kind in ("struct", "map", "any") and node.granular else None
    if node.kind != "list" or not node.granular:
        return None
    if isinstance(element, KeyElement) != (node.list_type == MAP):
        return None
    return node.item()


def expand(fields: Iterable[Path], root: Node) -> set[Path]:
    """`fields` with every named struct field above a path in it (structured-merge-diff's
    EnsureNamedFieldsAreMembers): owning `.spec.resources.gpu` also claims `.spec.resources` and `.spec`,
    but owning a field of a list item does not claim the item."""
    out = set(fields)
    for path in fields:
        node: Node | None = root
        for depth, element in enumerate(path[:-1]):
            if node is None:
                break
            if isinstance(element, str) and node.named(element):
                out.add(path[:depth + 1])
            node = _step(node, element)
    return out


def reconcile(fields: Iterable[Path], root: Node) -> set[Path]:
    """`fields` with every path that goes below a node that is no longer granular (an atomic struct or
    list, a scalar) folded into that node, as structured-merge-diff reconciles field sets with a changed
    schema. Paths owned before lists had list types are kept: they own the list node itself."""
    out: set[Path] = set()
    for path in fields:
        node: Node | None = root
        cut = len(path)
        for depth, element in enumerate(path):
            assert node is not None
            below = _step(node, element)
            if below is None:
                cut = depth
                break
            node = below
        if cut:
            out.add(path[:cut])
    return out
