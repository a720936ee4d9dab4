"""Generic REST handlers: every verb of every resource, routed from RequestInfo to its Store.

As k8s.io/apiserver/pkg/endpoints/handlers: query parameters are parsed and validated here, the
Store does the work, and the result is written as JSON, YAML or a Table, or streamed for a watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any, ClassVar

import orjson
from aiohttp import hdrs, web

from kubellm.apis import errors
from kubellm.apis.codec import MAX_WARNINGS
from kubellm.apis.validation import field as ferr
from kubellm.registry.rest import (
    REST,
    VERBS,
    Applier,
    CollectionDeleter,
    Creater,
    Getter,
    GracefulDeleter,
    Lister,
    Patcher,
    Resource,
    Updater,
    Watcher,
)
from kubellm.registry.storage.interface import Event
from kubellm.registry.store import Result, WriteOptions
from kubellm.server import negotiation as n
from kubellm.server import patch as patches
from kubellm.server import protobuf, tables
from kubellm.server.admission import Admission, LocalNamespaces, NamespaceLifecycle, NamespaceSource
from kubellm.server.metrics import WATCHERS
from kubellm.server.params import (
    accepted_status,
    boolean,
    delete_params,
    dry_run,
    field_validation,
    include_object,
    list_params,
    options_invalid,
    pretty,
    resource_version,
    timeout_seconds,
)
from kubellm.server.requestinfo import RequestInfo

DEFAULT_WATCH_TIMEOUT = 1800
STREAM_STATUS = "stream_status"
"""Request key set once a streamed response (a watch) has sent its status line: a client that goes away after
that got a 200, and is counted so."""


def not_found_path() -> errors.StatusError:
    return errors.StatusError(404, "NotFound", "the server could not find the requested resource",
                              {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def method_not_allowed(method: str) -> errors.StatusError:
    return errors.StatusError(405, "MethodNotAllowed", f"the server does not allow this method on the requested "
                              f"resource ({method})")


def field_manager(request: web.Request, kind: str, *, apply: bool = False) -> str:
    manager = request.query.get("fieldManager", "")
    if manager:
        if len(manager) > 128 or not manager.isprintable():
            raise options_invalid(kind, [ferr.invalid("fieldManager", manager,
                                                      "must be at most 128 printable characters")])
        return manager
    if apply:
        raise options_invalid(kind, [ferr.required("fieldManager", "is required for apply patch")])
    agent = request.headers.get("User-Agent", "")
    return agent.split("/", 1)[0][:128] or "unknown"


def write_options(request: web.Request, kind: str, *, apply: bool = False) -> WriteOptions:
    return WriteOptions(dry_run=dry_run(request.query, kind), field_validation=field_validation(request.query, kind),
                        field_manager=field_manager(request, kind, apply=apply))


def respond(request: web.Request, obj: Any, status: int = 200, *, warnings: list[str] | None = None,
            output: n.Output | None = None) -> web.Response:
    output = output or n.negotiate(request.headers.get("Accept"))
    body = n.encode(obj, output, pretty=pretty(request.query))
    resp = web.Response(body=body, status=status, content_type=output.content_type.split(";")[0])
    if ";" in output.content_type:
        resp.headers["Content-Type"] = output.content_type
    for text in warning_texts(warnings or []):
        resp.headers.add("Warning", f'299 - "{text}"')
    return resp


MAX_WARNING_LENGTH = 1024


def warning_texts(warnings: list[str]) -> list[str]:
    """Warnings as Warning header texts: printable ASCII only (anything else escaped, so no header can be
    refused or split), each at most MAX_WARNING_LENGTH characters, at most MAX_WARNINGS of them (the last
    counting the rest), as kube-apiserver bounds what its warning recorder sends."""
    if len(warnings) > MAX_WARNINGS:
        warnings = [*warnings[: MAX_WARNINGS - 1], f"and {len(warnings) - MAX_WARNINGS + 1} more warnings"]
    out = []
    for w in warnings:
        text = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode("ascii") for c in w)
        text = text.replace("\\", "\\\\").replace('"', '\\"')
        out.append(text if len(text) <= MAX_WARNING_LENGTH else text[: MAX_WARNING_LENGTH - 3] + "...")
    return out


def watch_line(event_type: str, body: bytes) -> bytes:
    """One event of a JSON watch stream: `{"type":...,"object":...}` and a newline."""
    return b'{"type":"' + event_type.encode() + b'","object":' + body + b"}\n"


class LineSink:
    """A JSON watch stream's synchronous intake (`WatchOptions.sink`): a change handed over by the watch cache's
    dispatch goes straight to the connection, framed as `resp.write` frames it (a chunk when the response is
    chunked), without waking the handler. Between `start` and `stop` only, and only while nothing is waiting in
    the connection's write buffer: a slow reader's events stay on the handler's path, with its flow control (and
    the watcher's queue limit behind it)."""

    __slots__ = ("_chunked", "_transport")
    _last: ClassVar[tuple[bytes | None, str, bool, bytes]] = (None, "", False, b"")
    """The bytes last written for (encoded object, type, chunked): every watcher of one change writes the same."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._chunked = False

    def start(self, request: web.Request, resp: web.StreamResponse) -> None:
        """The headers are out (`prepare` sends them): events may follow on the connection itself."""
        if not resp.compression:
            self._transport = request.transport
            # as the headers sent say: aiohttp chunks an HTTP/1.1 stream of unknown length by itself
            self._chunked = "chunked" in resp.headers.get(hdrs.TRANSFER_ENCODING, "").lower()

    def stop(self) -> None:
        self._transport = None

    def __call__(self, ev: Event) -> bool:
        transport = self._transport
        if transport is None or ev.encoded is None or transport.is_closing() or transport.get_write_buffer_size():
            return False
        encoded, chunked = ev.encoded, self._chunked
        last = LineSink._last
        if last[0] is encoded and last[1] == ev.type and last[2] == chunked:
            data = last[3]
        else:
            line = watch_line(ev.type, encoded)
            data = b"%x\r\n%b\r\n" % (len(line), line) if chunked else line
            LineSink._last = (encoded, ev.type, chunked, data)
        try:
            transport.write(data)
        except Exception:  # never into the cache's dispatch (it serves every watcher): the handler's write fails
            self._transport = None
            return False
        return True


class ResourceHandler:
    """Serves /apis/<group>/<version>/... for the resources given: the URL picks a resource and one of its
    REST objects (main, status, scale), the verb a capability of it; what it lacks is 405."""

    def __init__(self, resources: list[Resource], admission: Admission | None = None,
                 namespaces: NamespaceSource | None = None) -> None:
        self.resources = {(r.info.group, r.info.version, r.info.plural): r for r in resources}
        self.admission = admission
        served = next((r.store for r in resources if (r.info.group, r.info.kind) == ("", "Namespace")), None)
        self.lifecycle = NamespaceLifecycle(namespaces or (LocalNamespaces(served) if served else None))

    def _admitted(self, request: web.Request, resource: Resource, opts: WriteOptions) -> WriteOptions:
        if self.admission is None:
            return opts
        admit = self.admission.for_request(resource.info, request.get("user"))
        return dataclasses.replace(opts, admit=admit) if admit is not None else opts

    def route(self, info: RequestInfo) -> tuple[Resource, REST]:
        resource = self.resources.get((info.api_group, info.api_version, info.resource))
        if resource is None or (info.namespace and not resource.info.namespaced) or len(info.parts) > 3:
            raise not_found_path()
        rest = resource.rest.get(info.subresource)
        if rest is None:
            raise not_found_path()
        return resource, rest

    async def handle(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        resource, rest = self.route(info)
        ns = info.namespace or None
        verb = info.verb
        on_item = verb in ("get", "update", "patch", "delete")
        if verb not in CAPABILITIES or on_item != bool(info.name) or not isinstance(rest, CAPABILITIES[verb]):
            raise method_not_allowed(request.method)
        if resource.info.namespaced and not ns and verb not in ("list", "watch"):
            raise not_found_path()
        handler = getattr(self, verb)
        response: web.StreamResponse = await handler(request, resource, rest, ns, info)
        return response

    # --- reads -----------------------------------------------------------------------------------------

    async def get(self, request: web.Request, resource: Resource, rest: Getter, ns: str | None,
                  info: RequestInfo) -> web.Response:
        output = n.negotiate(request.headers.get("Accept"), table_ok=not info.subresource)
        obj = await rest.get(ns, info.name, resource_version(request.query))
        if output.kind == n.TABLE:
            return respond(request, tables.table([obj], resource.strategy.printer_columns,
                                                 include=include_object(request.query),
                                                 list_meta={"resourceVersion": obj["metadata"]["resourceVersion"]}),
                           output=output)
        return respond(request, obj, output=output)

    async def list(self, request: web.Request, resource: Resource, rest: Lister, ns: str | None,
                   info: RequestInfo) -> web.Response:
        output = n.negotiate(request.headers.get("Accept"), table_ok=True)
        listed = await rest.list(ns, list_params(request.query))
        if output.kind == n.TABLE:
            return respond(request, tables.table(listed["items"], resource.strategy.printer_columns,
                                                 include=include_object(request.query),
                                                 list_meta=listed["metadata"]), output=output)
        return respond(request, listed, output=output)

    async def watch(self, request: web.Request, resource: Resource, rest: Watcher, ns: str | None,
                    info: RequestInfo) -> web.StreamResponse:
        output = n.negotiate(request.headers.get("Accept"), table_ok=True)
        timeout = timeout_seconds(request.query, DEFAULT_WATCH_TIMEOUT)
        params = dataclasses.replace(list_params(request.query, watch=True), limit=0, continue_token="",
                                     resource_version_match="")
        include = include_object(request.query)
        sink = LineSink() if output.kind != n.TABLE else None
        events = await rest.watch(ns, params, sink=sink)
        resp = web.StreamResponse(status=200)
        resp.headers["Content-Type"] = output.content_type if output.kind == n.TABLE else "application/json"
        resp.headers["Cache-Control"] = "no-cache, private"
        await resp.prepare(request)
        request[STREAM_STATUS] = resp.status
        labels = (("watch", resource.info.group, resource.info.version, resource.info.plural, "",
                   "namespace" if ns else "cluster", "apiserver"))
        WATCHERS.labels(*labels).inc()
        first = True
        try:
            async with asyncio.timeout(timeout):
                try:
                    if sink is not None:
                        sink.start(request, resp)
                    async for ev in events:
                        if output.kind == n.TABLE and ev.type != "BOOKMARK":
                            obj = tables.table([ev.object], resource.strategy.printer_columns, include=include,
                                               list_meta={"resourceVersion": ev.object["metadata"].get(
                                                   "resourceVersion", "")},
                                               with_definitions=first)
                            first = False
                            body = orjson.dumps(obj)
                        else:
                            body = ev.encoded or orjson.dumps(ev.object)
                        await resp.write(watch_line(ev.type, body))
                finally:
                    if sink is not None:
                        sink.stop()  # before anything else is written: the ERROR event, the end of the stream
        except TimeoutError:
            pass  # timeoutSeconds reached: the stream ends normally
        except errors.StatusError as exc:
            with contextlib.suppress(ConnectionResetError):
                await resp.write(orjson.dumps({"type": "ERROR", "object": exc.status}) + b"\n")
        except ConnectionResetError:
            pass
        finally:
            WATCHERS.labels(*labels).dec()
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp

    # --- writes ----------------------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> Any:
        content_type = request.headers.get("Content-Type")
        raw = await request.read()
        if n.media_type(content_type) == protobuf.MEDIA_TYPE:  # kubectl's typed clients, for built-in kinds
            return protobuf.decode_object(raw)
        return await n.decode_body_async(raw, content_type)

    async def create(self, request: web.Request, resource: Resource, rest: Creater, ns: str | None,
                     info: RequestInfo) -> web.Response:
        opts = self._admitted(request, resource, write_options(request, "CreateOptions"))
        await self.lifecycle.admit_create(resource.info, ns)
        result = await rest.create(ns, await self._body(request), opts)
        return respond(request, result.object, 201, warnings=result.warnings)

    async def update(self, request: web.Request, resource: Resource, rest: Updater, ns: str | None,
                     info: RequestInfo) -> web.Response:
        opts = self._admitted(request, resource, write_options(request, "UpdateOptions"))
        result = await rest.update(ns, info.name, await self._body(request), opts)
        return respond(request, result.object, 201 if result.created else 200, warnings=result.warnings)

    async def patch(self, request: web.Request, resource: Resource, rest: Patcher, ns: str | None,
                    info: RequestInfo) -> web.Response:
        content_type = n.media_type(request.headers.get("Content-Type"))
        if content_type not in (n.JSON_PATCH, n.MERGE_PATCH, n.APPLY_PATCH):
            raise patches.unsupported(content_type)
        is_apply = content_type == n.APPLY_PATCH
        if is_apply and not isinstance(rest, Applier):
            raise patches.unsupported(content_type)
        opts = self._admitted(request, resource, write_options(request, "PatchOptions", apply=is_apply))
        if "force" in request.query and not is_apply:
            raise options_invalid("PatchOptions", [ferr.forbidden("force", "may not be specified for non-apply patch")])
        body = await self._body(request)
        result: Result
        if isinstance(rest, Applier) and is_apply:
            if not info.subresource:  # an apply may create: checked as a create unless the object exists
                try:
                    await self.lifecycle.admit_create(resource.info, ns)
                except errors.StatusError as exc:
                    if exc.code != 403 or not isinstance(rest, Getter) or not await _exists(rest, ns, info.name):
                        raise
            result = await rest.apply(ns, info.name, body, boolean(request.query, "force"), opts)
        else:
            result = await rest.patch(ns, info.name, patches.mutator(content_type, body, info.name), opts)
        return respond(request, result.object, 201 if result.created else 200, warnings=result.warnings)

    async def _delete_body(self, request: web.Request) -> Any:
        raw = await request.read()
        return await n.decode_body_async(raw, request.headers.get("Content-Type")) if raw.strip() else None

    async def delete(self, request: web.Request, resource: Resource, rest: GracefulDeleter, ns: str | None,
                     info: RequestInfo) -> web.Response:
        body = await self._delete_body(request)
        result = await rest.delete(ns, info.name, delete_params(request.query, body))
        return respond(request, result.object, 202 if not result.deleted and accepted_status(request.query, body)
                       else 200)

    async def deletecollection(self, request: web.Request, resource: Resource, rest: CollectionDeleter,
                               ns: str | None, info: RequestInfo) -> web.Response:
        body = await self._delete_body(request)
        return respond(request, await rest.delete_collection(ns, list_params(request.query),
                                                             delete_params(request.query, body)))


async def _exists(rest: Getter, namespace: str | None, name: str) -> bool:
    try:
        await rest.get(namespace, name)
    except errors.StatusError as exc:
        if exc.reason == "NotFound":
            return False
        raise
    return True


CAPABILITIES: dict[str, type] = dict(VERBS)
"""The capability a REST object needs for each verb (from registry.rest)."""
