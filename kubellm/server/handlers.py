"""Generic REST handlers: every verb of every resource, routed from RequestInfo to its Store.

As k8s.io/apiserver/pkg/endpoints/handlers: query parameters are parsed and validated here, the
Store does the work, and the result is written as JSON, YAML or a Table, or streamed for a watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import orjson
from aiohttp import web

from kubellm.apis import errors
from kubellm.apis.validation import field as ferr
from kubellm.registry.store import ListParams, Result, Store, WriteOptions
from kubellm.server import negotiation as n
from kubellm.server import patch as patches
from kubellm.server import tables
from kubellm.server.admission import Admission
from kubellm.server.metrics import WATCHERS
from kubellm.server.params import (
    boolean,
    delete_params,
    dry_run,
    field_validation,
    include_object,
    list_params,
    options_invalid,
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
    body = n.encode(obj, output)
    resp = web.Response(body=body, status=status, content_type=output.content_type.split(";")[0])
    if ";" in output.content_type:
        resp.headers["Content-Type"] = output.content_type
    for w in warnings or []:
        text = w.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
        resp.headers.add("Warning", f'299 - "{text}"')
    return resp


def exposed_list(store: Store, listed: dict[str, Any]) -> dict[str, Any]:
    """A list as clients may see it: write-only fields removed from every item."""
    if not store.strategy.hidden_fields:
        return listed
    return {**listed, "items": [store.strategy.for_output(o) for o in listed["items"]]}


class ResourceHandler:
    """Serves /apis/<group>/<version>/... for the Stores given."""

    def __init__(self, stores: list[Store], admission: Admission | None = None) -> None:
        self.stores = {(s.info.group, s.info.version, s.info.plural): s for s in stores}
        self.admission = admission

    def _admitted(self, request: web.Request, store: Store, opts: WriteOptions) -> WriteOptions:
        if self.admission is None:
            return opts
        admit = self.admission.for_request(store, request.get("user"))
        return dataclasses.replace(opts, admit=admit) if admit is not None else opts

    def store_for(self, info: RequestInfo) -> Store:
        store = self.stores.get((info.api_group, info.api_version, info.resource))
        if store is None:
            raise not_found_path()
        if info.namespace and not store.info.namespaced:
            raise not_found_path()
        if info.subresource not in ("", "status", "scale") or len(info.parts) > 3:
            raise not_found_path()
        if info.subresource == "status" and not store.info.has_status:
            raise not_found_path()
        if info.subresource == "scale" and not store.info.has_scale:
            raise not_found_path()
        return store

    async def handle(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        store = self.store_for(info)
        ns = info.namespace or None
        method = request.method
        if info.name:
            allowed = ("GET", "HEAD", "PUT", "PATCH") if info.subresource else ("GET", "HEAD", "PUT", "PATCH",
                                                                                  "DELETE")
        else:
            allowed = ("GET", "HEAD", "POST", "DELETE")
        if method not in allowed:
            raise method_not_allowed(method)
        if store.info.namespaced and not ns and info.verb not in ("list", "watch"):
            raise not_found_path()
        verb = info.verb
        if verb == "get":
            return await self.get(request, store, ns, info)
        if verb == "list":
            return await self.list(request, store, ns)
        if verb == "watch":
            return await self.watch(request, store, ns)
        if verb == "create":
            return await self.create(request, store, ns)
        if verb == "update":
            return await self.update(request, store, ns, info)
        if verb == "patch":
            return await self.patch(request, store, ns, info)
        if verb == "delete":
            return await self.delete(request, store, ns, info)
        if verb == "deletecollection":
            return await self.delete_collection(request, store, ns)
        raise method_not_allowed(method)

    # --- reads -----------------------------------------------------------------------------------------

    async def get(self, request: web.Request, store: Store, ns: str | None, info: RequestInfo) -> web.Response:
        output = n.negotiate(request.headers.get("Accept"), table_ok=not info.subresource)
        rv = resource_version(request.query)
        if info.subresource == "scale":
            return respond(request, await store.get_scale(ns, info.name), output=output)
        obj = store.strategy.for_output(await store.get(ns, info.name, rv))
        if output.kind == n.TABLE:
            include = include_object(request.query)
            return respond(request, tables.table([obj], store.strategy.printer_columns, include=include,
                                                 list_meta={"resourceVersion": obj["metadata"]["resourceVersion"]}),
                           output=output)
        return respond(request, obj, output=output)

    async def list(self, request: web.Request, store: Store, ns: str | None) -> web.Response:
        output = n.negotiate(request.headers.get("Accept"), table_ok=True)
        listed = exposed_list(store, await store.list(ns, list_params(request.query)))
        if output.kind == n.TABLE:
            include = include_object(request.query)
            return respond(request, tables.table(listed["items"], store.strategy.printer_columns, include=include,
                                                 list_meta=listed["metadata"]), output=output)
        return respond(request, listed, output=output)

    async def watch(self, request: web.Request, store: Store, ns: str | None) -> web.StreamResponse:
        output = n.negotiate(request.headers.get("Accept"), table_ok=True)
        timeout = timeout_seconds(request.query, DEFAULT_WATCH_TIMEOUT)
        params = list_params(request.query, watch=True)
        include = include_object(request.query)
        if params.limit or params.continue_token:
            params = ListParams(params.label_selector, params.field_selector, 0, "", params.resource_version,
                                "", params.allow_bookmarks, params.bookmark_interval)
        events = await store.watch(ns, params)
        resp = web.StreamResponse(status=200)
        resp.headers["Content-Type"] = output.content_type if output.kind == n.TABLE else "application/json"
        resp.headers["Cache-Control"] = "no-cache, private"
        await resp.prepare(request)
        request[STREAM_STATUS] = resp.status
        labels = (("watch", store.info.group, store.info.version, store.info.plural, "",
                   "namespace" if ns else "cluster", "apiserver"))
        WATCHERS.labels(*labels).inc()
        first = True
        try:
            async with asyncio.timeout(timeout):
                hidden = bool(store.strategy.hidden_fields)
                async for ev in events:
                    if hidden and ev.type != "BOOKMARK":
                        ev.object, ev.encoded = store.strategy.for_output(ev.object), None
                    if output.kind == n.TABLE and ev.type != "BOOKMARK":
                        obj = tables.table([ev.object], store.strategy.printer_columns, include=include,
                                           list_meta={"resourceVersion": ev.object["metadata"].get("resourceVersion",
                                                                                                   "")},
                                           with_definitions=first)
                        first = False
                        body = orjson.dumps(obj)
                    else:
                        body = ev.encoded or orjson.dumps(ev.object)
                    await resp.write(b'{"type":"' + ev.type.encode() + b'","object":' + body + b"}\n")
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
        return await n.decode_body_async(await request.read(), request.headers.get("Content-Type"))

    async def create(self, request: web.Request, store: Store, ns: str | None) -> web.Response:
        opts = self._admitted(request, store, write_options(request, "CreateOptions"))
        body = await self._body(request)
        result = await store.create(body, namespace=ns, options=opts)
        return respond(request, store.strategy.for_output(result.object), 201, warnings=result.warnings)

    async def update(self, request: web.Request, store: Store, ns: str | None, info: RequestInfo) -> web.Response:
        opts = self._admitted(request, store, write_options(request, "UpdateOptions"))
        body = await self._body(request)
        if info.subresource == "scale":
            result = await store.update_scale(ns, info.name, body, options=opts)
        else:
            result = await store.update(ns, info.name, body, options=opts, subresource=info.subresource)
        return respond(request, store.strategy.for_output(result.object), 201 if result.created else 200,
                       warnings=result.warnings)

    async def patch(self, request: web.Request, store: Store, ns: str | None, info: RequestInfo) -> web.Response:
        content_type = n.media_type(request.headers.get("Content-Type"))
        if content_type not in (n.JSON_PATCH, n.MERGE_PATCH, n.APPLY_PATCH):
            raise patches.unsupported(content_type)
        is_apply = content_type == n.APPLY_PATCH
        opts = self._admitted(request, store, write_options(request, "PatchOptions", apply=is_apply))
        if "force" in request.query and not is_apply:
            raise options_invalid("PatchOptions", [ferr.forbidden("force", "may not be specified for non-apply patch")])
        body = await self._body(request)
        result: Result
        if content_type == n.APPLY_PATCH:
            if info.subresource == "scale":
                raise patches.unsupported(content_type)
            result = await store.apply(ns, info.name, body, force=boolean(request.query, "force"), options=opts,
                                       subresource=info.subresource)
        elif info.subresource == "scale":
            mutate = patches.mutator(content_type, body, info.name)
            current = await store.get_scale(ns, info.name)
            result = await store.update_scale(ns, info.name, mutate(current), options=opts)
        else:
            result = await store.patch(ns, info.name, patches.mutator(content_type, body, info.name), options=opts,
                                       subresource=info.subresource)
        return respond(request, store.strategy.for_output(result.object), 201 if result.created else 200,
                       warnings=result.warnings)

    async def delete(self, request: web.Request, store: Store, ns: str | None, info: RequestInfo) -> web.Response:
        raw = await request.read()
        body = await n.decode_body_async(raw, request.headers.get("Content-Type")) if raw.strip() else None
        result = await store.delete(ns, info.name, delete_params(request.query, body))
        return respond(request, store.strategy.for_output(result.object), 200 if result.deleted else 202)

    async def delete_collection(self, request: web.Request, store: Store, ns: str | None) -> web.Response:
        raw = await request.read()
        body = await n.decode_body_async(raw, request.headers.get("Content-Type")) if raw.strip() else None
        listed = await store.delete_collection(ns, list_params(request.query), delete_params(request.query, body))
        return respond(request, exposed_list(store, listed))
