"""With `--workers`: the failed-login ledger of the whole server, kept by the supervisor, asked by the workers
over a Unix socket (one JSON line a request and one an answer).

Lockouts and the per-source throttle count every failure the server saw, whichever worker took it, as one
process does. The socket is in a directory only this user can enter (mode 0700). A worker that cannot reach
the ledger within `DEADLINE` answers the login with 503 rather than let the attempt through uncounted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import structlog

from kubellm.apis import errors
from kubellm.app.lockout import LocalLedger

log = structlog.get_logger(__name__)

DEADLINE = 2.0
MAX_LINE = 4096
"""Usernames are at most 253 bytes and addresses shorter: a longer line is not a worker's."""


async def serve(ledger: LocalLedger, path: Path) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    answer = await ledger.handle(json.loads(line))
                except (KeyError, TypeError, ValueError) as exc:
                    answer = {"error": str(exc)[:200]}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return await asyncio.start_unix_server(handle, path, limit=MAX_LINE)


class RemoteLedger:
    """The supervisor's ledger, through one connection (logins are rare; one request at a time on it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            try:
                async with asyncio.timeout(DEADLINE):
                    if self._conn is None:
                        self._conn = await asyncio.open_unix_connection(self.path, limit=MAX_LINE)
                    reader, writer = self._conn
                    writer.write(json.dumps(request).encode() + b"\n")
                    await writer.drain()
                    answer: dict[str, Any] = json.loads(await reader.readuntil(b"\n"))
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                self.close()
                log.error("the login ledger did not answer", error=type(exc).__name__)
                raise errors.service_unavailable("logins are unavailable; try again") from exc
            if "error" in answer:
                raise errors.service_unavailable("logins are unavailable; try again")
            return answer

    async def check(self, name: str, source: str, now: float) -> tuple[int, float]:
        answer = await self._call({"op": "check", "name": name, "source": source, "now": now})
        return int(answer["retry"]), float(answer["locked"])

    async def failed(self, name: str, source: str, now: float) -> None:
        await self._call({"op": "failed", "name": name, "source": source, "now": now})

    async def succeeded(self, name: str) -> None:
        await self._call({"op": "succeeded", "name": name})

    def close(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None
