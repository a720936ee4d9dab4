"""Shared fixtures: one real etcd per test session, started by the project's own EmbeddedEtcd."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from etcd_access import EtcdAccess

from kubellm.app.etcd_pki import ensure_etcd_pki
from kubellm.registry.registry import ALL_RESOURCES
from kubellm.registry.storage.cacher import CachedStorage
from kubellm.registry.storage.etcd import EtcdStorage
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd
from kubellm.registry.store import resource_root


@pytest.fixture(scope="session")
async def etcd(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EtcdAccess]:
    base = Path(tmp_path_factory.mktemp("etcd"))
    tls = ensure_etcd_pki(base / "pki")
    server = EmbeddedEtcd(base / "data", progress_notify_interval="1s", tls=tls)
    endpoint = await server.start()
    try:
        yield EtcdAccess(endpoint, tls)
    finally:
        await server.stop()


class CachedForTests(CachedStorage):
    """The watch cache over etcd; tests that reach into the etcd backend (compactor, client) still can."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


CACHED_ROOTS = ["/g/things/", "/g/thingsX/", "/g/other/", "/g/nothing/",
                *(resource_root(info) for info in ALL_RESOURCES)]


@pytest.fixture
async def etcd_storage(etcd: EtcdAccess) -> AsyncIterator[EtcdStorage]:
    """etcd itself on its own key prefix (for tests that build their own cache over it)."""
    s = EtcdStorage(etcd.config(f"/test-{uuid.uuid4().hex[:12]}", compaction_interval=0))
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=["etcd", "cached"])
async def storage(request: pytest.FixtureRequest, etcd: EtcdAccess) -> AsyncIterator[EtcdStorage]:
    """A storage on its own key prefix, so tests never see each other's objects: etcd itself, and the
    watch cache in front of it (the same contract must hold for both)."""
    s = EtcdStorage(etcd.config(f"/test-{uuid.uuid4().hex[:12]}", compaction_interval=0))
    if request.param == "etcd":
        try:
            yield s
        finally:
            await s.close()
        return
    cached = CachedForTests(s, CACHED_ROOTS)
    cached.start()
    await cached.wait_ready()
    try:
        yield cached  # type: ignore[misc]
    finally:
        await cached.close()
