"""Serving limits: how many requests may be in flight, and how long a connection or request may take.

As kube-apiserver's `WithMaxInFlightLimit`: read-only (get, list) and mutating requests each have a budget
(`--max-requests-inflight`, `--max-mutating-requests-inflight`); a request beyond it is refused at once
with 429 TooManyRequests and `Retry-After: 1`, nothing is queued. Members of `system:masters` are exempt,
so an administrator can always get in. Long-running requests (watches) never use those budgets; they have
their own bound (`--max-long-running-requests`), for every user, since each holds a connection and an event
stream for up to half an hour. 0 disables a bound, as in kube-apiserver. Current use is the
`apiserver_current_inflight_requests` gauge (`readOnly`, `mutating`, `longRunning`).

The timeouts are enforced elsewhere: the request deadline by the `filters` middleware, the connection
timeouts and the connection cap by `protocol.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from kubellm.apis import errors
from kubellm.server.metrics import INFLIGHT
from kubellm.server.requestinfo import RequestInfo
from kubellm.service.identity import SYSTEM_MASTERS, UserInfo

READ_ONLY = "readOnly"
MUTATING = "mutating"
LONG_RUNNING = "longRunning"
READ_ONLY_VERBS = frozenset({"get", "list", "watch"})
RETRY_AFTER = 1


@dataclass(frozen=True)
class ServingLimits:
    """Every serving limit, in seconds or counts; kube-apiserver's defaults where it has the limit."""

    max_requests_inflight: int = 400
    max_mutating_requests_inflight: int = 200
    max_long_running_requests: int = 1000
    max_open_connections: int = 4096
    request_timeout: float = 60.0
    tls_handshake_timeout: float = 10.0
    read_header_timeout: float = 32.0
    read_body_timeout: float = 60.0
    idle_connection_timeout: float = 90.0


def is_long_running(info: RequestInfo) -> bool:
    """Requests that stream for as long as the client wants (kube's `LongRunningFunc`): watches."""
    return info.verb == "watch"


def request_kind(method: str, info: RequestInfo) -> str:
    if is_long_running(info):
        return LONG_RUNNING
    return READ_ONLY if info.verb in READ_ONLY_VERBS or method == "HEAD" else MUTATING


def too_many_requests() -> errors.StatusError:
    return errors.too_many_requests("Too many requests, please try again later.", RETRY_AFTER)


class Inflight:
    """Counts requests in flight per kind and refuses those beyond the kind's bound."""

    def __init__(self, limits: ServingLimits) -> None:
        self.bounds = {READ_ONLY: limits.max_requests_inflight, MUTATING: limits.max_mutating_requests_inflight,
                       LONG_RUNNING: limits.max_long_running_requests}
        self.current = dict.fromkeys(self.bounds, 0)
        for kind in self.bounds:
            INFLIGHT.labels(kind).set(0)

    def try_acquire(self, kind: str) -> bool:
        bound = self.bounds[kind]
        if bound and self.current[kind] >= bound:
            return False
        self.current[kind] += 1
        INFLIGHT.labels(kind).set(self.current[kind])
        return True

    def release(self, kind: str) -> None:
        self.current[kind] -= 1
        INFLIGHT.labels(kind).set(self.current[kind])

    @staticmethod
    def exempt(kind: str, user: UserInfo | None) -> bool:
        """system:masters skip the read-only and mutating budgets (as in kube-apiserver), never the watch bound."""
        return kind != LONG_RUNNING and user is not None and user.in_group(SYSTEM_MASTERS)

    def middleware(self) -> Middleware:
        """After authentication (the user is known), before authorization, as in kube-apiserver's chain."""

        @web.middleware
        async def limit_inflight(request: web.Request,
                                 handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            kind = request_kind(request.method, request["info"])
            if self.exempt(kind, request.get("user")):
                return await handler(request)
            if not self.try_acquire(kind):
                raise too_many_requests()
            try:
                return await handler(request)
            finally:
                self.release(kind)

        return limit_inflight
