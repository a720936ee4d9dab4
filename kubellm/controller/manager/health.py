"""The manager's HTTP endpoints (plain HTTP, loopback by default): `/healthz` (`/livez`), `/readyz` and
`/metrics`, in kube's format: `ok`, or one `[+]name ok` / `[-]name failed: reason` line per check with
`?verbose` or on failure; `/healthz/<check>` asks one check. Health and metrics may share a port."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

CheckResult = tuple[bool, str]
"""(ok, detail): the detail is shown after `ok` or `failed` (`[+]leader-election ok: leading`)."""


@dataclass(frozen=True)
class Check:
    name: str
    probe: Callable[[], CheckResult]


def _line(check: Check) -> tuple[bool, str]:
    try:
        ok, detail = check.probe()
    except Exception as exc:  # a check that breaks is a failed check
        ok, detail = False, repr(exc)
    word = "ok" if ok else "failed"
    return ok, f"[{'+' if ok else '-'}]{check.name} {word}" + (f": {detail}" if detail else "")


def _health_handler(kind: str, checks: Sequence[Check]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("check", "")
        chosen = [c for c in checks if c.name == name] if name else list(checks)
        if name and not chosen:
            return web.Response(status=404, text=f"no {kind} check named {name!r}\n")
        excluded = set(request.query.getall("exclude", []))
        results = [_line(c) for c in chosen if c.name not in excluded]
        healthy = all(ok for ok, _ in results)
        verbose = "verbose" in request.query
        if healthy and not verbose:
            return web.Response(text="ok")
        lines = [text for _, text in results]
        lines.append(f"{kind} check {'passed' if healthy else 'failed'}")
        return web.Response(status=200 if healthy else 500, text="\n".join(lines) + "\n")

    return handle


async def _metrics(registry: CollectorRegistry, request: web.Request) -> web.StreamResponse:
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class Endpoints:
    def __init__(self, registry: CollectorRegistry, healthz: Sequence[Check], readyz: Sequence[Check], *,
                 bind_address: str = "127.0.0.1", health_port: int = 10358, metrics_port: int = 10359) -> None:
        self.registry = registry
        self.healthz = list(healthz)
        self.readyz = list(readyz)
        self.bind_address = bind_address
        self.health_port = health_port
        self.metrics_port = metrics_port
        self.health_url = ""
        self.metrics_url = ""
        self._runners: list[web.AppRunner] = []

    def _health_routes(self, app: web.Application) -> None:
        health = _health_handler("healthz", self.healthz)
        ready = _health_handler("readyz", self.readyz)
        for prefix, handler in (("/healthz", health), ("/livez", health), ("/readyz", ready)):
            app.router.add_get(prefix, handler)
            app.router.add_get(prefix + "/{check}", handler)

    def _metrics_routes(self, app: web.Application) -> None:
        registry = self.registry

        async def metrics(request: web.Request) -> web.StreamResponse:
            return await _metrics(registry, request)

        app.router.add_get("/metrics", metrics)

    async def _serve(self, app: web.Application, port: int) -> str:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, self.bind_address, port).start()
        host, bound = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{bound}"

    async def start(self) -> None:
        shared = self.metrics_port == self.health_port and self.health_port != 0
        health = web.Application()
        self._health_routes(health)
        if shared:
            self._metrics_routes(health)
        self.health_url = await self._serve(health, self.health_port)
        if shared:
            self.metrics_url = self.health_url
            return
        metrics = web.Application()
        self._metrics_routes(metrics)
        self.metrics_url = await self._serve(metrics, self.metrics_port)

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners = []
