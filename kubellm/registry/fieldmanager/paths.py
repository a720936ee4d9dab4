"""Field paths over JSON objects, as structured-merge-diff's `fieldpath` has them.

A path is a tuple of elements from the object root. An element is a field name or map key (`str`), an
item of a map list by its key fields (`KeyElement`, written `k:{"type":"Ready"}` in fieldsV1) or an
item of a set by its value (`ValueElement`, `v:"example.com/cleanup"`). Paths print as kube prints a
`fieldpath.Path`: `.spec.replicas`, `.status.conditions[type="Ready"].status`, `.metadata.finalizers[="a"]`.

Values inside elements are kept as canonical JSON text (Go's encoding, so fieldsV1 reads as kube
writes it): `1` and `1.0` are the same item, `true` and `1` are not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KeyElement:
    """A map-list item by its key fields: (name, canonical JSON value) pairs sorted by name."""

    fields: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> KeyElement:
        return cls(tuple(sorted((name, canonical(value)) for name, value in values.items())))


@dataclass(frozen=True)
class ValueElement:
    """A set item by its value (canonical JSON)."""

    value: str

    @classmethod
    def of(cls, value: Any) -> ValueElement:
        return cls(canonical(value))


Element = str | KeyElement | ValueElement
Path = tuple[Element, ...]
FieldSet = frozenset[Path]


# --- JSON as Go writes it ------------------------------------------------------------------------------

_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "<": "\\u003c", ">": "\\u003e",
               "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_string(text: str) -> str:
    out = ['"']
    for ch in text:
        escaped = _GO_ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _number(value: float) -> int | float:
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a JSON number")
    return int(value) if value.is_integer() and abs(value) < 1e21 else value


def canonical(value: Any) -> str:
    """The JSON text of `value` as Go's encoding/json writes it (sorted keys, HTML characters escaped);
    integral floats are written as integers so that equal numbers give equal text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        number = _number(value)
        return str(number) if isinstance(number, int) else repr(number)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_go_string(str(k))}:{canonical(value[k])}" for k in sorted(value)) + "}"
    raise ValueError(f"not a JSON value: {value!r}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str) -> Any:
    """Strict JSON (no NaN or Infinity)."""
    return json.loads(text, parse_constant=_refuse_constant)


# --- printing and order --------------------------------------------------------------------------------


def _go_quote(text: str) -> str:
    """Go's %q (strconv.Quote)."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\v": "\\v"}[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _value_string(value: Any) -> str:
    """structured-merge-diff's value.ToString: strings quoted, other scalars bare."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, list):
        return "[" + ",".join(_value_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={_value_string(v)}" for k, v in value.items())
    return str(value)


def element_string(element: Element) -> str:
    if isinstance(element, str):
        return "." + element
    if isinstance(element, KeyElement):
        return "[" + ",".join(f"{name}={_value_string(parse_json(text))}" for name, text in element.fields) + "]"
    return f"[={_value_string(parse_json(element.value))}]"


def path_string(path: Path) -> str:
    return "".join(element_string(e) for e in path)


def _value_order(value: Any) -> tuple[Any, ...]:
    """structured-merge-diff's value.Compare: numbers, strings, booleans, lists, maps, null."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(_value_order(v) for v in value))
    if isinstance(value, dict):
        return (4, tuple(sorted((k, _value_order(v)) for k, v in value.items())))
    return (5,)


def element_order(element: Element) -> tuple[Any, ...]:
    """PathElement.Compare: field names, then keys (field by field), then values."""
    if isinstance(element, str):
        return (0, element)
    if isinstance(element, KeyElement):
        return (1, tuple((name, _value_order(parse_json(text))) for name, text in element.fields))
    return (2, _value_order(parse_json(element.value)))


def iteration_key(path: Path) -> tuple[tuple[int, tuple[Any, ...]], ...]:
    """Sort key giving structured-merge-diff's set order: at each level members first, then children."""
    if not path:
        return ()
    return (*((1, element_order(e)) for e in path[:-1]), (0, element_order(path[-1])))


# --- sets of paths -------------------------------------------------------------------------------------


def drop_under(fields: Iterable[Path], gone: set[Path]) -> set[Path]:
    """`fields` without every path that is in `gone` or lies under a path in `gone`."""
    if not gone:
        return set(fields)
    return {path for path in fields if not any(path[:i] in gone for i in range(1, len(path) + 1))}


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
