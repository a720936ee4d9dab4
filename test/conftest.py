"""Shared fixtures: one real etcd per test session, started by the project's own EmbeddedEtcd."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubellm.registry.storage.etcd import EtcdConfig, EtcdStorage
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd


@pytest.fixture(scope="session")
async def etcd_endpoint(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    etcd = EmbeddedEtcd(Path(tmp_path_factory.mktemp("etcd")) / "data", progress_notify_interval="1s")
    endpoint = await etcd.start()
    try:
        yield endpoint
    finally:
        await etcd.stop()


@pytest.fixture
async def storage(etcd_endpoint: str) -> AsyncIterator[EtcdStorage]:
    """A storage on its own key prefix, so tests never see each other's objects."""
    s = EtcdStorage(EtcdConfig(endpoints=(etcd_endpoint,), prefix=f"/test-{uuid.uuid4().hex[:12]}",
                               compaction_interval=0))
    try:
        yield s
    finally:
        await s.close()
