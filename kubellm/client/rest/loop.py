"""The blocking flavour's engine: the asyncio code of the clients, run on a private event loop in a thread.

A blocking client owns one `LoopThread`; each call submits its coroutine there and waits for the result,
so both flavours share one implementation (and one connection pool per client). Deadlines are enforced
inside the coroutines. Calling a blocking client from its own loop thread (for example from an informer
handler started by a blocking factory) would deadlock: it raises instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class LoopThread:
    """An event loop running in a daemon thread until `close()`."""

    def __init__(self, name: str = "kubellm-client") -> None:
        self.loop = new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        self._closed = False

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    @property
    def in_thread(self) -> bool:
        return threading.get_ident() == self._thread.ident

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self._closed:
            coro.close()
            raise RuntimeError("the client is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for its result (its exception is raised here)."""
        if self.in_thread:
            coro.close()
            raise RuntimeError("a blocking client was called from its own event loop thread (an informer "
                               "handler?): use the asyncio client there")
        future = self.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def iterate(self, source: AsyncIterator[T]) -> Iterator[T]:
        """A blocking iterator over an async iterator that lives on the loop."""

        async def next_item() -> T:
            return await anext(source)

        async def close() -> None:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

        try:
            while True:
                try:
                    item = self.run(next_item())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            if not self._closed:
                with contextlib.suppress(Exception):
                    self.run(close())

    def call_soon(self, awaitable: Awaitable[Any]) -> None:
        async def wrap() -> None:
            await awaitable

        self.submit(wrap())

    def close(self, cleanup: Coroutine[Any, Any, Any] | None = None) -> None:
        """Run `cleanup` (closing sessions), cancel what is left, stop the loop and join the thread."""
        if self._closed:
            if cleanup is not None:
                cleanup.close()
            return
        if cleanup is not None:
            with contextlib.suppress(Exception):
                self.run(cleanup)

        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_rest())
        self._closed = True
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()
