"""The HTTPS listener: a cap on open connections and a TLS handshake timeout.

asyncio's `create_server` accepts every connection the kernel hands it, so enough clients (or one client
opening connections and never speaking) exhaust the process's file descriptors, and then every accept
fails. This listener accepts only while fewer than `--max-open-connections` connections are open,
handshakes included: at the cap it stops accepting, new connections wait in the kernel's backlog (then
are refused by it), and the server keeps working for the connections it has. A TLS handshake must end
within `--tls-handshake-timeout` (a client that connects and sends nothing is dropped then), and so must
the TLS shutdown at the end.

`LimitedSite` plugs it into aiohttp's runner in place of `TCPSite`.
"""

from __future__ import annotations

import asyncio
import errno
import resource
import socket
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from aiohttp import web

from kubellm.server.limits import ServingLimits
from kubellm.server.metrics import OPEN_CONNECTIONS
from kubellm.server.protocol import BoundedRequestHandler, BoundedServer

log = structlog.get_logger("kubellm.server")

RESERVED_FDS = 512
"""File descriptors kept for everything but client connections: etcd, logs, the audit log, watches of etcd."""
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def connection_budget(wanted: int) -> int:
    """How many client connections the process can hold: `wanted`, after raising the soft file-descriptor limit
    as far as the hard one allows, but never more than that limit less RESERVED_FDS for the rest of the server
    (which is also the cap when `wanted` is 0, no cap of ours)."""
    inf = resource.RLIM_INFINITY
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + RESERVED_FDS
    if wanted and soft != inf and soft < need:
        target = need if hard == inf else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == inf:
        return wanted
    budget = max(soft - RESERVED_FDS, 1)
    if wanted and wanted <= budget:
        return wanted
    if wanted:
        log.warning("connections capped by the file descriptor limit", max_open_connections=budget, wanted=wanted)
    return budget


def bind(family: int, address: tuple[Any, ...], *, reuse_port: bool = False) -> socket.socket:
    """A bound TCP socket (IPv6 sockets only for IPv6), not yet listening; with `reuse_port`, one of a group of
    sockets on the same address among which the kernel spreads new connections once they listen (SO_REUSEPORT)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def listen(family: int, address: tuple[Any, ...], backlog: int) -> socket.socket:
    sock = bind(family, address)
    try:
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def bind_group(host: str, port: int, count: int) -> list[list[socket.socket]]:
    """`count` sets of bound sockets, one per address of `host`, all on the same port per address (port 0: the one
    the first set was given), with SO_REUSEPORT: each worker process listens on a set of its own once it is ready
    to serve. Until then its sockets refuse connections, which go to the workers that listen."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    groups: list[list[socket.socket]] = [[] for _ in range(count)]
    try:
        for family, _, _, _, address in dict.fromkeys(infos):
            first = bind(family, address, reuse_port=True)
            groups[0].append(first)
            bound = (address[0], first.getsockname()[1], *address[2:])
            for group in groups[1:]:
                group.append(bind(family, bound, reuse_port=True))
    except OSError:
        for sock in (s for group in groups for s in group):
            sock.close()
        raise
    return groups


def rebind(addresses: list[tuple[int, tuple[Any, ...]]]) -> list[socket.socket]:
    """Fresh bound sockets (SO_REUSEPORT) on these (family, address) pairs."""
    fresh: list[socket.socket] = []
    try:
        for family, address in addresses:
            fresh.append(bind(family, address, reuse_port=True))
    except OSError:
        for sock in fresh:
            sock.close()
        raise
    return fresh


class _Slot:
    """One open connection's place under the cap; released exactly once."""

    __slots__ = ("_release",)

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


class Listener(asyncio.AbstractServer):
    """Listening sockets with an accept loop each, under a shared cap on open connections."""

    def __init__(self, protocol: Callable[[], BoundedRequestHandler], host: str, port: int, *,
                 ssl_context: ssl.SSLContext | None, backlog: int, limits: ServingLimits,
                 sockets: list[socket.socket] | None = None) -> None:
        self._protocol = protocol
        self._given = sockets or []
        self._host, self._port = host, port
        self._ssl = ssl_context
        self._backlog = backlog
        self._limits = limits
        self._cap = limits.max_open_connections
        self._slots = asyncio.Semaphore(self._cap) if self._cap else None
        self.open = 0
        self.sockets: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._serving = False

    # --- asyncio.AbstractServer ---------------------------------------------------------------------

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if self._given:  # bound by the supervisor of workers: listening from now on
            for sock in self._given:
                sock.listen(self._backlog)
                sock.setblocking(False)
            self.sockets = list(self._given)
        else:
            infos = await asyncio.get_running_loop().getaddrinfo(self._host or None, self._port,
                                                                 type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            try:
                for family, _, _, _, address in dict.fromkeys(infos):
                    self.sockets.append(listen(family, address, self._backlog))
            except OSError:
                self.close()
                raise
        self._serving = True
        for sock in self.sockets:
            self._spawn(self._accept(sock))

    async def serve_forever(self) -> None:
        await self.start_serving()
        await asyncio.Event().wait()

    def close(self) -> None:
        self._serving = False
        for task in list(self._tasks):
            task.cancel()
        for sock in self.sockets:
            sock.close()

    async def wait_closed(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- accepting ----------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release(self) -> None:
        self.open -= 1
        OPEN_CONNECTIONS.set(self.open)
        if self._slots is not None:
            self._slots.release()

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._slots is not None:
                await self._slots.acquire()  # at the cap: stop accepting; the kernel's backlog holds the rest
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:
                if self._slots is not None:
                    self._slots.release()
                if exc.errno in _OUT_OF_RESOURCES:
                    log.error("accepting connections failed; retrying in a second", error=str(exc))
                    await asyncio.sleep(1)
                continue
            except BaseException:
                if self._slots is not None:
                    self._slots.release()
                raise
            self.open += 1
            OPEN_CONNECTIONS.set(self.open)
            self._spawn(self._serve(conn, _Slot(self._release)))

    async def _serve(self, conn: socket.socket, slot: _Slot) -> None:
        """The TLS handshake, bounded in time; then the connection is the protocol's, which frees the slot."""

        def protocol() -> BoundedRequestHandler:
            handler = self._protocol()
            handler.on_lost = slot.release
            return handler

        timeout = self._limits.tls_handshake_timeout
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                protocol, conn, ssl=self._ssl, ssl_handshake_timeout=timeout if self._ssl else None,
                ssl_shutdown_timeout=timeout if self._ssl else None)
        except asyncio.CancelledError:
            slot.release()
            raise
        except Exception as exc:  # a failed or timed-out handshake: the loop has closed the socket
            slot.release()
            log.debug("connection dropped before serving", error=str(exc)[:200])


class LimitedSite(web.BaseSite):
    """aiohttp's TCPSite with a `Listener`: capped connections and a TLS handshake timeout."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, ssl_context: ssl.SSLContext | None,
                 backlog: int, limits: ServingLimits, sockets: list[socket.socket] | None = None) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host, self._port = host, port
        self._limits = limits
        self._sockets = sockets

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert isinstance(server, BoundedServer), "LimitedSite needs a BoundedAppRunner"
        listener = Listener(server, self._host, self._port, ssl_context=self._ssl_context, backlog=self._backlog,
                            limits=self._limits, sockets=self._sockets)
        await listener.start_serving()
        self._server = listener
