"""Server-side Tables (meta.k8s.io/v1 Table) from a strategy's printer columns.

Columns are (name, type, JSONPath); Name comes first and Age last, as kube-apiserver prints custom
resources. Date cells become human durations (`5m3s`, `2d4h`) like apimachinery's HumanDuration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from kubellm.apis.timestamps import parse_rfc3339

Column = tuple[str, str, str | Callable[[dict[str, Any]], Any]]
"""Name, type, and a JSONPath or a function of the object (for cells no JSONPath computes, like sums)."""

_STEP = re.compile(r"""\.([A-Za-z0-9_\-]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*["']([^"']*)["']\)\]""")


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Evaluate the JSONPath subset printer columns use: `.a.b`, `[0]`, `[*]`, `[?(@.k=="v")]`."""
    nodes = [obj]
    pos = 0
    path = path.strip().removeprefix("{").removesuffix("}").removeprefix("$")
    while pos < len(path):
        m = _STEP.match(path, pos)
        if not m:
            return []
        pos = m.end()
        key, index, fkey, fval = m.groups()
        nxt: list[Any] = []
        for node in nodes:
            if key is not None and isinstance(node, dict) and key in node:
                nxt.append(node[key])
            elif index is not None and isinstance(node, list):
                if index == "*":
                    nxt.extend(node)
                elif int(index) < len(node):
                    nxt.append(node[int(index)])
            elif fkey is not None and isinstance(node, list):
                nxt.extend(item for item in node if isinstance(item, dict) and _dig(item, fkey) == fval)
        nodes = nxt
    return nodes


def _dig(obj: dict[str, Any], dotted: str) -> str | None:
    node: Any = obj
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    if isinstance(node, bool):
        return "true" if node else "false"
    return None if node is None or isinstance(node, dict | list) else str(node)


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any, now: datetime) -> str:
    then = parse_rfc3339(timestamp)
    if then is None:
        return "<unknown>"
    return human_duration(now.timestamp() - then)


def _cell(obj: dict[str, Any], col_type: str, path: str | Callable[[dict[str, Any]], Any], now: datetime) -> Any:
    if callable(path):
        return path(obj)
    values = jsonpath(obj, path)
    if not values or values[0] is None:
        return None
    if col_type == "date":
        return age(values[0], now)
    if len(values) > 1:
        return ",".join(str(v) for v in values)
    value = values[0]
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return value


def column_definitions(columns: Sequence[Column]) -> list[dict[str, Any]]:
    defs = [{"name": "Name", "type": "string", "format": "name",
             "description": "Name must be unique within a namespace.", "priority": 0}]
    defs += [{"name": n, "type": t if t != "date" else "date", "format": "", "description": "", "priority": 0}
             for n, t, _ in columns]
    if not any(n == "Age" for n, _, _ in columns):
        defs.append({"name": "Age", "type": "date", "format": "",
                     "description": "CreationTimestamp is a timestamp representing the server time when this "
                                    "object was created.", "priority": 0})
    return defs


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def rows(objs: Iterable[dict[str, Any]], columns: Sequence[Column], include: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    has_age = any(n == "Age" for n, _, _ in columns)
    out = []
    for obj in objs:
        meta = obj.get("metadata") or {}
        cells: list[Any] = [meta.get("name", "")]
        cells += [_cell(obj, t, p, now) for _, t, p in columns]
        if not has_age:
            cells.append(age(meta.get("creationTimestamp"), now))
        row: dict[str, Any] = {"cells": cells}
        ro = _row_object(obj, include)
        if ro is not None:
            row["object"] = ro
        out.append(row)
    return out


def table(objs: Iterable[dict[str, Any]], columns: Sequence[Column], *, include: str = "Metadata",
          list_meta: dict[str, Any] | None = None, api_version: str = "meta.k8s.io/v1",
          with_definitions: bool = True) -> dict[str, Any]:
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": list_meta or {},
        "columnDefinitions": column_definitions(columns) if with_definitions else [],
        "rows": rows(objs, columns, include),
    }
