"""Typed objects to and from the wire, keeping what a newer server sends.

The API types forbid unknown fields (the server reports them). A client must not: a newer server may send
fields this client's types do not know, and an update must send them back, or it would erase them. So
objects are decoded with pydantic's runtime `extra="allow"` (unknown fields land in each model's
`__pydantic_extra__`, at every level) and encoded with those extras merged back in where they came from.
Decoding stays in pydantic-core (no Python per field); the merge walks only the fields that hold models.

Lists are decoded with Python's cyclic garbage collector paused (`gc_paused`): a list of 10,000 objects
allocates about half a million containers, and the collections they trigger (which also scan every object
already held, an informer's whole cache) took two thirds of the decoding time. Decoding creates no cycles,
so nothing is left for the collector; it resumes right after.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import threading
import types
import typing
from collections.abc import Iterator
from typing import Any, TypeVar, Union, get_args, get_origin

import orjson
from pydantic import BaseModel, TypeAdapter

M = TypeVar("M", bound=BaseModel)


def decode(model: type[M], data: Any) -> M:
    """`data` (decoded JSON) as `model`, unknown fields kept."""
    return model.model_validate(data, extra="allow", by_alias=True, by_name=False)


def decode_json(model: type[M], body: bytes) -> M:
    return decode(model, orjson.loads(body))


@functools.cache
def _list_adapter(model: type[M]) -> TypeAdapter[list[M]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


PAUSE_GC_FROM = 256
"""Lists at least this long are decoded with the cyclic garbage collector paused."""

_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_resume = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (if it runs) for the block; nested and thread-safe: it resumes when the
    last pause ends, and only if it was running before the first."""
    global _gc_pauses, _gc_resume
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_resume = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_resume:
                gc.enable()


def decode_items(model: type[M], items: list[Any]) -> list[M]:
    """A list's items, in one pydantic-core call."""
    adapter = _list_adapter(model)
    if len(items) < PAUSE_GC_FROM:
        return adapter.validate_python(items, extra="allow", by_alias=True, by_name=False)
    with gc_paused():
        return adapter.validate_python(items, extra="allow", by_alias=True, by_name=False)


def encode(obj: BaseModel) -> dict[str, Any]:
    """The object as JSON-ready data (aliases, no nulls), with every unknown field it was decoded with."""
    data = obj.model_dump(by_alias=True, exclude_none=True, mode="json")
    _merge_extras(obj, data)
    return data


def encode_set(obj: BaseModel) -> dict[str, Any]:
    """Only the fields set on the object (constructed with, assigned, or decoded), with its unknown fields:
    what a server-side apply configuration made from a typed object should say, and no defaults."""
    data = obj.model_dump(by_alias=True, exclude_none=True, exclude_unset=True, mode="json")
    _merge_extras(obj, data)
    return data


def _mentions_model(annotation: Any) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, BaseModel)
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType or origin in (list, dict, tuple, typing.Annotated):
        return any(_mentions_model(a) for a in get_args(annotation))
    return False


@functools.cache
def _model_fields(cls: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, JSON name) of the fields of `cls` that can hold models."""
    return tuple((name, info.alias or name) for name, info in cls.model_fields.items()
                 if _mentions_model(info.annotation))


def _merge_extras(obj: BaseModel, data: dict[str, Any]) -> None:
    extra = obj.__pydantic_extra__
    if extra:
        for key, value in extra.items():
            if key not in data and value is not None:
                data[key] = value
    for name, key in _model_fields(type(obj)):
        value = getattr(obj, name, None)
        out = data.get(key)
        if isinstance(value, BaseModel):
            if isinstance(out, dict):
                _merge_extras(value, out)
        elif isinstance(value, list):
            if isinstance(out, list):
                for item, item_out in zip(value, out):
                    if isinstance(item, BaseModel) and isinstance(item_out, dict):
                        _merge_extras(item, item_out)
        elif isinstance(value, dict) and isinstance(out, dict):
            for k, item in value.items():
                item_out = out.get(k)
                if isinstance(item, BaseModel) and isinstance(item_out, dict):
                    _merge_extras(item, item_out)


def dumps(data: Any) -> bytes:
    return orjson.dumps(data)
