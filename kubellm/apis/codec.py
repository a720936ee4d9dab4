"""Decoding request objects into API types, the way kube-apiserver decodes custom resources.

Types are checked strictly (no "3" for 3). Unknown fields are handled per `fieldValidation`:
Strict rejects with 400, Warn drops them and returns warnings (at most `MAX_WARNINGS`: each becomes a
response header, and HTTP clients refuse more than about a hundred), Ignore drops them silently. Wrong
types become field errors (`spec.replicas: Invalid value: "x": must be of type integer`), which the
Store merges with the semantic validation errors into one 422.

API types give every field a default, so a value removed for being the wrong type never leaves the
object undecodable; requiredness is a semantic check.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from kubellm.apis import errors
from kubellm.apis.validation import field as ferr
from kubellm.apis.validation.field import ErrorList

M = TypeVar("M", bound=BaseModel)

MAX_WARNINGS = 32
"""Unknown-field warnings returned at most (the last one counts the rest)."""


class FieldValidation(str, Enum):
    STRICT = "Strict"
    WARN = "Warn"
    IGNORE = "Ignore"

    @classmethod
    def parse(cls, value: str | None) -> FieldValidation:
        if not value:
            return cls.WARN
        for member in cls:
            if member.value == value:
                return member
        raise errors.bad_request(
            f"fieldValidation parameter unsupported: {value!r} (supported: Ignore, Strict, Warn)"
        )


_TYPE_NAMES = {
    "int_type": "integer", "int_parsing": "integer", "int_from_float": "integer",
    "string_type": "string", "bool_type": "boolean", "float_type": "number", "float_parsing": "number",
    "dict_type": "object", "model_type": "object", "model_attributes_type": "object",
    "list_type": "array", "tuple_type": "array",
}


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
            "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """`text` quoted as Go's %q (strconv.Quote) writes it, as kube-apiserver's messages quote field names:
    printable characters kept, the rest escaped. The result holds no control character, so a message naming
    a client's field can go in a header (warnings) and a log line unchanged."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def loc_path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else str(part)
    return text


def _drop(data: Any, loc: Sequence[int | str]) -> None:
    """Remove the value at `loc` (a pydantic error location) from nested dicts and lists."""
    node = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return
    last = loc[-1] if loc else None
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
        del node[last]


def _sort_key(loc: Sequence[int | str]) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in loc)


@dataclass
class Decoded(Generic[M]):
    obj: M
    field_errors: ErrorList = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def decode(model: type[M], data: dict[str, Any], validation: FieldValidation = FieldValidation.WARN,
           *, max_passes: int = 8) -> Decoded[M]:
    """Decode `data` into `model`; see the module docstring for the treatment of bad fields."""
    if not isinstance(data, dict):
        raise errors.bad_request("the body of the request must be a JSON or YAML object")
    work = data
    unknown: list[str] = []
    field_errors: ErrorList = []
    for _ in range(max_passes):
        try:
            obj = model.model_validate(work, by_alias=True, by_name=False)
        except ValidationError as exc:
            if work is data:
                work = copy.deepcopy(data)
            # Drop bad values deepest-first and list items from the highest index, so that removing
            # one never shifts the location of another.
            found = exc.errors(include_url=False)
            for e in found:
                loc = e["loc"]
                path = loc_path(loc)
                if e["type"] == "extra_forbidden":
                    unknown.append(path)
                elif e["type"] == "missing":
                    field_errors.append(ferr.required(path))
                else:
                    kind = _TYPE_NAMES.get(e["type"])
                    detail = f"must be of type {kind}" if kind else e["msg"]
                    field_errors.append(ferr.type_invalid(path, e.get("input"), detail))
            for e in sorted(found, key=lambda e: _sort_key(e["loc"]), reverse=True):
                _drop(work, e["loc"])
            continue
        warnings = [f"unknown field {go_quote(p)}" for p in unknown]
        if unknown and validation is FieldValidation.STRICT:
            detail = ", ".join(warnings)
            raise errors.bad_request(f"strict decoding error: {detail}")
        if len(warnings) > MAX_WARNINGS:
            more = len(warnings) - MAX_WARNINGS + 1
            warnings = [*warnings[: MAX_WARNINGS - 1], f"and {more} more unknown fields"]
        return Decoded(obj, field_errors, warnings if validation is FieldValidation.WARN else [])
    raise errors.bad_request("the object could not be decoded")
