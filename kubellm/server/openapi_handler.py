"""Serves the generated OpenAPI documents: /openapi/v2 (JSON or the protobuf kubectl asks for),
/openapi/v3 and /openapi/v3/apis/<group>/<version>.

Documents are built once and kept as bytes with an ETag. A v3 document requested with its current
`?hash=` is immutable; a stale hash is redirected to the current URL, as kube-apiserver does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aiohttp import web

from kubellm.registry.rest import Served
from kubellm.server import openapi
from kubellm.server.handlers import not_found_path


class _Doc:
    def __init__(self, body: bytes, content_type: str = "application/json") -> None:
        self.body = body
        self.content_type = content_type
        self.etag = '"' + hashlib.sha512(body).hexdigest()[:32].upper() + '"'


class OpenAPIHandler:
    def __init__(self, resources: Sequence[Served]) -> None:
        self.resources = list(resources)
        self._docs: dict[str, _Doc] = {}

    def _doc(self, key: str) -> _Doc:
        doc = self._docs.get(key)
        if doc is None:
            if key == "v2":
                doc = _Doc(openapi.serialize(openapi.build_v2(self.resources)))
            elif key == "v2-protobuf":
                doc = _Doc(openapi.build_v2_protobuf(self.resources), openapi.PROTOBUF_V2_RESPONSE_MEDIA_TYPE)
            elif key == "v3-index":
                doc = _Doc(openapi.serialize(openapi.build_v3_index(self.resources)))
            else:
                group, version = key.split("/", 1)
                doc = _Doc(openapi.serialize(openapi.build_v3(self.resources, group, version)))
            self._docs[key] = doc
        return doc

    @staticmethod
    def _serve(request: web.Request, doc: _Doc, *, immutable: bool = False) -> web.Response:
        headers = {"ETag": doc.etag, "Vary": "Accept", "Content-Type": doc.content_type,
                   "Cache-Control": "public, immutable" if immutable else "no-cache, private"}
        if request.headers.get("If-None-Match") == doc.etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=doc.body, headers=headers)

    async def v2(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        wants_protobuf = openapi.PROTOBUF_V2_MEDIA_TYPE in accept or "proto-openapi" in accept.split(",")[0]
        return self._serve(request, self._doc("v2-protobuf" if wants_protobuf else "v2"))

    async def v3_index(self, request: web.Request) -> web.Response:
        return self._serve(request, self._doc("v3-index"))

    async def v3(self, request: web.Request) -> web.Response:
        group, version = request.match_info.get("group", ""), request.match_info["version"]
        if not any(r.group == group and r.version == version for r in self.resources):
            raise not_found_path()
        doc = self._doc(f"{group}/{version}")
        wanted = request.query.get("hash")
        if wanted is None:
            return self._serve(request, doc)
        current = hashlib.sha512(doc.body).hexdigest().upper()
        if wanted != current:
            raise web.HTTPMovedPermanently(f"/openapi/v3/{openapi.v3_path(group, version)}?hash={current}")
        return self._serve(request, doc, immutable=True)

    def install(self, app: web.Application) -> None:
        app.router.add_get("/openapi/v2", self.v2)
        app.router.add_get("/openapi/v3", self.v3_index)
        app.router.add_get("/openapi/v3/apis/{group}/{version}", self.v3)
        app.router.add_get("/openapi/v3/api/{version}", self.v3)  # the core group
