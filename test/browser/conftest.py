"""Browser fixtures: a real kubellm-apiserver serving the built console (started as the e2e tests start
their server) and Debian's headless Chromium driven by Playwright for Python. Helpers: browser_support.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import CONSOLE_DIST, Console, chromium_path, missing, running_apiserver


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    if not (CONSOLE_DIST / "index.html").is_file():
        missing("the console is not built (npm ci && npm run build in console/)")
    state = tmp_path_factory.mktemp("kubellm-console")
    with running_apiserver(state, "--console-dir", str(CONSOLE_DIST)) as server:
        yield Console(server, state / "pki" / "serving-ca.crt")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module: Playwright's sync API holds the thread's event loop while it runs, so it
    must be stopped before the asyncio tests of other modules run."""
    executable = chromium_path()
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed (the dev extra)")
    expect.set_options(timeout=15_000)  # a deadline for what must happen, generous for a loaded CI machine
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own session storage) and page; console errors are collected on
    `page.console_errors`, CSP violations among them."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.console_errors = errors
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        with contextlib.suppress(Exception):
            context.close()
