"""The console's static files as the API server serves them: no credentials needed, content types, the
security headers, caching, index.html for the console's own routes, 404 for missing files and for paths
that leave the build directory, 503 when the console was not built."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from browser_support import CONSOLE_DIST, Console

from kubellm.server.console import CSP
from kubellm.server.console import Console as ConsoleFiles

HARDENING = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
             "X-Frame-Options": "DENY"}


def asset(kind: str) -> str:
    return next(p.name for p in (CONSOLE_DIST / "assets").iterdir() if p.suffix == kind)


def test_index_and_assets_without_credentials(console: Console) -> None:
    code, headers, body = console.get("/console/")
    assert code == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert {k: headers[k] for k in HARDENING} == HARDENING
    assert b'<div id="app">' in body
    assert b"<script>" not in body and b"style=" not in body  # nothing inline: the CSP would refuse it
    js = asset(".js")
    code, headers, body = console.get(f"/console/assets/{js}")
    assert code == 200
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["Content-Security-Policy"] == CSP
    code, headers, _ = console.get(f"/console/assets/{asset('.css')}")
    assert (code, headers["Content-Type"]) == (200, "text/css; charset=utf-8")


def test_client_routes_get_the_index(console: Console) -> None:
    index = console.get("/console/")[2]
    for path in ("/console/llmservices", "/console/clusters?namespace=x", "/console/llmservices/default/qwen2.5"):
        code, headers, body = console.get(path)
        assert (code, body) == (200, index), path
        assert headers["Content-Security-Policy"] == CSP
    code, headers, _ = console.get("/console")
    assert (code, headers["Location"]) == (308, "/console/")


def test_missing_files_and_traversal_are_404(console: Console) -> None:
    for path in ("/console/assets/nothing.js", "/console/nothing.css", "/console/%2e%2e/pyproject.toml",
                 "/console/assets/..%2f..%2fpackage.json", "/console/..%2F..%2Fpyproject.toml",
                 "/console/.vite/manifest.json"):
        code, headers, body = console.get(path)
        assert code == 404, (path, code)
        assert json.loads(body)["kind"] == "Status"
        assert headers["Content-Security-Policy"] == CSP


def test_the_api_still_needs_credentials(console: Console) -> None:
    code, _, body = console.get("/apis/model.kubellm.io/v1alpha1/llmservices")
    assert code == 401, body
    code, _, _ = console.get("/consoleX")
    assert code == 401  # only /console and below are public


async def test_not_built_is_503_with_how_to_build(tmp_path: Path) -> None:
    app = web.Application()
    ConsoleFiles(tmp_path / "dist").install(app)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/console/llmservices")
        assert resp.status == 503
        assert resp.headers["Content-Security-Policy"] == CSP
        body = await resp.json()
        assert body["reason"] == "ServiceUnavailable"
        assert "npm ci && npm run build" in body["message"]


async def test_symlinks_out_of_the_build_are_not_followed(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>x</title>")
    (tmp_path / "secret.txt").write_text("not for the browser")
    (dist / "assets" / "leak.txt").symlink_to(tmp_path / "secret.txt")
    app = web.Application()
    ConsoleFiles(dist).install(app)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/console/assets/leak.txt")
        assert resp.status == 404
        resp = await client.get("/console/")
        assert resp.status == 200
        assert await resp.text() == "<!doctype html><title>x</title>"
