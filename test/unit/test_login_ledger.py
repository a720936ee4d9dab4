"""The supervisor's failed-login ledger and the workers' client of it, over a real Unix socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kubellm.apis import errors
from kubellm.app import ledger
from kubellm.app.lockout import FailureTracker, LocalLedger, SourceThrottle


def test_two_workers_count_into_one_ledger(tmp_path: Path) -> None:
    async def run() -> None:
        path = tmp_path / "login.sock"
        server = await ledger.serve(LocalLedger(FailureTracker(3, 60), SourceThrottle(4)), path)
        a, b = ledger.RemoteLedger(path), ledger.RemoteLedger(path)
        for i, worker in enumerate([a, b, a]):
            assert await worker.check("eve", "10.0.0.1", 100.0 + i) == (0, 0.0)
            await worker.failed("eve", "10.0.0.1", 100.0 + i)
        retry, locked = await b.check("eve", "10.0.0.2", 103.0)
        assert retry == 0 and locked == pytest.approx(59.0)  # locked at the third failure (102), for 60 s
        await b.failed("mallory", "10.0.0.1", 104.0)  # the fourth failure from that address
        assert (await a.check("anyone", "10.0.0.1", 105.0))[0] > 0
        await a.succeeded("eve")
        assert (await b.check("eve", "10.0.0.2", 106.0))[1] == 0.0
        # a malformed line is answered with an error, and the connection keeps working
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b'{"op": "nonsense", "name": "x"}\n["not", "an", "object"]\n')
        assert b"error" in await reader.readline() and b"error" in await reader.readline()
        writer.close()
        server.close()
        await server.wait_closed()
        a.close()
        with pytest.raises(errors.StatusError) as caught:  # the supervisor is gone: no login goes uncounted
            await a.check("eve", "10.0.0.1", 107.0)
        assert caught.value.code == 503

    asyncio.run(run())
