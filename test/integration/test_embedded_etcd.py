"""The embedded etcd is reachable only with KubeLLM's client certificate (issue: any local user could
read password hashes and write RBAC objects through an unauthenticated loopback etcd)."""

from __future__ import annotations

import ssl
import stat

import aiohttp
import pytest
from etcd_access import EtcdAccess

RANGE = {"key": "AA==", "range_end": "AA=="}  # every key


async def post(endpoint: str, ctx: ssl.SSLContext | bool) -> int:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session, \
            session.post(f"{endpoint}/v3/kv/range", json=RANGE, timeout=aiohttp.ClientTimeout(total=5)) as resp:
        return resp.status


async def test_plain_http_is_refused(etcd: EtcdAccess) -> None:
    assert etcd.endpoint.startswith("https://")
    plain = etcd.endpoint.replace("https://", "http://")
    with pytest.raises((aiohttp.ClientError, ConnectionError)):
        await post(plain, False)


async def test_tls_without_a_client_certificate_is_refused(etcd: EtcdAccess) -> None:
    ctx = ssl.create_default_context(cafile=str(etcd.tls.ca_file))
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await post(etcd.endpoint, ctx)


async def test_a_certificate_from_another_ca_is_refused(etcd: EtcdAccess,
                                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    from kubellm.app.etcd_pki import ensure_etcd_pki

    rogue = ensure_etcd_pki(tmp_path_factory.mktemp("rogue"))
    ctx = ssl.create_default_context(cafile=str(etcd.tls.ca_file))
    ctx.load_cert_chain(str(rogue.client_cert), str(rogue.client_key))
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await post(etcd.endpoint, ctx)


async def test_kubellm_client_certificate_is_accepted(etcd: EtcdAccess) -> None:
    ctx = ssl.create_default_context(cafile=str(etcd.tls.ca_file))
    ctx.load_cert_chain(str(etcd.tls.client_cert), str(etcd.tls.client_key))
    assert await post(etcd.endpoint, ctx) == 200


def test_keys_are_private(etcd: EtcdAccess) -> None:
    for key in (etcd.tls.server_key, etcd.tls.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(etcd.tls.ca_file.parent.stat().st_mode) == 0o700


async def test_the_server_checks_etcds_name(etcd: EtcdAccess) -> None:
    """KubeLLM verifies etcd's certificate, host name included (the client sets it up itself; etcd3-py left it off)."""
    from kubellm.registry.storage.etcd import EtcdStorage

    storage = EtcdStorage(etcd.config("/names"))
    try:
        ctx = storage.client.ssl_context
        assert ctx is not None
        assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
        await storage.check_health()
    finally:
        await storage.close()
