"""kubellm-controller-manager: options → config → a Manager that runs until SIGTERM/SIGINT (a second signal
exits at once)."""

from __future__ import annotations

import asyncio
import signal
import sys

import structlog

from kubellm.client.config import ConfigError
from kubellm.controller.manager import logging as mlog
from kubellm.controller.manager.manager import Manager, exit_now
from kubellm.controller.manager.options import Config, Options

log = structlog.get_logger(__name__)


async def run(config: Config) -> int:
    manager = Manager(config)
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            exit_now("a second signal")
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    starting = asyncio.ensure_future(manager.start())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            await stopping
        log.info("shutting down")
        return 0
    except Exception as exc:
        log.error("kubellm-controller-manager failed", error=str(exc), exc_info=not isinstance(exc, TimeoutError))
        return 1
    finally:
        for task in (starting, stopping):
            task.cancel()
        await manager.stop()


def main(argv: list[str] | None = None) -> int:
    options = Options.parse(argv).complete()
    problems = options.validate()
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        config = options.config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    mlog.configure(config.log_format)
    if config.event_loop == "uvloop":
        import uvloop

        return uvloop.run(run(config))
    return asyncio.run(run(config))
