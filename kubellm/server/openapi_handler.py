"""Serves the generated OpenAPI documents: /openapi/v2, /openapi/v3 and /openapi/v3/apis/<group>/<version>.

Documents are built once and kept as bytes with an ETag; v3 group-version documents are immutable
under their `?hash=` URL, as in kube-apiserver.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web

from kubellm.apis.scheme import ResourceInfo
from kubellm.server import openapi
from kubellm.server.handlers import not_found_path


class _Doc:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        self.etag = '"' + hashlib.sha512(self.body).hexdigest()[:32].upper() + '"'


class OpenAPIHandler:
    def __init__(self, resources: Sequence[ResourceInfo]) -> None:
        self.resources = list(resources)
        self._v2: _Doc | None = None
        self._v3: dict[str, _Doc] = {}
        self._index: _Doc | None = None

    def _serve(self, request: web.Request, doc: _Doc, *, immutable: bool = False) -> web.Response:
        headers = {"ETag": doc.etag, "Vary": "Accept", "Content-Type": "application/json"}
        if immutable:
            headers["Cache-Control"] = "public, immutable"
        else:
            headers["Cache-Control"] = "no-cache, private"
        if request.headers.get("If-None-Match") == doc.etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=doc.body, headers=headers)

    async def v2(self, request: web.Request) -> web.Response:
        if self._v2 is None:
            self._v2 = _Doc(openapi.build_v2(self.resources))
        return self._serve(request, self._v2)

    async def v3_index(self, request: web.Request) -> web.Response:
        if self._index is None:
            self._index = _Doc(openapi.build_v3_index(self.resources))
        return self._serve(request, self._index)

    async def v3(self, request: web.Request) -> web.Response:
        group, version = request.match_info["group"], request.match_info["version"]
        if not any(r.group == group and r.version == version for r in self.resources):
            raise not_found_path()
        key = f"{group}/{version}"
        if key not in self._v3:
            self._v3[key] = _Doc(openapi.build_v3(self.resources, group, version))
        return self._serve(request, self._v3[key], immutable="hash" in request.query)

    def install(self, app: web.Application) -> None:
        app.router.add_get("/openapi/v2", self.v2)
        app.router.add_get("/openapi/v3", self.v3_index)
        app.router.add_get("/openapi/v3/apis/{group}/{version}", self.v3)
