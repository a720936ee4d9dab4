"""The aiohttp application: routing, the error and metrics filters, discovery, OpenAPI, health, version."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubellm.apis import errors
from kubellm.registry.rest import Resource, Served
from kubellm.server import discovery, negotiation, params, protobuf, reviews
from kubellm.server import requestinfo as ri
from kubellm.server.admission import Admission, NamespaceSource
from kubellm.server.audit import AuditLog
from kubellm.server.authentication import Authentication
from kubellm.server.authorization import Authorization
from kubellm.server.console import Console
from kubellm.server.handlers import STREAM_STATUS, ResourceHandler, method_not_allowed, not_found_path, respond
from kubellm.server.health import Health
from kubellm.server.impersonation import Impersonation
from kubellm.server.limits import Inflight, ServingLimits, is_long_running
from kubellm.server.login import Login, LoginEndpoints
from kubellm.server.metrics import (
    ABORTS,
    DURATION,
    REQUESTS,
    ServedResources,
    code_label,
    exposition_registry,
    scope_label,
    verb_label,
)
from kubellm.server.openapi_handler import OpenAPIHandler
from kubellm.server.protocol import RequestBodyTimeout, body_timeout_error

log = structlog.get_logger("kubellm.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_INFO = web.AppKey("request_info", dict)


def error_response(request: web.Request, err: errors.StatusError) -> web.Response:
    try:
        output = negotiation.negotiate(request.headers.get("Accept"))
    except errors.StatusError:
        output = negotiation.Output(negotiation.JSON, negotiation.JSON)
    resp = respond(request, err.status, err.code, output=output)
    retry = (err.details or {}).get("retryAfterSeconds")
    if retry:
        resp.headers["Retry-After"] = str(retry)
    return resp


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class Filters:
    """The outermost filter, for every request: RequestInfo, the request deadline, errors as Status, metrics, logs.

    Metrics take label values from the served resources and fixed sets only (`metrics.py`). A request cancelled
    because its client went away is counted in `apiserver_request_aborts_total`, not as a 5xx; a watch whose
    client goes away after the stream started is counted with the status it was sent.
    """

    def __init__(self, served: ServedResources, limits: ServingLimits) -> None:
        self.served = served
        self.limits = limits
        self.long_running: set[asyncio.Task[Any]] = set()
        """The tasks serving watches (and other long-running requests) now: ended when the server shuts down."""

    async def end_long_running(self, _app: web.Application) -> None:
        """On shutdown (once the listeners are closed): end every watch, as kube-apiserver does, so its clients
        re-watch (from a server that is up) instead of holding this one for the whole shutdown timeout."""
        for task in list(self.long_running):
            task.cancel()

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        info = ri.parse(request.method, request.path, request.query)
        request["info"] = info
        code = 500
        aborted = False
        deadline: asyncio.Timeout | None = None
        try:
            if is_long_running(info):
                task = asyncio.current_task()
                assert task is not None
                self.long_running.add(task)
                try:
                    resp = await handler(request)
                finally:
                    self.long_running.discard(task)
            else:
                deadline = asyncio.timeout(params.request_deadline(request.query, self.limits.request_timeout))
                async with deadline:
                    resp = await handler(request)
            code = resp.status
            return resp
        except errors.StatusError as err:
            code = err.code
            return error_response(request, err)
        except TimeoutError:
            if deadline is None or not deadline.expired():
                log.exception("request failed", method=request.method, path=request.path)
                return error_response(request, errors.internal_error("an unexpected error occurred"))
            code = 504
            return error_response(request, errors.StatusError(
                504, "Timeout", "Timeout: request did not complete within requested timeout - context deadline "
                                "exceeded"))
        except RequestBodyTimeout:
            code = 408
            return error_response(request, body_timeout_error())
        except web.HTTPRequestEntityTooLarge:
            code = 413
            return error_response(request, errors.request_entity_too_large(
                f"limit is {negotiation.MAX_BODY}"))
        except web.HTTPRedirection as exc:
            code = exc.status
            raise
        except web.HTTPException as exc:
            code = exc.status
            if exc.status == 404:
                return error_response(request, not_found_path())
            if exc.status == 405:
                return error_response(request, method_not_allowed(request.method))
            return error_response(request, errors.StatusError(exc.status, exc.reason, exc.text or exc.reason))
        except asyncio.CancelledError:  # the client went away (aiohttp cancels its handler), or a shutdown
            code = request.get(STREAM_STATUS, code)
            aborted = STREAM_STATUS not in request
            raise
        except Exception as exc:
            if isinstance(exc, ConnectionError) and client_gone(request):  # e.g. reading the body of a closed one
                code = request.get(STREAM_STATUS, code)
                aborted = STREAM_STATUS not in request
                return error_response(request, errors.bad_request("the client closed the connection"))
            log.exception("request failed", method=request.method, path=request.path)
            return error_response(request, errors.internal_error("an unexpected error occurred"))
        finally:
            self.record(request, info, code, aborted, time.perf_counter() - start)

    def record(self, request: web.Request, info: ri.RequestInfo, code: int, aborted: bool, elapsed: float) -> None:
        if info.is_resource_request:
            group, version, resource, subresource = self.served.labels(info)
            verb = verb_label(request.method, info, request.headers.get("Content-Type", ""))
            scope = scope_label(info)
            if aborted:
                ABORTS.labels(verb, group, version, resource, subresource, scope).inc()
            else:
                dry = "All" if "dryRun" in request.query else ""
                labels = (verb, dry, group, version, resource, subresource, scope, "apiserver")
                REQUESTS.labels(*labels, code_label(code)).inc()
                if info.verb != "watch":
                    DURATION.labels(*labels).observe(elapsed)
        log.info("request", verb=info.verb, method=request.method, uri=request.path_qs,
                 code="aborted" if aborted else code, latency_ms=round(elapsed * 1000, 2),
                 user_agent=request.headers.get("User-Agent", ""), remote=request.remote)


def served_resources(resources: list[Served]) -> ServedResources:
    """Every resource this server serves, for metric labels: the registry's and the review endpoints."""
    entries: list[tuple[str, str, str, list[str]]] = [
        (r.group, r.version, r.info.plural, [sub.name for sub in r.subresources]) for r in resources]
    entries += [(group, version, resource, []) for group, resource in reviews.REVIEWS for version in reviews.VERSIONS]
    entries += [(group, "v1", resource, []) for group, resource in reviews.DELEGATION]
    return ServedResources.of(entries)


