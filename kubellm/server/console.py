"""The web console's static files under /console/ (built from `console/` into `console/dist/`).

The files are public (the page must load before anyone has logged in); what the console shows comes from
the API, with the bearer token it obtained from /login. Every response here carries a strict
Content-Security-Policy (only this origin's scripts, styles and connections; no framing, no inline code)
and the usual hardening headers. Paths are resolved inside the build directory only; a path that is not
a file there is a client-side route and gets index.html, except under assets/ or with a file's extension
(.js, .css, ...), where it is 404. Without
a build the console answers 503 with a Status that says how to build it.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path, PurePosixPath

from aiohttp import web

from kubellm.apis import errors
from kubellm.server.handlers import not_found_path, respond

PREFIX = "/console"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
IMMUTABLE = "public, max-age=31536000, immutable"
"""Files under assets/ have a content hash in their names: a new build is new names."""
REVALIDATE = "no-cache"


def default_dir() -> Path:
    """console/dist of the checkout this package runs from (an editable install, or the image's copy)."""
    return Path(__file__).resolve().parents[2] / "console" / "dist"


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def with_headers(resp: web.StreamResponse, cache: str) -> web.StreamResponse:
    resp.headers.update(SECURITY_HEADERS)
    resp.headers["Cache-Control"] = cache
    return resp


class Console:
    def __init__(self, root: Path | None) -> None:
        self.root = (root or default_dir()).resolve()

    @staticmethod
    def unsafe(tail: str) -> bool:
        """A path with '..', a hidden name, a backslash or NUL: never a file of the console, nor one of its pages."""
        if "\\" in tail or "\x00" in tail:
            return True
        return any(part.startswith(".") for part in PurePosixPath(tail).parts)

    def resolve(self, tail: str) -> Path | None:
        """The file `tail` names inside the build, or None (missing, unsafe, or a link out of the root)."""
        if self.unsafe(tail):
            return None
        parts = PurePosixPath(tail).parts
        candidate = self.root.joinpath(*parts).resolve() if parts else self.root
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def status(self, request: web.Request, err: errors.StatusError) -> web.StreamResponse:
        return with_headers(respond(request, err.status, err.code), "no-store")

    def file(self, path: Path, cache: str) -> web.StreamResponse:
        return with_headers(web.FileResponse(path, headers={"Content-Type": content_type(path)}), cache)

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        resp = web.Response(status=308, headers={"Location": PREFIX + "/"})
        return with_headers(resp, "no-store")

    async def serve(self, request: web.Request) -> web.StreamResponse:
        index = self.root / "index.html"
        if not index.is_file():
            return self.status(request, errors.service_unavailable(
                "the web console was not built: run `npm ci && npm run build` in console/ (hack/install-deps.sh "
                "does)"))
        tail = request.match_info.get("tail", "")
        found = self.resolve(tail)
        if found is not None:
            return self.file(found, IMMUTABLE if tail.startswith("assets/") else REVALIDATE)
        if self.unsafe(tail) or tail.startswith("assets/") or PurePosixPath(tail).suffix.lower() in CONTENT_TYPES:
            return self.status(request, not_found_path())  # a missing file, not a page of the console
        return self.file(index, REVALIDATE)

    def install(self, app: web.Application) -> None:
        app.router.add_get(PREFIX, self.redirect)
        app.router.add_get(PREFIX + "/{tail:.*}", self.serve)
