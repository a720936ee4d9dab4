"""Browser test helpers: a real kubellm-apiserver (started as the e2e tests start it) serving the built console,
and Debian's headless Chromium driven by Playwright for Python (the system browser: Playwright never
downloads one).

Without the built console (`console/dist`, built by hack/install-deps.sh), Chromium or Playwright these
tests skip, and fail under CI=true, as the other tests that need an installed tool do.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_DIST = ROOT / "console" / "dist"
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"


def _e2e_helpers() -> ModuleType:
    """test/e2e/conftest.py under a name of its own (each test folder's conftest is `conftest`)."""
    name = "kubellm_e2e_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "test" / "e2e" / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


e2e = _e2e_helpers()
APIServer = e2e.APIServer
running_apiserver = e2e.running_apiserver
secret = e2e.secret


def missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} (hack/install-deps.sh installs it)")
    pytest.skip(what)


def chromium_path() -> str:
    for candidate in (os.environ.get("KUBELLM_CHROMIUM", ""), shutil.which("chromium") or "", "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    missing("Chromium is not installed (Debian package chromium)")
    raise AssertionError("unreachable")


def admin_password(server: Any) -> str:
    lines = (server.state_dir / "admin-credentials").read_text().splitlines()
    return secret(dict(line.split(": ", 1) for line in lines)["password"])


@dataclass(frozen=True)
class Console:
    server: Any  # e2e's APIServer
    ca_file: Path

    @property
    def url(self) -> str:
        return f"{self.server.url}/console/"

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """A plain HTTPS GET (no redirects followed): status, headers, body."""
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(self.ca_file))), NoRedirect)
        req = urllib.request.Request(self.server.url + path, headers=headers or {})
        try:
            with opener.open(req, timeout=15) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()

    def post_logout(self, token: str) -> tuple[int, dict[str, str], bytes]:
        """POST /logout with `token`, as another tab or a script would: the token is revoked."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        req = urllib.request.Request(self.server.url + "/logout", method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=15) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()

    def create_user(self, name: str, password: str, groups: list[str] | None = None) -> None:
        secret(password)
        groups_yaml = "[" + ", ".join(groups or []) + "]"
        self.server.kubectl("apply", "-f", "-", input=(
            "apiVersion: iam.kubellm.io/v1alpha1\nkind: User\n"
            f"metadata: {{name: {name}}}\n"
            f"spec: {{email: {name}@example.com, password: '{password}', groups: {groups_yaml}}}\n"))



def check_accessibility(page: Any) -> None:
    """axe-core in the page: no serious or critical violations. Injected through the DevTools protocol
    (page.evaluate), which the page's Content-Security-Policy does not govern."""
    if not AXE.is_file():
        missing("axe-core is not installed (npm ci in console/)")
    page.evaluate(AXE.read_text())
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                           ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length}))")
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert not bad, f"accessibility violations on {page.url}: {bad}"


def create_many(console: Console, namespace: str, bodies: list[dict[str, Any]], workers: int = 8) -> None:
    """POST every body to its collection as the admin (client certificate), a few at a time."""
    import http.client
    import json
    from concurrent.futures import ThreadPoolExecutor

    pki = console.server.state_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(console.ca_file))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    host, port = console.server.url.removeprefix("https://").rsplit(":", 1)
    path = f"/apis/model.kubellm.io/v1alpha1/namespaces/{namespace}/llmservices"

    def post(chunk: list[dict[str, Any]]) -> None:
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
        try:
            for body in chunk:
                conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                out = resp.read()
                assert resp.status == 201, out
        finally:
            conn.close()

    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(post, bodies[i::workers]) for i in range(workers)]:
            future.result()


def screenshot(page: Any, name: str) -> None:
    """With KUBELLM_CONSOLE_SCREENSHOTS=<dir>, save the page as <dir>/<name>.png (docs/console/ holds the
    ones the README shows); otherwise nothing."""
    directory = os.environ.get("KUBELLM_CONSOLE_SCREENSHOTS", "")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=False)
