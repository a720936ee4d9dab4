"""A thin client for etcd's v3 JSON gateway.

etcd3-py's AioClient sets up the HTTP session (TLS client certificates, CA, pool size). Requests are
posted on that session to pre-parsed URLs with orjson bodies: etcd3-py's request modelling is 7-18x
slower, and even its raw `call_rpc` path re-joins and re-parses the URL on every call, which cost
about a fifth of a create's client CPU (bench/RESULTS.md). Streaming watch is in `watcher.py`.
"""

from __future__ import annotations

import base64
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import structlog
from etcd3 import AioClient
from prometheus_client import Histogram
from yarl import URL

from kubellm.registry.storage import errors
from kubellm.registry.storage.etcd.config import EtcdConfig
from kubellm.registry.storage.value import PrefixTransformers

log = structlog.get_logger(__name__)

ETCD_REQUEST_DURATION = Histogram(
    "etcd_request_duration_seconds",
    "Etcd request latency in seconds for each operation and object type.",
    ["operation", "type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 10, 15, 30),
)


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def unb64(data: str) -> bytes:
    return base64.b64decode(data)


def prefix_end(prefix: str) -> str:
    """The smallest key greater than every key starting with `prefix` (prefix ends in '/')."""
    raw = bytearray(prefix.encode())
    for i in range(len(raw) - 1, -1, -1):
        if raw[i] < 0xFF:
            raw[i] += 1
            return bytes(raw[: i + 1]).decode("latin-1")
    return "\x00"


def b64_end(prefix: str) -> str:
    raw = bytearray(prefix.encode())
    for i in range(len(raw) - 1, -1, -1):
        if raw[i] < 0xFF:
            raw[i] += 1
            return b64(bytes(raw[: i + 1]))
    return b64(b"\x00")


class GatewayClient:
    def __init__(self, config: EtcdConfig) -> None:
        self.config = config
        url = urlsplit(config.endpoints[0])
        cert = (config.cert_file, config.key_file) if config.cert_file and config.key_file else ()
        self._aio = AioClient(
            host=url.hostname or "127.0.0.1",
            port=url.port or 2379,
            protocol=url.scheme or "http",
            cert=cert,
            verify=config.ca_file if config.ca_file else None,
            timeout=config.request_timeout,
            pool_size=config.pool_size,
            server_version="3.4.0",
            cluster_version="3.4.0",
        )
        ctx: ssl.SSLContext | None = self._aio.ssl_context
        if ctx is not None and ctx.verify_mode == ssl.CERT_REQUIRED:
            # etcd3-py leaves host names unchecked: the endpoint's name must be in etcd's certificate.
            ctx.check_hostname = True
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.session: aiohttp.ClientSession = self._aio.session
        self.base = f"{url.scheme or 'http'}://{url.netloc}/v3"
        self._watch_session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}
        self._observers: dict[tuple[str, str], Any] = {}
        self._headers = {"Content-Type": "application/json"}  # the gateway accepts JSON only

    @property
    def watch_session(self) -> aiohttp.ClientSession:
        """Watches hold their connection for their whole life: they get their own, unbounded pool."""
        if self._watch_session is None:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._aio.ssl_context or False)
            self._watch_session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
        return self._watch_session

    async def call(self, method: str, payload: dict[str, Any], *, op: str = "", kind: str = "") -> dict[str, Any]:
        body = orjson.dumps(payload)
        url = self._urls.get(method)
        if url is None:
            url = self._urls[method] = URL(self.base + method)
        start = time.perf_counter()
        try:
            async with self.session.post(url, data=body, headers=self._headers) as resp:
                data = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise errors.Unavailable(message=f"etcd unavailable: {type(exc).__name__}") from exc
        finally:
            if op:
                observer = self._observers.get((op, kind))
                if observer is None:
                    observer = self._observers[(op, kind)] = ETCD_REQUEST_DURATION.labels(op, kind)
                observer.observe(time.perf_counter() - start)
        try:
            decoded: dict[str, Any] = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError as exc:
            raise errors.Unavailable(message=f"etcd returned an unreadable response ({status})") from exc
        if status != 200:
            raise translate(decoded)
        return decoded

    async def close(self) -> None:
        await self.session.close()
        if self._watch_session is not None:
            await self._watch_session.close()


def translate(body: dict[str, Any]) -> errors.StorageError:
    """A gateway error as a storage error with a message of our own: the gateway's text (Go decoding errors that
    quote request values, etcd internals) is logged, never passed on to reach a client."""
    message = str(body.get("message") or body.get("error") or "unknown etcd error")
    if "required revision has been compacted" in message:
        return errors.Expired(message="The resourceVersion for the provided list is too old.")
    if "required revision is a future revision" in message:
        return errors.TooLargeResourceVersion(message="Too large resource version")
    if "request is too large" in message or "larger than max" in message:
        return errors.RequestTooLarge(message="the request is too large for storage")
    log.warning("etcd refused a request", etcd_message=message[:1024], code=body.get("code"))
    return errors.Unavailable(message="etcd could not serve the request")


def read_value(kv: dict[str, Any], values: PrefixTransformers) -> bytes:
    """A key-value's stored bytes, decrypted when its resource is encrypted at rest."""
    raw = unb64(kv.get("value", ""))
    if not values.rules:
        return raw
    return values.from_storage(unb64(kv["key"]).decode(), raw)
