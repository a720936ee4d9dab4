"""The v2 document in gnostic's protobuf form (`openapi_v2.Document`), the form kubectl reads.

client-go fetches `/openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
and parses the body as protobuf only; kubectl uses it for client-side validation (when the server
does not take `fieldValidation`) and for `kubectl explain --output plaintext-openapiv2`. This is a
small encoder for the part of the message set our documents use (field numbers from gnostic's
`openapiv2/OpenAPIv2.proto`). Values of `Any` (defaults, enum values, vendor extensions) are
carried as their JSON text in `Any.yaml`, which is valid YAML and what kube-openapi parses.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import orjson

from kubellm.server.openapi.schemas import JSON

MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
"""What client-go asks for; kube-apiserver answers with Content-Type `MEDIA_TYPE_RESPONSE`."""
MEDIA_TYPE_RESPONSE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

_SCHEMA_KEYS = frozenset(
    {
        "$ref",
        "format",
        "title",
        "description",
        "default",
        "required",
        "enum",
        "additionalProperties",
        "type",
        "items",
        "allOf",
        "properties",
        "readOnly",
        "maximum",
        "minimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
    }
)
_DOUBLES = (("maximum", 7), ("minimum", 9))
_INTEGERS = (("maxLength", 11), ("minLength", 12), ("maxItems", 14), ("minItems", 15))
_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _message(field: int, payload: bytes) -> bytes:
    """A length-delimited field; written even when empty (presence matters for messages)."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _string(field: int, value: str | None) -> bytes:
    return _message(field, value.encode()) if value else b""


def _strings(field: int, values: Iterable[str]) -> bytes:
    return b"".join(_message(field, v.encode()) for v in values)


def _bool(field: int, value: bool, *, always: bool = False) -> bytes:
    return _varint(field << 3) + (b"\x01" if value else b"\x00") if value or always else b""


def _double(field: int, value: float) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<d", float(value))


def _int64(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value & 0xFFFFFFFFFFFFFFFF)


def _any(value: Any) -> bytes:
    return _message(2, orjson.dumps(value))  # Any.yaml


def _named_any(name: str, value: Any) -> bytes:
    return _string(1, name) + _message(2, _any(value))


def _extensions(field: int, node: JSON) -> bytes:
    return b"".join(_message(field, _named_any(k, node[k])) for k in sorted(node) if k.startswith("x-"))


def schema(node: JSON) -> bytes:
    unknown = {k for k in node if not k.startswith("x-")} - _SCHEMA_KEYS
    if unknown:
        raise ValueError(f"no protobuf encoding for schema keys {sorted(unknown)}")
    out = [
        _string(1, node.get("$ref")),
        _string(2, node.get("format")),
        _string(3, node.get("title")),
        _string(4, node.get("description")),
    ]
    if "default" in node:
        out.append(_message(5, _any(node["default"])))
    out.extend(_double(number, node[key]) for key, number in _DOUBLES if key in node)
    out.extend(_int64(number, node[key]) for key, number in _INTEGERS[:2] if key in node)
    out.append(_string(13, node.get("pattern")))
    out.extend(_int64(number, node[key]) for key, number in _INTEGERS[2:] if key in node)
    out.append(_strings(19, node.get("required", ())))
    out.extend(_message(20, _any(v)) for v in node.get("enum", ()))
    extra = node.get("additionalProperties")
    if isinstance(extra, bool):
        out.append(_message(21, _bool(2, extra, always=True)))
    elif isinstance(extra, dict):
        out.append(_message(21, _message(1, schema(extra))))
    if "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        out.append(_message(22, _strings(1, types)))
    if "items" in node:
        items = node["items"] if isinstance(node["items"], list) else [node["items"]]
        out.append(_message(23, b"".join(_message(1, schema(i)) for i in items)))
    out.extend(_message(24, schema(s)) for s in node.get("allOf", ()))
    if "properties" in node:
        props = node["properties"]
        out.append(_message(25, b"".join(_message(1, _named_schema(k, props[k])) for k in sorted(props))))
    out.append(_bool(27, bool(node.get("readOnly"))))
    out.append(_extensions(31, node))
    return b"".join(out)


def _named_schema(name: str, node: JSON) -> bytes:
    return _string(1, name) + _message(2, schema(node))


