"""A thin client for etcd's v3 JSON gateway: every endpoint of `--etcd-servers`, a deadline on every call.

Requests are posted with aiohttp to pre-parsed URLs with orjson bodies: etcd3-py's request modelling is
7-18x slower, its raw `call_rpc` path re-joins and re-parses the URL on every call (about a fifth of a
create's client CPU, bench/RESULTS.md), and its client's constructor makes a blocking HTTP call to the
first endpoint (0.3 s timeout) that breaks start-up when that endpoint is slow or down. So nothing here
uses it: the session (TLS client certificate, CA, host-name check, pool) is set up directly, and no
network call happens before the first request.

Endpoints: a call goes to the endpoint that last answered; one that cannot be connected to within
`dial_timeout` is skipped for the next, for any call (nothing was sent). A read that fails after it was
sent is retried on the next endpoint too; a write is not (it may have been applied), it fails with
Unavailable and the next call starts on the next endpoint. Deadlines: every call runs under
`request_timeout` (`list_timeout` for ranges over a prefix), failover included; past it the call raises
`errors.Timeout` (504) and the next call starts on the next endpoint. Streaming watch is in `watcher.py`.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from typing import Any

import aiohttp
import orjson
import structlog
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

NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
"""Failures to connect (refused, TLS, connect timeout): the request never reached etcd, any call may go elsewhere."""
READ_ONLY = frozenset({"/kv/range"})


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


def client_ssl_context(config: EtcdConfig) -> ssl.SSLContext | None:
    """TLS for https endpoints: etcd's certificate verified against `ca_file` (the system's CAs without one),
    its host name included, TLS 1.2 or newer, KubeLLM's client certificate when given."""
    if not any(e.startswith("https://") for e in config.endpoints) and not config.cert_file:
        return None
    ctx = ssl.create_default_context(cafile=config.ca_file or None)
    ctx.check_hostname = True
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.cert_file and config.key_file:
        ctx.load_cert_chain(config.cert_file, config.key_file)
    return ctx


class GatewayClient:
    def __init__(self, config: EtcdConfig) -> None:
        if not config.endpoints:
            raise ValueError("no etcd endpoints")
        self.config = config
        self.endpoints = tuple(URL(e.rstrip("/")) for e in config.endpoints)
        self.ssl_context = client_ssl_context(config)
        self.active = 0
        """The endpoint that last answered: the next call starts there."""
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self._urls: dict[tuple[int, str], URL] = {}
        self._observers: dict[tuple[str, str], Any] = {}
        self._headers = {"Content-Type": "application/json"}  # the gateway accepts JSON only

    def _new_session(self, limit: int) -> aiohttp.ClientSession:
        # No network I/O here: the session connects on its first request.
        connector = aiohttp.TCPConnector(limit=limit, ssl=self.ssl_context if self.ssl_context is not None else True)
        return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=self.config.dial_timeout))

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._new_session(self.config.pool_size)
        return self._session

    @property
    def watch_session(self) -> aiohttp.ClientSession:
        """Watches hold their connection for their whole life: they get their own, unbounded pool."""
        if self._watch_session is None:
            self._watch_session = self._new_session(0)
        return self._watch_session

    def url(self, index: int, method: str) -> URL:
        url = self._urls.get((index, method))
        if url is None:
            url = self._urls[(index, method)] = URL(f"{self.endpoints[index]}/v3{method}")
        return url

    def order(self) -> list[int]:
        """Endpoint indexes to try: the active one first, then the others in their configured order."""
        n = len(self.endpoints)
        return [(self.active + i) % n for i in range(n)]

    def skip(self, index: int) -> None:
        """The endpoint at `index` failed: the next call starts on the following one."""
        if self.active == index and len(self.endpoints) > 1:
            self.active = (index + 1) % len(self.endpoints)
            log.warning("etcd endpoint failed; using the next one", failed=str(self.endpoints[index]),
                        next=str(self.endpoints[self.active]))

    def deadline(self, op: str) -> float:
        return self.config.list_timeout if op in ("list", "count") else self.config.request_timeout

    async def call(self, method: str, payload: dict[str, Any], *, op: str = "", kind: str = "",
                   timeout: float | None = None) -> dict[str, Any]:
        body = orjson.dumps(payload)
        limit = self.deadline(op) if timeout is None else timeout
        start = time.perf_counter()
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                return await self._post(method, body)
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            self.skip(self.active)
            raise errors.Timeout(message=f"etcd did not answer within {limit:g}s") from exc
        finally:
            if op:
                observer = self._observers.get((op, kind))
                if observer is None:
                    observer = self._observers[(op, kind)] = ETCD_REQUEST_DURATION.labels(op, kind)
                observer.observe(time.perf_counter() - start)

    async def _post(self, method: str, body: bytes) -> dict[str, Any]:
        failure: errors.StorageError | None = None
        for index in self.order():
            try:
                async with self.session.post(self.url(index, method), data=body, headers=self._headers) as resp:
                    data = await resp.read()
                    status = resp.status
            except NOT_SENT as exc:
                failure = errors.Unavailable(message=f"etcd unavailable: {type(exc).__name__}")
                self.skip(index)
                continue
            except (aiohttp.ClientError, OSError) as exc:
                failure = errors.Unavailable(message=f"etcd unavailable: {type(exc).__name__}")
                self.skip(index)
                if method in READ_ONLY:
                    continue
                raise failure from exc
            try:
                decoded: dict[str, Any] = orjson.loads(data) if data else {}
            except orjson.JSONDecodeError as exc:
                raise errors.Unavailable(message=f"etcd returned an unreadable response ({status})") from exc
            if status == 200:
                self.active = index
                return decoded
            failure = translate(decoded)
            if type(failure) is errors.Unavailable and method in READ_ONLY:
                self.skip(index)  # e.g. a member without a leader: another may answer
                continue
            raise failure
        assert failure is not None
        raise failure

    async def open_watch(self) -> tuple[aiohttp.ClientWebSocketResponse, int]:
        """A websocket on the gateway's `/v3/watch` (a bidirectional stream: create and progress requests go
        up, responses come down) on the first endpoint that accepts it, within `request_timeout`; and which
        endpoint that is. Closing it waits at most a second for the gateway's close frame."""
        limit = self.config.request_timeout
        deadline = asyncio.timeout(limit)
        failure: errors.StorageError | None = None
        try:
            async with deadline:
                for index in self.order():
                    try:
                        ws = await self.watch_session.ws_connect(
                            self.url(index, "/watch"), max_msg_size=0, autoping=True,
                            timeout=aiohttp.ClientWSTimeout(ws_close=min(1.0, limit)))
                    except (aiohttp.ClientError, OSError) as exc:
                        failure = errors.Unavailable(message=f"etcd unavailable: {type(exc).__name__}")
                        self.skip(index)
                        continue
                    self.active = index
                    return ws, index
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            self.skip(self.active)
            raise errors.Timeout(message=f"etcd did not answer within {limit:g}s") from exc
        assert failure is not None
        raise failure

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
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
