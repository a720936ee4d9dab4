"""Field paths over JSON objects: every map key is one path element; lists and scalars are leaves.

A path is a tuple of map keys from the object root, `("spec", "replicas")`, printed as kube prints
a `fieldpath.Path` of field names: `.spec.replicas`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

Path = tuple[str, ...]
FieldSet = frozenset[Path]


def path_string(path: Path) -> str:
    return "".join(f".{key}" for key in path)


def iteration_key(path: Path) -> tuple[tuple[int, str], ...]:
    """Sort key giving structured-merge-diff's set order: at each level members first, then children."""
    return (*((1, key) for key in path[:-1]), (0, path[-1])) if path else ()


def walk(value: Mapping[str, Any], prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every node under `value` (maps are descended, anything else is a leaf), parents before children."""
    for key, child in value.items():
        path = (*prefix, key)
        yield path, child
        if isinstance(child, dict):
            yield from walk(child, path)


def leaf_paths(value: Mapping[str, Any]) -> set[Path]:
    """Paths of leaves: scalars, nulls, lists (atomic) and empty maps."""
    return {path for path, child in walk(value) if not isinstance(child, dict) or not child}


def lookup(obj: Mapping[str, Any], path: Path) -> tuple[bool, Any]:
    node: Any = obj
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def drop_under(fields: Iterable[Path], gone: set[Path]) -> set[Path]:
    """`fields` without every path that is in `gone` or lies under a path in `gone`."""
    if not gone:
        return set(fields)
    return {path for path in fields if not any(path[:i] in gone for i in range(1, len(path) + 1))}


def covers(fields: Iterable[Path], path: Path) -> bool:
    """Whether `fields` holds `path` itself or a path under it."""
    n = len(path)
    return any(owned[:n] == path for owned in fields)


def json_equal(a: Any, b: Any) -> bool:
    """JSON value equality: `true` is not `1`, `1` is `1.0`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return bool(a == b)
