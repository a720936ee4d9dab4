"""Encryption at rest: values of encrypted resources are ciphertext in etcd and read back as before."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from etcd_access import EtcdAccess

from kubellm.app.encryption import EncryptionConfigError, load, parse
from kubellm.registry.storage import errors
from kubellm.registry.storage.etcd import EtcdStorage
from kubellm.registry.storage.etcd.client import b64, unb64
from kubellm.registry.storage.interface import ListOptions, WatchOptions
from kubellm.registry.storage.value import AESGCMTransformer, PrefixTransformers

SECRET = "very-secret-token-value"
K1 = base64.b64encode(b"1" * 32).decode()
K2 = base64.b64encode(b"2" * 32).decode()


def config(*keys: tuple[str, str], identity_first: bool = False) -> dict[str, object]:
    aes = {"aesgcm": {"keys": [{"name": n, "secret": s} for n, s in keys]}}
    providers = [{"identity": {}}, aes] if identity_first else [aes, {"identity": {}}]
    return {"kind": "EncryptionConfiguration", "resources": [{"resources": ["secrets.g"], "providers": providers}]}


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    yield f"/enc-{uuid.uuid4().hex[:8]}"


def storage(etcd: EtcdAccess, prefix: str, values: PrefixTransformers) -> EtcdStorage:
    return EtcdStorage(etcd.config(prefix, compaction_interval=0), values)


async def raw_value(s: EtcdStorage, key: str) -> bytes:
    resp = await s.client.call("/kv/range", {"key": b64(s.full_key(key))})
    return unb64(resp["kvs"][0]["value"])


def thing(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"token": SECRET}}


async def test_encrypted_at_rest_and_readable(etcd: EtcdAccess, prefix: str) -> None:
    s = storage(etcd, prefix, parse(config(("key1", K1))))
    try:
        rv = await s.current_revision()
        watcher = await s.watch("/g/secrets/", WatchOptions(resource_version=str(rv)))
        await s.create("/g/secrets/a", thing("a"))
        await s.create("/g/plain/a", thing("a"))
        raw = await raw_value(s, "/g/secrets/a")
        assert raw.startswith(b"k8s:enc:aesgcm:v1:key1:") and SECRET.encode() not in raw
        assert SECRET.encode() in await raw_value(s, "/g/plain/a")  # other resources are not encrypted
        assert (await s.get("/g/secrets/a"))["spec"] == {"token": SECRET}
        assert [o["spec"] for o in (await s.get_list("/g/secrets/", ListOptions())).items] == [{"token": SECRET}]
        async with asyncio.timeout(5):
            ev = await anext(aiter(watcher))
        assert ev.object["spec"] == {"token": SECRET}
        await watcher.close()

        async def bump(o: dict[str, object]) -> dict[str, object]:
            return {**o, "spec": {"token": SECRET, "n": 1}}

        await s.guaranteed_update("/g/secrets/a", bump)
        assert SECRET.encode() not in await raw_value(s, "/g/secrets/a")
    finally:
        await s.close()


async def test_key_rotation_and_tampering(etcd: EtcdAccess, prefix: str) -> None:
    old = storage(etcd, prefix, parse(config(("key1", K1))))
    await old.create("/g/secrets/a", thing("a"))
    rotated = storage(etcd, prefix, parse(config(("key2", K2), ("key1", K1))))
    try:
        assert (await rotated.get("/g/secrets/a"))["spec"] == {"token": SECRET}  # old key still decrypts
        await rotated.create("/g/secrets/b", thing("b"))
        assert (await raw_value(rotated, "/g/secrets/b")).startswith(b"k8s:enc:aesgcm:v1:key2:")
        # a server without key2 cannot read what key2 wrote
        with pytest.raises(errors.Unavailable):
            await old.get("/g/secrets/b")
        # a value moved under another key fails authentication (the key is associated data)
        moved = await raw_value(rotated, "/g/secrets/a")
        await rotated.client.call("/kv/put", {"key": b64(rotated.full_key("/g/secrets/c")), "value": b64(moved)})
        with pytest.raises(errors.Unavailable):
            await rotated.get("/g/secrets/c")
        # plaintext written before encryption was turned on is still read
        await rotated.client.call("/kv/put", {"key": b64(rotated.full_key("/g/secrets/d")),
                                              "value": b64(b'{"metadata":{"name":"d"}}')})
        assert (await rotated.get("/g/secrets/d"))["metadata"]["name"] == "d"
    finally:
        await old.close()
        await rotated.close()


def test_configuration_errors_and_default(tmp_path: Path) -> None:
    with pytest.raises(EncryptionConfigError):
        parse({"resources": [{"resources": ["x.g"], "providers": [{"secretbox": {}}]}]})
    with pytest.raises(EncryptionConfigError):
        parse({"resources": [{"resources": ["x.g"], "providers": [{"aesgcm": {"keys": [{"name": "k",
                                                                                        "secret": "c2hvcnQ="}]}}]}]})
    values = load(None, tmp_path)
    generated = tmp_path / "encryption-config.yaml"
    assert generated.stat().st_mode & 0o777 == 0o600
    assert isinstance(values.for_key("/cluster.kubellm.io/clusters/x"), AESGCMTransformer)
    assert load(None, tmp_path).rules[0][0] == values.rules[0][0]  # reused, not regenerated
