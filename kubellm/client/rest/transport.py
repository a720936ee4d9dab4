"""The asyncio HTTP transport: one aiohttp session (one keep-alive connection pool) per client.

Every call has a deadline (`Config.timeout` unless the caller gives one) that covers the rate limiter, the
connection, the answer and the retries. A 429 answer with `Retry-After` is tried again after that delay
(any verb: the server did nothing), as is a 5xx answer with `Retry-After` to a read, up to
`Config.max_retries` times and never past the deadline; a read whose kept-alive connection turned out to
be closed is sent again once. The server's `Warning` headers go to `Config.warning_handler`.

Streams (watches) have a connect deadline and a read deadline instead: a stream silent for longer than
`Config.watch_read_timeout` is treated as dropped.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from kubellm.client import errors
from kubellm.client.config import Config

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_RETRY_AFTER = 60.0
_WARNING = re.compile(r'\s*\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')

Query = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return min(max(float(raw.strip()), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None


def _unsent(exc: BaseException) -> bool:
    """The request never left: aiohttp could not write it to a connection that was already closed."""
    return isinstance(exc, aiohttp.ClientOSError) and "Can not write request" in str(exc)


class RateLimiter:
    """A token bucket (client-go's `flowcontrol.NewTokenBucketRateLimiter`): `qps` per second, bursts of
    `burst`. Callers reserve a token and wait their turn, in order."""

    def __init__(self, qps: float, burst: int) -> None:
        self.rate = qps
        self.capacity = float(max(burst, 1))
        self.tokens = self.capacity
        self.last = time.monotonic()

    def reserve(self) -> float:
        """Take a token; how long to wait before using it."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    async def wait(self, deadline: float) -> None:
        delay = self.reserve()
        if delay <= 0:
            return
        if time.monotonic() + delay > deadline:
            self.tokens += 1.0  # give the token back: this call will not use it
            raise errors.ClientTimeout("the client's rate limit would exceed the call's deadline")
        await asyncio.sleep(delay)


class Stream:
    """An open streaming answer (a watch): `lines()` yields each non-empty line; close it when done."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def lines(self) -> AsyncIterator[bytes]:
        parts: list[bytes] = []
        try:
            async for chunk in self.response.content.iter_any():
                if b"\n" not in chunk:
                    parts.append(chunk)
                    continue
                if parts:
                    parts.append(chunk)
                    chunk = b"".join(parts)
                    parts = []
                lines = chunk.split(b"\n")
                last = lines.pop()
                for line in lines:
                    if line and not line.isspace():
                        yield line
                if last:
                    parts.append(last)
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            raise errors.TransportError(f"the stream was cut: {exc!r}") from exc
        if parts and b"".join(parts).strip():
            yield b"".join(parts)

    def close(self) -> None:
        self.response.close()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()


class Transport:
    """HTTP to one API server for one client: its session, TLS, credentials, rate limit and retries."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.base = URL(config.host.rstrip("/"))
        if self.base.scheme not in ("http", "https") or not self.base.host:
            raise errors.ClientError(f"the host {config.host!r} is not an http(s) URL")
        self._ssl: Any = config.ssl_context() or False
        self.credentials = config.credentials()
        self.limiter = RateLimiter(config.qps, config.burst) if config.qps > 0 else None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._headers = {"User-Agent": config.user_agent, "Accept": JSON, **dict(config.headers)}

    # --- session -----------------------------------------------------------------------------------------------

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(limit=self.config.max_connections, ssl=self._ssl,
                                             keepalive_timeout=30.0)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers,
                                                  auto_decompress=True, trust_env=False)
            self._loop = loop
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()

    def url(self, path: str) -> URL:
        return self.base.with_path(self.base.path.rstrip("/") + path, encoded=False)

    async def _auth_headers(self) -> dict[str, str] | None:
        creds = self.credentials
        if creds.due():
            await asyncio.to_thread(creds.refresh)
        value = creds.value
        return {"Authorization": value} if value else None

    def _warnings(self, headers: CIMultiDictProxy[str]) -> None:
        handler = self.config.warning_handler
        if handler is None:
            return
        for raw in headers.getall("Warning", []):
            m = _WARNING.match(raw)
            handler(m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m else raw)

    # --- requests --------------------------------------------------------------------------------------------

    async def request(self, method: str, path: str, *, query: Query = (), body: bytes | None = None,
                      content_type: str = JSON, accept: str | None = None, timeout: float | None = None,
                      retry: bool = True) -> Response:
        """One API call; a failure answer raises its typed `APIError`, no answer `TransportError` or
        `ClientTimeout`."""
        loop_time = time.monotonic
        deadline = loop_time() + (timeout if timeout is not None else self.config.timeout)
        session = self.session()
        url = self.url(path)
        headers = {"Content-Type": content_type} if body is not None else {}
        if accept:
            headers["Accept"] = accept
        attempt = 0
        reconnects = 0
        while True:
            if self.limiter is not None:
                await self.limiter.wait(deadline)
            auth = await self._auth_headers()
            if auth:
                headers.update(auth)
            remaining = deadline - loop_time()
            if remaining <= 0:
                raise errors.ClientTimeout(f"{method} {path}: the deadline passed")
            try:
                async with session.request(
                        method, url, params=list(query) or None, data=body, headers=headers, proxy=self.config.proxy,
                        server_hostname=self.config.tls_server_name,
                        timeout=aiohttp.ClientTimeout(total=remaining,
                                                      sock_connect=min(self.config.connect_timeout, remaining)),
                ) as resp:
                    data = await resp.read()
                    status, resp_headers = resp.status, resp.headers
            except TimeoutError as exc:
                raise errors.ClientTimeout(f"{method} {path}: no answer within the deadline") from exc
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # a kept-alive connection the server had closed: a read is safe to send again, and so is any
                # request that could not be written at all
                if (method in IDEMPOTENT or _unsent(exc)) and reconnects < 2 and loop_time() < deadline:
                    reconnects += 1
                    await asyncio.sleep(0.05 * reconnects)
                    continue
                raise errors.TransportError(f"{method} {path}: {exc}") from exc
            except aiohttp.ClientError as exc:
                raise errors.TransportError(f"{method} {path}: {exc}") from exc
            self._warnings(resp_headers)
            if status < 400:
                return Response(status, resp_headers, data)
            retry_after = _retry_after(resp_headers)
            if (retry and retry_after is not None and attempt < self.config.max_retries
                    and (status == 429 or (status >= 500 and method in IDEMPOTENT))
                    and loop_time() + retry_after < deadline):
                attempt += 1
                await asyncio.sleep(retry_after)
                continue
            raise errors.from_response(status, data, retry_after)

    async def stream(self, path: str, *, query: Query = (), read_timeout: float | None = None) -> Stream:
        """Open a streaming GET (a watch). Failure answers raise as `request` does (no retries: the caller
        owns the retry policy)."""
        session = self.session()
        if self.limiter is not None:
            await self.limiter.wait(time.monotonic() + self.config.timeout)
        headers = await self._auth_headers() or {}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout,
                                        sock_read=read_timeout or self.config.watch_read_timeout)
        try:
            resp = await asyncio.wait_for(
                session.get(self.url(path), params=list(query) or None, headers=headers, proxy=self.config.proxy,
                            server_hostname=self.config.tls_server_name, timeout=timeout),
                self.config.connect_timeout + self.config.timeout)
        except TimeoutError as exc:
            raise errors.ClientTimeout(f"GET {path}: no answer within the deadline") from exc
        except aiohttp.ClientError as exc:
            raise errors.TransportError(f"GET {path}: {exc}") from exc
        self._warnings(resp.headers)
        if resp.status >= 400:
            try:
                data = await resp.read()
            except aiohttp.ClientError:
                data = b""
            finally:
                resp.close()
            raise errors.from_response(resp.status, data, _retry_after(resp.headers))
        return Stream(resp)