class APIServerApp:
    def __init__(self, resources: list[Resource], health: Health, version: dict[str, str], server_address: str,
                 authentication: Authentication, authorization: Authorization, audit: AuditLog | None = None,
                 login: Login | None = None, limits: ServingLimits | None = None,
                 namespaces: NamespaceSource | None = None, console_dir: Path | None = None) -> None:
        self.limits = limits or ServingLimits()
        served = [r.describe() for r in resources]
        self.served = served_resources(served)
        self.metrics_registry = exposition_registry()
        self.audit = audit
        self.login_service = login
        self.authentication = authentication
        self.authorization = authorization
        self.resources = ResourceHandler(resources, Admission(authorization.authorizer), namespaces)
        self.gvs = discovery.group_versions(served)
        self.health = health
        self.version = version
        self.server_address = server_address
        self.openapi = OpenAPIHandler(served)
        self.console = Console(console_dir)

    async def self_review(self, request: web.Request, info: ri.RequestInfo) -> web.StreamResponse:
        """SelfSubjectReview, SelfSubjectAccessReview, SelfSubjectRulesReview (`kubectl auth whoami|can-i`)."""
        if request.method != "POST":
            raise method_not_allowed(request.method)
        raw = await request.read()
        content_type = negotiation.media_type(request.headers.get("Content-Type"))
        if content_type == protobuf.MEDIA_TYPE:
            body: object = protobuf.decode_review(raw)
        else:
            body = await negotiation.decode_body_async(raw, content_type) if raw.strip() else {}
        out = reviews.review(info.api_group, info.resource, info.api_version, request["user"],
                             self.authorization.authorizer, body)
        return respond(request, out, 201)

    async def delegation_review(self, request: web.Request, info: ri.RequestInfo) -> web.StreamResponse:
        """TokenReview and SubjectAccessReview, as kube-apiserver serves them to delegating servers."""
        if request.method != "POST":
            raise method_not_allowed(request.method)
        body = await negotiation.decode_body_async(await request.read(), request.headers.get("Content-Type"))
        if info.resource == "tokenreviews":
            out = reviews.token_review(info.api_version, self.authentication.authenticate_token, body)
        else:
            out = reviews.subject_access_review(info.api_version, self.authorization.authorizer, body)
        return respond(request, out, 201)

    async def apis(self, request: web.Request) -> web.StreamResponse:
        info: ri.RequestInfo = request["info"]
        if ((info.api_group, info.resource) in reviews.REVIEWS and not info.name and not info.namespace
                and info.api_version in reviews.VERSIONS):
            return await self.self_review(request, info)
        if ((info.api_group, info.resource) in reviews.DELEGATION and not info.name and not info.namespace
                and info.api_version == "v1"):
            return await self.delegation_review(request, info)
        if info.is_resource_request:
            return await self.resources.handle(request, info)
        if request.method not in ("GET", "HEAD"):
            raise method_not_allowed(request.method)
        parts = [p for p in request.path.strip("/").split("/") if p]
        if len(parts) == 1:
            output = negotiation.negotiate(request.headers.get("Accept"), discovery_ok=True)
            if output.kind == negotiation.DISCOVERY_V2:
                resp = respond(request, discovery.aggregated(self.gvs), output=output)
                resp.headers["Vary"] = "Accept"
                return resp
            return respond(request, discovery.group_list(self.gvs), output=output)
        if len(parts) == 2:
            group = discovery.api_group(self.gvs, parts[1])
            if group is None:
                raise not_found_path()
            return respond(request, group)
        if len(parts) == 3:
            for gv in self.gvs:
                if (gv.group, gv.version) == (parts[1], parts[2]):
                    return respond(request, discovery.resource_list(gv))
        raise not_found_path()

    async def api(self, request: web.Request) -> web.StreamResponse:
        """The core group: /api (APIVersions, or aggregated discovery), /api/v1 (its resources) and its
        resource requests."""
        info: ri.RequestInfo = request["info"]
        if info.is_resource_request:
            return await self.resources.handle(request, info)
        if request.method not in ("GET", "HEAD"):
            raise method_not_allowed(request.method)
        parts = [p for p in request.path.strip("/").split("/") if p]
        if len(parts) == 2:
            for gv in self.gvs:
                if (gv.group, gv.version) == ("", parts[1]):
                    return respond(request, discovery.resource_list(gv))
        if len(parts) != 1:
            raise not_found_path()
        output = negotiation.negotiate(request.headers.get("Accept"), discovery_ok=True)
        if output.kind == negotiation.DISCOVERY_V2:
            resp = respond(request, discovery.aggregated(self.gvs, core=True), output=output)
            resp.headers["Vary"] = "Accept"
            return resp
        return respond(request, discovery.api_versions(self.server_address, self.gvs), output=output)

    async def version_handler(self, request: web.Request) -> web.Response:
        return respond(request, self.version)

    async def metrics(self, request: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(self.metrics_registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        raise not_found_path()

    def build(self) -> web.Application:
        filters = Filters(self.served, self.limits)
        app = web.Application(client_max_size=negotiation.MAX_BODY,
                              middlewares=[web.middleware(filters),
                                           *([self.audit.middleware()] if self.audit else []),
                                           self.authentication.middleware(),
                                           Impersonation(self.authorization).middleware(),
                                           Inflight(self.limits).middleware(),
                                           self.authorization.middleware()])
        app.on_shutdown.append(filters.end_long_running)
        r = app.router
        r.add_route("*", "/apis", self.apis)
        r.add_route("*", "/apis/{tail:.*}", self.apis)
        r.add_route("*", "/api", self.api)
        r.add_route("*", "/api/{tail:.*}", self.api)
        r.add_get("/version", self.version_handler)
        LoginEndpoints(self.login_service).install(app)
        r.add_get("/metrics", self.metrics)
        self.health.install(app)
        self.openapi.install(app)
        self.console.install(app)
        r.add_route("*", "/{tail:.*}", self.not_found)
        return app
