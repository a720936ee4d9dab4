"""Content negotiation: which representation a client accepts, and decoding request bodies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from kubellm.apis import errors
from kubellm.server import bodies

JSON = "application/json"
YAML = "application/yaml"
TABLE = "table"
DISCOVERY_V2 = "discovery-v2"
DISCOVERY_V2_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
MAX_BODY = 3 * 1024 * 1024
YAML_IN_THREAD = 64 * 1024
"""YAML bodies larger than this are decoded in a worker thread: YAML decoding runs in Python (tens of
milliseconds per 10 KiB), and the event loop must keep serving other requests meanwhile."""

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
YAML_TYPES = (YAML, "application/x-yaml", "text/yaml", APPLY_PATCH)


def load_yaml(raw: bytes | str) -> Any:
    """Safe YAML with timestamps kept as strings, nesting and alias expansion bounded (`bodies.py`)."""
    return bodies.loads_yaml(raw)


@dataclass(frozen=True)
class MediaRange:
    type: str
    params: dict[str, str]
    q: float


def parse_accept(header: str | None) -> list[MediaRange]:
    ranges: list[MediaRange] = []
    for part in (header or "*/*").split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        params: dict[str, str] = {}
        q = 1.0
        for p in pieces[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                if k.strip() == "q":
                    try:
                        q = float(v)
                    except ValueError:
                        q = 0.0
                else:
                    params[k.strip()] = v.strip()
        ranges.append(MediaRange(pieces[0].lower(), params, q))
    return sorted(ranges, key=lambda r: -r.q)


@dataclass(frozen=True)
class Output:
    kind: str  # JSON, YAML, TABLE or DISCOVERY_V2
    content_type: str
    include_object: str = "Metadata"


def negotiate(header: str | None, *, table_ok: bool = False, discovery_ok: bool = False) -> Output:
    for r in parse_accept(header):
        if r.q <= 0:
            continue
        is_json = r.type in ("application/json", "application/*", "*/*")
        if r.params.get("as") == "Table" and r.params.get("g") == "meta.k8s.io":
            if table_ok and is_json and r.params.get("v") in ("v1", "v1beta1"):
                v = r.params["v"]
                return Output(TABLE, f"application/json;as=Table;v={v};g=meta.k8s.io")
            continue
        if r.params.get("as") == "APIGroupDiscoveryList":
            if discovery_ok and is_json and r.params.get("v") == "v2" and r.params.get("g") == "apidiscovery.k8s.io":
                return Output(DISCOVERY_V2, DISCOVERY_V2_TYPE)
            continue
        if r.params.get("as"):
            continue
        if is_json:
            return Output(JSON, JSON)
        if r.type in (YAML, "application/x-yaml", "text/yaml"):
            return Output(YAML, YAML)
    raise errors.StatusError(406, "NotAcceptable",
                             "only the following media types are accepted: application/json, application/yaml")


def encode(obj: Any, output: Output, *, pretty: bool = False) -> bytes:
    """The response body; `pretty` (the `pretty=true` parameter) indents JSON, as kube-apiserver does."""
    if output.kind == YAML:
        return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True).encode()
    if pretty:
        return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    return orjson.dumps(obj)


def media_type(content_type: str | None) -> str:
    return (content_type or JSON).split(";", 1)[0].strip().lower()


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """Decode a JSON or YAML request body; malformed, too deeply nested or (YAML) alias-expanding input is 400
    BadRequest."""
    mt = media_type(content_type)
    if not raw.strip():
        raise errors.bad_request("the request body is empty")
    if mt in (JSON, MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, "*/*", ""):
        try:
            return bodies.loads_json(raw)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"json parse error: {exc}") from None
    if mt in YAML_TYPES:
        try:
            return load_yaml(raw)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"yaml parse error: {str(exc).splitlines()[0]}") from None
    raise errors.unsupported_media_type(mt)


async def decode_body_async(raw: bytes, content_type: str | None) -> Any:
    """`decode_body`, with a large YAML body decoded in a worker thread."""
    if len(raw) > YAML_IN_THREAD and media_type(content_type) in YAML_TYPES:
        return await asyncio.to_thread(decode_body, raw, content_type)
    return decode_body(raw, content_type)
