"""Secret fields: declared once on the API types, read by everything that must keep them secret.

A field is secret when its pydantic `Field` carries `json_schema_extra=SECRET` (see `secret_field`).
From that one declaration come:

- `secret_paths(model)`: the JSON paths (by alias) of every secret field of a type;
- `without_secrets(obj, paths)`: the object as clients may see it (write-only fields removed);
- `redact_secrets(obj, paths)`: the object as the audit log may record it (values replaced);
- `scrub_last_applied(obj, paths)`: `kubectl apply`'s last-applied annotation, which repeats the whole
  manifest, with the secret fields removed before it is stored.

The registry strips responses with these paths, the audit log redacts with them, and resources with
secret fields are encrypted at rest by default. Paths are tuples of JSON keys; `*` stands for every
item of a list.
"""

from __future__ import annotations

import functools
import json
import types
from collections.abc import Iterable
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, Field

SECRET_MARK = "x-kubellm-secret"
SECRET: dict[str, Any] = {SECRET_MARK: True, "writeOnly": True}
"""`json_schema_extra` of a secret field: write-only, never returned, redacted in audit, encrypted."""
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
REDACTED = "<redacted>"

Path = tuple[str, ...]


def secret_field(**kwargs: Any) -> Any:
    """A pydantic Field declared secret (see the module docstring)."""
    return Field(json_schema_extra=SECRET, **kwargs)


def is_secret(extra: object) -> bool:
    return isinstance(extra, dict) and extra.get(SECRET_MARK) is True


def _models_in(annotation: Any) -> tuple[list[type[BaseModel]], bool]:
    """The model types inside an annotation, and whether they sit in a list."""
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation], False
    if origin in (list, tuple, set, frozenset):
        inner, _ = _models_in(get_args(annotation)[0]) if get_args(annotation) else ([], False)
        return inner, True
    if origin in (Union, types.UnionType):
        found: list[type[BaseModel]] = []
        listed = False
        for arg in get_args(annotation):
            models, in_list = _models_in(arg)
            found += models
            listed = listed or in_list
        return found, listed
    return [], False


@functools.cache
def secret_paths(model: type[BaseModel]) -> tuple[Path, ...]:
    """JSON paths of the secret fields of `model` and of the models nested in it."""
    out: list[Path] = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        if is_secret(info.json_schema_extra):
            out.append((key,))
            continue
        models, in_list = _models_in(info.annotation)
        prefix: Path = (key, "*") if in_list else (key,)
        for sub in models:
            if sub is not model:
                out.extend(prefix + p for p in secret_paths(sub))
    return tuple(dict.fromkeys(out))


def _without(node: Any, path: Path) -> Any:
    """A copy of `node` along `path` with the last key removed; unchanged parts are shared, not copied."""
    if not path:
        return node
    head, rest = path[0], path[1:]
    if head == "*":
        if not isinstance(node, list):
            return node
        items = [_without(item, rest) for item in node]
        return node if all(a is b for a, b in zip(items, node)) else items
    if not isinstance(node, dict) or head not in node:
        return node
    if not rest:
        return {k: v for k, v in node.items() if k != head}
    child = _without(node[head], rest)
    return node if child is node[head] else {**node, head: child}


def without_secrets(obj: dict[str, Any], paths: Iterable[Path]) -> dict[str, Any]:
    """`obj` without its secret fields (and with its last-applied annotation scrubbed); `obj` is not changed."""
    paths = tuple(paths)
    out = obj
    for path in paths:
        out = _without(out, path)
    return scrub_last_applied(out, paths)  # objects stored before scrubbing existed may still carry them


def _redact(node: Any, path: Path) -> Any:
    if not path:
        return REDACTED if node not in (None, "", {}, []) else node
    head, rest = path[0], path[1:]
    if head == "*":
        return [_redact(item, rest) for item in node] if isinstance(node, list) else node
    if not isinstance(node, dict) or head not in node:
        return node
    return {**node, head: _redact(node[head], rest)}


def redact_secrets(obj: Any, paths: Iterable[Path]) -> Any:
    """`obj` with every secret value replaced by `<redacted>`, including inside the last-applied annotation."""
    paths = tuple(paths)
    if not paths or not isinstance(obj, dict):
        return obj
    out: Any = obj
    for path in paths:
        out = _redact(out, path)
    return _map_last_applied(out, lambda applied: redact_secrets(applied, paths))


def scrub_last_applied(obj: dict[str, Any], paths: Iterable[Path]) -> dict[str, Any]:
    """`obj` with the secret fields removed from its last-applied annotation (the annotation kubectl apply
    writes repeats the whole manifest, credentials and passwords included)."""
    paths = tuple(paths)
    if not paths:
        return obj
    return _map_last_applied(obj, lambda applied: without_secrets(applied, paths))


def _map_last_applied(obj: dict[str, Any], change: Any) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return obj
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict) or not isinstance(annotations.get(LAST_APPLIED), str):
        return obj
    raw = annotations[LAST_APPLIED]
    try:
        applied = json.loads(raw)
    except (ValueError, RecursionError):
        # Not JSON: kubectl never writes that, and nothing can be told apart inside it, so it is not kept.
        return {**obj, "metadata": {**meta, "annotations": {k: v for k, v in annotations.items()
                                                            if k != LAST_APPLIED}}}
    if not isinstance(applied, dict):
        return obj
    changed = change(applied)
    if changed is applied:
        return obj
    text = json.dumps(changed, separators=(",", ":")) + ("\n" if raw.endswith("\n") else "")
    return {**obj, "metadata": {**meta, "annotations": {**annotations, LAST_APPLIED: text}}}
