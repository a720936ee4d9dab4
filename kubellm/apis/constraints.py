"""Field constraints: declared once on the API types, enforced and published from there.

Every field of an API type has a default, so decoding never fails on a missing value; whether a value is
required, which values a string may take, the range of a number and the length or form of a string are
declared on the field instead, with `constrained(...)` (a pydantic `Field`) or `rules(...)` (the
`json_schema_extra` to give `atomic_list`, `map_list`, `secret_field`... ; extras are combined, never
overwritten):

    model: str = constrained(default="", required=True, min_length=3, description="...")
    verbs: list[str] = atomic_list(json_schema_extra=rules(required="verbs must contain at least one value"), ...)

What can be declared, and what it means (`kubellm.apis.validation.declared` enforces it with apimachinery's
messages, `kubellm.server.openapi.schemas` publishes it):

- `required`: the zero value ("", None, an empty list) is `Required value` (a string `required` is the
  error's detail). A required field whose type is a struct is never zero itself: it is enforced by the
  struct's own required fields (or its kind's custom rules). Published as `required` in the parent, with
  `minLength: 1` for a string and `minItems: 1` for a list; a field the server defaults to a non-zero
  value (`state: Active`) is not published as required, only as not empty.
- `enum`: the values a string may take, "" included only where it is allowed (`Unsupported value`).
- `minimum` / `maximum`: an integer's range (`must be greater than or equal to 512`).
- `min_length` / `max_length`: a string's length in characters (`must be at least 3 characters`,
  `Too long: may not be more than 1024 bytes`).
- `pattern`: a regular expression the whole string must match, written `^...$` in the common subset of
  ECMAScript and Python regexes (ASCII classes such as `[0-9]`, no `\\d`); its message is required.
- `format`: `date-time` (RFC 3339, published as a reference to `meta/v1` Time) or `byte` (base64).
- `messages`: the detail to use instead of the default one, by keyword (`{"minimum": "must be greater
  than or equal to zero"}`); the error is then `Invalid value` (still `Required value` for `required`).

Checks run in that order and stop at the first failure of `required` or `enum`. Rules that cannot be
declared this way (cross-field rules, DNS names, URLs, uniqueness) stay in each group's `validation.py`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from kubellm.apis.listtypes import combine, unwrap_optional

CONSTRAINTS = "x-kubellm-constraints"
"""The `json_schema_extra` key the declarations are kept under (never published as such)."""

FORMATS = ("date-time", "byte")
KEYWORDS = ("required", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "format")
"""What can be declared, by its OpenAPI name, in the order the checks run."""

Kind = Literal["string", "integer", "list", "struct", "other"]


@dataclass(frozen=True)
class Constraints:
    """What one field declares (see the module docstring)."""

    required: bool = False
    required_detail: str = ""
    enum: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    format: str | None = None
    messages: Mapping[str, str] | None = None

    def message(self, keyword: str) -> str | None:
        """The declared detail for `keyword`, if the field replaces the default one."""
        return (self.messages or {}).get(keyword)

    @functools.cached_property
    def regex(self) -> re.Pattern[str] | None:
        """The pattern for `fullmatch` (the published one without its anchors, as one group)."""
        return None if self.pattern is None else re.compile(f"(?:{self.pattern[1:-1]})")


def rules(*, required: bool | str = False, enum: Sequence[str] | None = None, minimum: int | None = None,
          maximum: int | None = None, min_length: int | None = None, max_length: int | None = None,
          pattern: str | None = None, format: str | None = None,
          messages: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The `json_schema_extra` that declares these constraints (combine it with others freely)."""
    declared: dict[str, Any] = {}
    if required:
        declared["required"] = required
    if enum is not None:
        if not enum or not all(isinstance(v, str) for v in enum):
            raise TypeError("an enum is a non-empty list of strings")
        declared["enum"] = list(dict.fromkeys(enum))
    for key, value in (("minimum", minimum), ("maximum", maximum), ("minLength", min_length),
                       ("maxLength", max_length)):
        if value is not None:
            declared[key] = value
    if pattern is not None:
        if not (pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$")):
            raise TypeError(f"a pattern is anchored as a whole, ^...$: {pattern!r}")
        if "\\d" in pattern or "\\w" in pattern:
            raise TypeError(f"a pattern uses explicit ASCII classes ([0-9]), not \\d or \\w: {pattern!r}")
        re.compile(pattern)
        if not (messages or {}).get("pattern"):
            raise TypeError("a pattern needs its message: messages={'pattern': ...}")
        declared["pattern"] = pattern
    if format is not None:
        if format not in FORMATS:
            raise TypeError(f"unknown format {format!r} (known: {', '.join(FORMATS)})")
        declared["format"] = format
    if messages:
        unknown = set(messages) - set(KEYWORDS)
        if unknown:
            raise TypeError(f"messages for unknown keywords {sorted(unknown)}")
        declared["messages"] = dict(messages)
    if not declared:
        raise TypeError("nothing declared")
    return {CONSTRAINTS: declared}


def constrained(*, required: bool | str = False, enum: Sequence[str] | None = None, minimum: int | None = None,
                maximum: int | None = None, min_length: int | None = None, max_length: int | None = None,
                pattern: str | None = None, format: str | None = None, messages: Mapping[str, str] | None = None,
                json_schema_extra: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
    """A pydantic `Field` declaring these constraints (see the module docstring)."""
    declared = rules(required=required, enum=enum, minimum=minimum, maximum=maximum, min_length=min_length,
                     max_length=max_length, pattern=pattern, format=format, messages=messages)
    return Field(json_schema_extra=combine(json_schema_extra, declared), **kwargs)


def of(info: FieldInfo) -> Constraints | None:
    """What a field declares, or None."""
    extra = info.json_schema_extra
    found = extra.get(CONSTRAINTS) if isinstance(extra, Mapping) else None
    if not isinstance(found, Mapping):
        return None
    declared: Mapping[str, Any] = found
    required = declared.get("required", False)
    enum = declared.get("enum")
    return Constraints(
        required=bool(required),
        required_detail=required if isinstance(required, str) else "",
        enum=tuple(enum) if enum is not None else None,
        minimum=declared.get("minimum"),
        maximum=declared.get("maximum"),
        min_length=declared.get("minLength"),
        max_length=declared.get("maxLength"),
        pattern=declared.get("pattern"),
        format=declared.get("format"),
        messages=declared.get("messages"),
    )


# --- reading a type --------------------------------------------------------------------------------------


def kind_of(annotation: Any) -> Kind:
    """What a field holds, for the constraints that apply to it."""
    annotation = unwrap_optional(annotation)
    if annotation is str or get_origin(annotation) is Literal:
        return "string"
    if annotation is int:
        return "integer"
    if get_origin(annotation) is list:
        return "list"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "struct"
    return "other"


def nested_models(annotation: Any) -> tuple[type[BaseModel], ...]:
    """The model types a field's values are or hold (in lists and map values)."""
    annotation = unwrap_optional(annotation)
    origin = get_origin(annotation)
    if origin in (list, dict):
        args = get_args(annotation)
        return nested_models(args[-1]) if args else ()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return (annotation,)
    return ()


_APPLIES = {
    "string": {"required", "enum", "minLength", "maxLength", "pattern", "format"},
    "integer": {"required", "minimum", "maximum"},
    "list": {"required"},
    "struct": {"required"},
    "other": set(),
}


def _check(model: type[BaseModel], name: str, info: FieldInfo, declared: Constraints) -> None:
    kind = kind_of(info.annotation)
    values = {"required": declared.required or None, "enum": declared.enum, "minimum": declared.minimum,
              "maximum": declared.maximum, "minLength": declared.min_length, "maxLength": declared.max_length,
              "pattern": declared.pattern, "format": declared.format}
    used = {key for key, value in values.items() if value is not None}
    wrong = used - _APPLIES[kind]
    if wrong:
        raise TypeError(f"{model.__name__}.{name}: {sorted(wrong)} cannot be declared on a {kind} field")
    if set(declared.messages or {}) - used:
        raise TypeError(f"{model.__name__}.{name}: messages for undeclared keywords")
    default = info.get_default(call_default_factory=True)
    if (declared.enum is not None and isinstance(default, str) and default not in declared.enum
            and not (default == "" and declared.required)):
        # a client that leaves the field out must get a value the field accepts
        raise TypeError(f"{model.__name__}.{name}: the default {default!r} is not in the enum")


@dataclass(frozen=True)
class DeclaredField:
    name: str
    """The Python name."""
    key: str
    """The JSON name."""
    constraints: Constraints | None
    models: tuple[type[BaseModel], ...]
    """The model types inside the field (to walk into)."""


@functools.cache
def declared_fields(model: type[BaseModel]) -> tuple[DeclaredField, ...]:
    """The fields of `model` in declaration order, with their constraints (TypeError for a declaration that
    does not fit its field)."""
    out = []
    for name, info in model.model_fields.items():
        declared = of(info)
        if declared is not None:
            _check(model, name, info, declared)
        out.append(DeclaredField(name, info.alias or name, declared, nested_models(info.annotation)))
    return tuple(out)


def is_zero_default(info: FieldInfo) -> bool:
    """Whether a field's default is its zero value (a struct or list made by default_factory counts as zero:
    a client that omits it gets nothing it did not ask for)."""
    if info.default_factory is not None:
        return True
    default = info.default
    return default is None or default == "" or default is False or (type(default) is int and default == 0)
