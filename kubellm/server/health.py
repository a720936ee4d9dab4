"""/healthz, /livez and /readyz with named checks, `/readyz/<check>` and `?verbose`, as kube-apiserver."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class HealthCheck:
    name: str
    check: Check


async def _ping() -> None:
    return None


class Health:
    def __init__(self, readiness: list[HealthCheck], liveness: list[HealthCheck] | None = None) -> None:
        """`liveness`: checks that fail only when the process cannot recover by itself (restart it)."""
        ping = HealthCheck("ping", _ping)
        self.checks = {"healthz": [ping, *readiness], "livez": [ping, *(liveness or [])],
                       "readyz": [ping, *readiness]}
        self.shutting_down = False

    async def _run(self, check: HealthCheck) -> str | None:
        try:
            await asyncio.wait_for(check.check(), 5)
        except Exception as exc:
            return f"{type(exc).__name__}"
        return None

    async def ready(self, exclude: frozenset[str] = frozenset()) -> bool:
        """Whether /readyz would pass, leaving out the checks named in `exclude`."""
        checks = [c for c in self.checks["readyz"] if c.name not in exclude]
        results = await asyncio.gather(*(self._run(c) for c in checks))
        return not self.shutting_down and all(r is None for r in results)

    async def handle(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        name = request.match_info.get("check", "")
        checks = self.checks[endpoint]
        if name:
            selected = [c for c in checks if c.name == name]
            if not selected:
                return web.Response(status=404, text="404 page not found\n")
            failure = await self._run(selected[0])
            if failure:
                return web.Response(status=500, text=f"internal server error: {name} check failed\n")
            return web.Response(text="ok")
        excluded = set(request.query.getall("exclude", []))
        lines, failed = [], False
        results = await asyncio.gather(*(self._run(c) for c in checks if c.name not in excluded))
        for c, failure in zip([c for c in checks if c.name not in excluded], results, strict=True):
            failed |= failure is not None
            lines.append(f"[-]{c.name} failed: reason withheld" if failure else f"[+]{c.name} ok")
        if endpoint == "readyz" and self.shutting_down:
            failed = True
            lines.append("[-]shutdown failed: reason withheld")
        lines.extend(f"[+]{name} excluded: ok" for name in sorted(excluded))
        verdict = f"{endpoint} check failed" if failed else f"{endpoint} check passed"
        status = 500 if failed else 200
        if "verbose" in request.query or failed:
            return web.Response(status=status, text="\n".join(lines) + f"\n{verdict}\n")
        return web.Response(status=status, text="ok")

    def install(self, app: web.Application) -> None:
        for endpoint in ("healthz", "livez", "readyz"):
            app.router.add_get(f"/{{endpoint:{endpoint}}}", self.handle)
            app.router.add_get(f"/{{endpoint:{endpoint}}}/{{check}}", self.handle)
