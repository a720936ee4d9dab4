"""Token revocations shared by every instance on one etcd.

`/logout` revokes a token by its `jti`. The revocation is written to etcd, one key per token under
`/iam.kubellm.io/tokenrevocations/<jti>` holding the moment after which the token could not verify anyway
(`TokenIssuer.accepted_until`), and every instance keeps the whole prefix in memory by a list and a watch
(`InMemoryRevocations`), so checking a token stays a dictionary lookup. A token revoked on one instance is
refused on the others as soon as their watch delivers the key (milliseconds; after an etcd outage, once the
watch is re-established), and after a restart (the list). A periodic job deletes the keys whose tokens have
expired: the prefix holds at most the tokens revoked within one token lifetime.

While the watch is down the instance keeps what it knew; `/readyz/token-revocations` fails until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any

import structlog

from kubellm.registry.storage import errors as serr
from kubellm.registry.storage.interface import ListOptions, Storage, WatchOptions
from kubellm.registry.storage.tasks import cancel_and_wait
from kubellm.service.tokens import InMemoryRevocations

log = structlog.get_logger(__name__)

PREFIX = "/iam.kubellm.io/tokenrevocations/"
JTI = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


class RevocationsNotSynced(Exception):
    """The instance is not watching the shared revocations (it may accept a token revoked elsewhere)."""


class SharedRevocations:
    def __init__(self, storage: Storage, memory: InMemoryRevocations, *, retry_delay: float = 0.5,
                 max_retry_delay: float = 30.0) -> None:
        self.storage = storage
        self.memory = memory
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.synced = asyncio.Event()
        """Set while the prefix is listed and watched."""
        self._task: asyncio.Task[None] | None = None
        self._delay = retry_delay

    # --- writing -----------------------------------------------------------------------------------

    async def revoke(self, jti: str, until: float) -> None:
        """Revoke `jti` here at once and, through etcd, on every instance (returns once etcd has it)."""
        self.memory.revoke(jti, until)
        if not JTI.match(jti):  # never for this server's tokens; not a key to write
            log.warning("token revocations: a token id of unexpected form is revoked here only")
            return
        with contextlib.suppress(serr.KeyExists):  # revoked before (a second logout with the same token)
            await self.storage.create(PREFIX + jti, {"metadata": {"name": jti}, "until": until})

    async def prune(self, now: float | None = None) -> int:
        """Delete the stored revocations of tokens that have expired; forget them in memory. How many."""
        at = time.time() if now is None else now
        self.memory.prune()
        listed = await self.storage.get_list(PREFIX, ListOptions())
        deleted = 0
        for item in listed.items:
            if _until(item) > at:
                continue
            try:
                await self.storage.delete(PREFIX + str(item["metadata"]["name"]))
                deleted += 1
            except serr.KeyNotFound:
                pass  # another instance pruned it first
        return deleted

    # --- following ---------------------------------------------------------------------------------

    def _learn(self, obj: dict[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if isinstance(name, str) and name:
            self.memory.revoke(name, _until(obj))

    async def _sync(self) -> None:
        listed = await self.storage.get_list(PREFIX, ListOptions())
        for item in listed.items:
            self._learn(item)
        watcher = await self.storage.watch(PREFIX, WatchOptions(resource_version=listed.resource_version))
        self.synced.set()
        self._delay = self.retry_delay
        try:
            async for event in watcher:
                if event.type in ("ADDED", "MODIFIED"):
                    self._learn(event.object)
        finally:
            await watcher.close()
        raise serr.Unavailable(message="the watch of the token revocations ended")

    async def _run(self) -> None:
        self._delay = self.retry_delay
        while True:
            try:
                await self._sync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("token revocations: watch failed; retrying", error=type(exc).__name__,
                            detail=str(exc)[:200], retry_in=self._delay)
            self.synced.clear()
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, self.max_retry_delay)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="token-revocations")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self.synced.clear()

    async def check(self) -> None:
        """For /readyz: raise unless the shared revocations are being watched."""
        if self._task is None or self._task.done():
            raise RevocationsNotSynced("the token revocations are not followed")
        if not self.synced.is_set():
            raise RevocationsNotSynced("the watch of the token revocations is down")


def _until(obj: dict[str, Any]) -> float:
    value = obj.get("until")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
