"""The declared validator: the constraints the API types declare (`kubellm.apis.constraints`), enforced with
apimachinery's messages.

`validate(obj, path)` walks a model instance (its nested models, list items and map values) and reports every
field whose value breaks what the field declares:

- `required`: `spec.model: Required value` (with the declared detail, if any);
- `enum`: `spec.quantization: Unsupported value: "int3": supported values: "awq", "fp8", "gptq"`;
- `minimum` / `maximum`: `spec.maxModelLen: Invalid value: 256: must be greater than or equal to 512`;
- `minLength`: `spec.model: Invalid value: "ab": must be at least 3 characters`;
- `maxLength`: `status.conditions[0].reason: Too long: may not be more than 1024 bytes`;
- `pattern`: `Invalid value` with the declared message; `format`: `date-time` (RFC 3339) and `byte` (base64).

A declared message replaces the default detail. Values under a secret field (`kubellm.apis.secrets`) are
never echoed. Each group's `validation.py` adds the rules that cannot be declared and returns both lists
`in_field_order`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pydantic import BaseModel

from kubellm.apis import constraints, secrets
from kubellm.apis.constraints import Constraints
from kubellm.apis.timestamps import is_rfc3339
from kubellm.apis.validation import field
from kubellm.apis.validation.field import ErrorList, FieldError, Path
from kubellm.apis.validation.values import RFC3339_MSG, greater_or_equal_msg, is_base64, less_or_equal_msg

FORMATS: dict[str, tuple[Callable[[str], bool], str]] = {
    "date-time": (is_rfc3339, RFC3339_MSG),
    "byte": (is_base64, "must be base64-encoded data"),
}


def _is_zero(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list) and not value)


def _invalid(path: Path, value: Any, detail: str, secret: bool) -> FieldError:
    return field.invalid_omitting_value(path, detail) if secret else field.invalid(path, value, detail)


def check(value: Any, declared: Constraints, path: Path, *, secret: bool = False) -> ErrorList:
    """The errors of one value against what its field declares."""
    if _is_zero(value) and declared.required:
        return [field.required(path, declared.required_detail)]
    if value is None:
        return []
    if isinstance(value, str):
        return _check_string(value, declared, path, secret)
    if isinstance(value, int) and not isinstance(value, bool):
        errs: ErrorList = []
        if declared.minimum is not None and value < declared.minimum:
            errs.append(_invalid(path, value, declared.message("minimum") or greater_or_equal_msg(declared.minimum),
                                 secret))
        if declared.maximum is not None and value > declared.maximum:
            errs.append(_invalid(path, value, declared.message("maximum") or less_or_equal_msg(declared.maximum),
                                 secret))
        return errs
    return []


def _check_string(value: str, declared: Constraints, path: Path, secret: bool) -> ErrorList:
    if declared.enum is not None and value not in declared.enum:
        detail = declared.message("enum")
        if detail:
            return [_invalid(path, value, detail, secret)]
        if secret:
            return [field.invalid_omitting_value(path, "unsupported value")]
        return [field.not_supported(path, value, declared.enum)]
    errs: ErrorList = []
    if declared.min_length is not None and len(value) < declared.min_length:
        errs.append(_invalid(path, value, declared.message("minLength")
                             or f"must be at least {declared.min_length} characters", secret))
    if declared.max_length is not None and len(value) > declared.max_length:
        detail = declared.message("maxLength")
        errs.append(_invalid(path, value, detail, secret) if detail else field.too_long(path, declared.max_length))
    regex = declared.regex
    if regex is not None and not regex.fullmatch(value):
        errs.append(_invalid(path, value, declared.message("pattern") or "", secret))
    if declared.format is not None:
        ok, detail = FORMATS[declared.format]
        if not ok(value):
            errs.append(_invalid(path, value, declared.message("format") or detail, secret))
    return errs


@functools.cache
def _declares_anything(model: type[BaseModel]) -> bool:
    """Whether `model` or a model inside it declares a constraint (else there is nothing to walk)."""
    seen: set[type[BaseModel]] = set()
    todo = [model]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for declared in constraints.declared_fields(current):
            if declared.constraints is not None:
                return True
            todo.extend(declared.models)
    return False


def validate(obj: BaseModel, path: Path = Path(), *, secret: bool = False) -> ErrorList:
    """Every violation of the declared constraints in `obj` (whose JSON path is `path`) and inside it."""
    errs: ErrorList = []
    secret_keys = {p[0] for p in secrets.secret_paths(type(obj)) if len(p) == 1}
    for declared in constraints.declared_fields(type(obj)):
        value = getattr(obj, declared.name)
        here = path.child(declared.key)
        hidden = secret or declared.key in secret_keys
        if declared.constraints is not None:
            found = check(value, declared.constraints, here, secret=hidden)
            errs.extend(found)
            if found and declared.constraints.required and _is_zero(value):
                continue
        if not any(_declares_anything(m) for m in declared.models):
            continue
        if isinstance(value, BaseModel):
            errs.extend(validate(value, here, secret=hidden))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    errs.extend(validate(item, here.index(i), secret=hidden))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    errs.extend(validate(item, here.key(key), secret=hidden))
    return errs


def rejected(errs: Iterable[FieldError], path: Path) -> bool:
    """Whether `errs` hold an error about the field at `path` (custom rules skip values already rejected)."""
    where = str(path)
    return any(e.field == where for e in errs)


# --- errors in the order of the fields ---------------------------------------------------------------------

_SEGMENT = re.compile(r"([^.\[]+)|\[([^\]]*)\]")


@functools.cache
def _positions(model: type[BaseModel]) -> dict[str, tuple[int, tuple[type[BaseModel], ...]]]:
    return {d.key: (i, d.models) for i, d in enumerate(constraints.declared_fields(model))}


def position(model: type[BaseModel], path: str) -> tuple[tuple[int, Any], ...]:
    """Where a field path falls in an object of type `model`: field declaration order, list items by index,
    map keys by name; anything unknown after what is known."""
    out: list[tuple[int, Any]] = []
    current: type[BaseModel] | None = model
    for name, index in _SEGMENT.findall(path):
        if name:
            found = _positions(current).get(name) if current is not None else None
            if found is None:
                out.append((1 << 30, name))
                current = None
                continue
            out.append((found[0], ""))
            current = found[1][0] if found[1] else None
        else:
            out.append((int(index), "") if index.isdigit() else (1 << 29, index))
    return tuple(out)


def in_field_order(model: type[BaseModel], *lists: Iterable[FieldError]) -> ErrorList:
    """The errors of all `lists` sorted by the place of their field in `model` (stable: errors of one field
    keep their order, and the first list's come first)."""
    errs = [e for errors in lists for e in errors]
    return sorted(errs, key=lambda e: position(model, e.field))


class _WithSpecAndStatus(Protocol):
    spec: Any
    status: Any


def spec_and_status(obj: _WithSpecAndStatus, validate_spec: Callable[[Any], ErrorList],
                    validate_status: Callable[[Any], ErrorList]) -> ErrorList:
    """A kind's errors: its spec's, and its status's when it has one, in the order of the fields."""
    errs = validate_spec(obj.spec)
    if obj.status is not None:
        errs = [*errs, *validate_status(obj.status)]
    return in_field_order(type(obj), errs)  # type: ignore[arg-type]  # every kind is a pydantic model


def status_only(validate_status: Callable[[Any], ErrorList]) -> Callable[[Any, Any], ErrorList]:
    """The check of a status subresource write: only the new status (everything else is kept)."""

    def check(new: Any, old: Any) -> ErrorList:
        return in_field_order(type(new), validate_status(new.status)) if new.status is not None else []

    return check