def _parameter(param: JSON) -> bytes:
    """A ParametersItem holding a Parameter (body, or a query or path parameter)."""
    if "$ref" in param:
        return _message(2, _string(1, param["$ref"]))  # JsonReference
    location = param["in"]
    if location == "body":
        body = (
            _string(1, param.get("description"))
            + _string(2, param["name"])
            + _string(3, location)
            + _bool(4, bool(param.get("required")))
            + _message(5, schema(param["schema"]))
        )
        return _message(1, _message(1, body))
    common = (
        _bool(1, bool(param.get("required")))
        + _string(2, location)
        + _string(3, param.get("description"))
        + _string(4, param["name"])
    )
    if location == "query":  # QueryParameterSubSchema: type 6, format 7, maxLength 15, uniqueItems 20, enum 21
        sub = common + _string(6, param.get("type")) + _string(7, param.get("format"))
        if "maxLength" in param:
            sub += _int64(15, param["maxLength"])
        sub += _bool(20, bool(param.get("uniqueItems")))
        sub += b"".join(_message(21, _any(v)) for v in param.get("enum", ()))
        sub += _extensions(23, param)
        return _message(1, _message(2, _message(3, sub)))
    if location == "path":  # PathParameterSubSchema: type 5, format 6, uniqueItems 19
        sub = common + _string(5, param.get("type")) + _string(6, param.get("format"))
        sub += _bool(19, bool(param.get("uniqueItems"))) + _extensions(22, param)
        return _message(1, _message(2, _message(4, sub)))
    raise ValueError(f"no protobuf encoding for {location} parameters")


def _responses(responses: JSON) -> bytes:
    out = []
    for code in sorted(responses):
        resp = responses[code]
        body = _string(1, resp.get("description"))
        if "schema" in resp:
            body += _message(2, _message(1, schema(resp["schema"])))  # SchemaItem.schema
        out.append(_message(1, _string(1, code) + _message(2, _message(1, body))))
    return b"".join(out)


def _operation(op: JSON) -> bytes:
    return b"".join(
        [
            _strings(1, op.get("tags", ())),
            _string(2, op.get("summary")),
            _string(3, op.get("description")),
            _string(5, op.get("operationId")),
            _strings(6, op.get("produces", ())),
            _strings(7, op.get("consumes", ())),
            b"".join(_message(8, _parameter(p)) for p in op.get("parameters", ())),
            _message(9, _responses(op["responses"])),
            _strings(10, op.get("schemes", ())),
            _bool(11, bool(op.get("deprecated"))),
            _extensions(13, op),
        ]
    )


def _path_item(item: JSON) -> bytes:
    out = [_message(number, _operation(item[method])) for method, number in _METHODS.items() if method in item]
    out.extend(_message(9, _parameter(p)) for p in item.get("parameters", ()))
    out.append(_extensions(10, item))
    return b"".join(out)


def _security_definitions(defs: JSON) -> bytes:
    out = []
    for name in sorted(defs):
        item = defs[name]
        if item.get("type") != "apiKey":
            raise ValueError(f"no protobuf encoding for {item.get('type')} security definitions")
        api_key = (
            _string(1, item["type"])
            + _string(2, item.get("name"))
            + _string(3, item.get("in"))
            + _string(4, item.get("description"))
        )
        out.append(_message(1, _string(1, name) + _message(2, _message(2, api_key))))
    return b"".join(out)


def _security_requirement(req: JSON) -> bytes:
    return b"".join(_message(1, _string(1, name) + _message(2, _strings(1, req[name]))) for name in sorted(req))


def encode_document(doc: JSON) -> bytes:
    """A Swagger 2.0 document (as `build_v2` makes it) as a serialized `openapi_v2.Document`."""
    info = doc.get("info", {})
    paths = doc.get("paths", {})
    definitions = doc.get("definitions", {})
    return b"".join(
        [
            _string(1, doc.get("swagger")),
            _message(
                2, _string(1, info.get("title")) + _string(2, info.get("version")) + _string(3, info.get("description"))
            ),
            _strings(5, doc.get("schemes", ())),
            _strings(6, doc.get("consumes", ())),
            _strings(7, doc.get("produces", ())),
            _message(
                8, b"".join(_message(2, _string(1, p) + _message(2, _path_item(paths[p]))) for p in sorted(paths))
            ),
            _message(9, b"".join(_message(1, _named_schema(n, definitions[n])) for n in sorted(definitions))),
            b"".join(_message(12, _security_requirement(r)) for r in doc.get("security", ())),
            _message(13, _security_definitions(doc.get("securityDefinitions", {}))),
            _extensions(16, doc),
        ]
    )
