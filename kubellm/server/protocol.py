"""HTTP/1.1 connections under aiohttp: read timeouts, an idle timeout and Status-shaped protocol errors.

aiohttp reads request headers and bodies with no deadline of its own, so a client trickling one header
byte a second, or a body, holds a connection (and a file descriptor) for as long as it likes. The
`BoundedRequestHandler` here times what Go's http.Server times for kube-apiserver:

- headers: from a connection's start, or from the first byte of a later request, to the end of its
  headers (`--read-header-timeout`, kube-apiserver's 32 s); past it the connection is closed;
- body: from the end of the headers to the end of the body (`--read-body-timeout`); past it a reader of
  the body gets `RequestBodyTimeout` (a 408 Status) and the connection is closed after the answer;
- idle: between requests on a keep-alive connection (`--idle-connection-timeout`, kube's 90 s), which is
  aiohttp's keep-alive timeout.

Requests aiohttp cannot parse (a header line over 8190 bytes, too many headers, a malformed request line)
are answered with a `kind: Status` body like every other error, never aiohttp's plain text, and without
echoing the client's bytes. The TLS handshake timeout and the connection cap are `listener.py`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import orjson
import structlog
from aiohttp import http_exceptions as hx
from aiohttp import web, web_protocol
from aiohttp.streams import StreamReader

from kubellm.apis import errors
from kubellm.server.limits import ServingLimits

log = structlog.get_logger("kubellm.server")

MAX_LINE = 8190
"""aiohttp's limit on the request line and on each header field, in bytes."""
MAX_HEADERS = 128
"""aiohttp's limit on the number of header fields."""


class RequestBodyTimeout(Exception):
    """The body of a request did not arrive within the read-body timeout."""


def body_timeout_error() -> errors.StatusError:
    return errors.StatusError(408, "Timeout", "the request body was not received in time")


def protocol_error(status: int, exc: BaseException | None) -> errors.StatusError:
    """The Status for a request aiohttp could not parse or serve; never quotes the client's bytes."""
    if isinstance(exc, hx.LineTooLong):
        return errors.StatusError(431, "RequestHeaderFieldsTooLarge", "the request line or a header field is too "
                                  f"long: each is limited to {MAX_LINE} bytes")
    if isinstance(exc, hx.BadHttpMessage) and "too many headers" in exc.message.lower():
        return errors.StatusError(431, "RequestHeaderFieldsTooLarge", "the request has too many header fields: "
                                  f"at most {MAX_HEADERS} are accepted")
    if isinstance(exc, hx.BadHttpMethod):
        return errors.bad_request("the request method is not a valid HTTP method")
    if isinstance(exc, hx.BadStatusLine):
        return errors.bad_request("the request line is malformed")
    if isinstance(exc, hx.InvalidHeader):
        return errors.bad_request("a request header field is malformed")
    if isinstance(exc, hx.InvalidURLError):
        return errors.bad_request("the request URL is malformed")
    if isinstance(exc, hx.HttpProcessingError) or 400 <= status < 500:
        return errors.bad_request("the request is not valid HTTP/1.1")
    if status == 504:
        return errors.timeout("request did not complete within requested timeout")
    if status == 500:
        return errors.internal_error("an unexpected error occurred")
    return errors.StatusError(status, HTTPStatus(status).phrase.replace(" ", ""), HTTPStatus(status).phrase)


class BoundedRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler with header, body and idle timeouts, and Status error bodies."""

    def __init__(self, manager: web.Server, *, loop: asyncio.AbstractEventLoop, limits: ServingLimits,
                 **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, keepalive_timeout=limits.idle_connection_timeout,
                         max_line_size=MAX_LINE, max_field_size=MAX_LINE, max_headers=MAX_HEADERS, **kwargs)
        self.limits = limits
        self.on_lost: Callable[[], None] | None = None
        """Called once when the connection is gone (the listener frees the connection's slot)."""
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None

    # --- connection life ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # A new connection has the header timeout for its first request (aiohttp's idle timer is for later ones).
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
            self._keepalive_handle = None
        self._start_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_timer()
        self._stop_body_timer()
        self._body = None
        try:
            super().connection_lost(exc)
        finally:
            lost, self.on_lost = self.on_lost, None
            if lost is not None:
                lost()

    def data_received(self, data: bytes) -> None:
        if data and self._header_timer is None and not self._reading_body():
            self._start_header_timer()  # the first byte of a new request
            if self._keepalive_handle is not None:  # no longer idle: the header timeout applies now
                self._keepalive_handle.cancel()
                self._keepalive_handle = None
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed and self._messages:  # a request's headers are complete
            self._stop_header_timer()
            payload = self._messages[-1][1]
            if not payload.is_eof():
                self._body = payload
                self._stop_body_timer()
                self._body_timer = self._loop.call_later(self.limits.read_body_timeout, self._body_timed_out)
        if self._body is not None and self._body.is_eof():
            self._stop_body_timer()
            self._body = None

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        # Answered: what is left of an unread body is drained by aiohttp for a bounded time, or refused.
        self._stop_body_timer()
        return await super().finish_response(request, resp, start_time)

    # --- timers -------------------------------------------------------------------------------------

    def _reading_body(self) -> bool:
        return self._body is not None and not self._body.is_eof()

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        self._header_timer = self._loop.call_later(self.limits.read_header_timeout, self._header_timed_out)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        log.info("closing a connection: request headers not received in time", peer=str(self.peername))
        self.force_close()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        body = self._body
        if body is not None and not body.is_eof():
            self._lingering_time = 0.0  # once answered, close rather than wait for the rest
            body.set_exception(RequestBodyTimeout())

    # --- errors before the application --------------------------------------------------------------

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        err = protocol_error(status, exc)
        if err.code >= 500:
            log.error("request failed in the HTTP layer", code=err.code, error=type(exc).__name__)
        else:
            log.info("malformed request", code=err.code, reason=err.reason, peer=str(self.peername))
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already started; closing the connection")
        resp = web.Response(status=err.code, body=orjson.dumps(err.status), content_type="application/json")
        resp.force_close()
        return resp


class BoundedServer(web.Server):
    """aiohttp's low-level server, making BoundedRequestHandlers."""

    def __init__(self, base: web.Server, limits: ServingLimits) -> None:
        super().__init__(base.request_handler, request_factory=base.request_factory,
                         handler_cancellation=base.handler_cancellation, loop=base._loop, **base._kwargs)
        self.limits = limits

    def __call__(self) -> BoundedRequestHandler:
        return BoundedRequestHandler(self, loop=self._loop, limits=self.limits, **self._kwargs)


class BoundedAppRunner(web.AppRunner):
    """An AppRunner whose connections are bounded (`BoundedRequestHandler`)."""

    def __init__(self, app: web.Application, limits: ServingLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        return BoundedServer(await super()._make_server(), self.limits)
