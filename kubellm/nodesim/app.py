"""kubellm-nodesim: registers the GPU nodes, keeps their heartbeats, plays the kubelet for their pods and
serves the queue-length metric, until SIGTERM or SIGINT (then it stops its tasks and exits 0).

It talks to the cluster only through KubeLLM's clientset (`kubellm.client`: the asyncio dynamic client and
a dynamic informer); an import-linter contract keeps it away from the server side. The RBAC it needs is
`kubellm.nodesim.rbac`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from kubellm.client import AsyncDynamicClient, ClientError, Config
from kubellm.nodesim import metrics, options
from kubellm.nodesim.frontproxy import Authorizer, read_settings
from kubellm.nodesim.nodes import NodeAgent
from kubellm.nodesim.pods import PodAgent

log = logging.getLogger("kubellm.nodesim")
T = TypeVar("T")
STARTUP_RETRY_SECONDS = 60.0


async def retrying(what: str, step: Callable[[], Awaitable[T]], deadline: float) -> T:
    """`step()`, tried again while the cluster is unreachable or refuses, until `deadline` (monotonic)."""
    delay = 0.2
    while True:
        try:
            return await step()
        except (ClientError, OSError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.info("%s failed (%s); again in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def serve_metrics(client: AsyncDynamicClient, opts: options.Options, pods: PodAgent, ca_pem: bytes,
                        deadline: float) -> web.AppRunner:
    settings = await retrying("reading the front-proxy settings", lambda: read_settings(client), deadline)
    api = metrics.MetricsAPI(pods.informer.indexer, lambda node: node in pods.nodes, opts.queue_length, settings,
                             Authorizer(client))
    runner = web.AppRunner(api.app(), access_log=None)
    await runner.setup()
    m = opts.metrics
    await web.TCPSite(runner, "127.0.0.1", m.port, ssl_context=settings.ssl_context(m.cert_file, m.key_file)).start()
    await retrying("registering the metrics APIService", lambda: metrics.register(client, m, ca_pem), deadline)
    log.info("serving %s on 127.0.0.1:%d as %s", options.METRIC, m.port, metrics.APISERVICE_NAME)
    return runner


async def run(opts: options.Options, stop: asyncio.Event, ca_pem: bytes = b"") -> None:
    """Run until `stop` is set; `ca_pem` is the metrics server's CA (the APIService caBundle)."""
    config = Config.from_kubeconfig(opts.kubeconfig or None, user_agent="kubellm-nodesim/0.1.0")
    deadline = time.monotonic() + STARTUP_RETRY_SECONDS
    async with AsyncDynamicClient(config) as client:
        nodes = NodeAgent(client, opts)
        await retrying("registering the nodes", nodes.register, deadline)
        tasks = [asyncio.create_task(nodes.run_leases(), name="leases"),
                 asyncio.create_task(nodes.run_status(), name="node-status")]
        pods = PodAgent(client, opts, nodes.nodes)
        runner: web.AppRunner | None = None
        try:
            await pods.start()
            if opts.metrics.port:
                runner = await serve_metrics(client, opts, pods, ca_pem, deadline)
            log.info("ready: %d nodes (%s)", len(nodes.nodes), ", ".join(n.name for n in nodes.nodes))
            stopped = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stopped and t.exception() is not None:
                    raise RuntimeError(f"{t.get_name()} failed") from t.exception()
            stopped.cancel()
        finally:
            log.info("stopping")
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await pods.stop()
            if runner is not None:
                await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    opts = options.parse(argv)
    logging.basicConfig(level=opts.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    ca_pem = Path(opts.metrics.ca_file).read_bytes() if opts.metrics.port else b""

    async def main_async() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(opts, stop, ca_pem)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async())
    return 0
