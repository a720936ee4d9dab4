"""A small HTTPS server on loopback, in its own thread, for peers the tests need (an OpenID provider,
a host cluster's published ConfigMap)."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web

from kubellm.registry.storage.etcd.embedded import free_port
from kubellm.server.certs import PKI

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LoopbackHTTPS:
    def __init__(self, pki: PKI, routes: dict[str, Handler]) -> None:
        self.pki = pki
        self.routes = routes
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()

    def start(self) -> None:
        app = web.Application()
        for path, handler in self.routes.items():
            app.router.add_get(path, handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.pki.serving.cert), str(self.pki.serving.key))

        async def serve() -> None:
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=ctx).start()
            self._ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        assert self._ready.wait(10), "the loopback HTTPS server did not start"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
