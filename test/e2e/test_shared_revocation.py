"""Token revocation across replicas (issue #12, item 7): a token logged out on one instance is refused by the
other within its watch delay, and still after that instance restarts (revocations live in etcd, not in one
process's memory); the stored revocation is bounded by the token's lifetime."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from instances import Instance, admin_password, etcd_flags, shared_flags
from polling import until

from kubellm.app.encryption import default_config
from kubellm.app.etcd_pki import ensure_etcd_pki
from kubellm.registry.storage.etcd import EtcdStorage
from kubellm.registry.storage.etcd.config import EtcdConfig
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd
from kubellm.registry.storage.interface import ListOptions
from kubellm.server.certs import ensure_pki

USERS = "/apis/iam.kubellm.io/v1alpha1/users"
REVOCATIONS = "/iam.kubellm.io/tokenrevocations/"


def accepted(instance: Instance, token: str) -> bool:
    code, body = instance.request("GET", USERS, token=token)
    assert code in (200, 401), (code, body)
    return code == 200


async def test_a_token_revoked_on_one_instance_is_refused_by_the_other(tmp_path: Path) -> None:
    tls = ensure_etcd_pki(tmp_path / "etcd-pki")
    etcd = EmbeddedEtcd(tmp_path / "etcd", tls=tls)
    await etcd.start()
    pki = ensure_pki(tmp_path / "shared-pki", ["127.0.0.1", "localhost"])
    encryption = tmp_path / "encryption-config.yaml"
    encryption.write_text(yaml.safe_dump(default_config()))
    common = [*etcd_flags(etcd, tls), *shared_flags(pki, encryption), "--token-ttl-seconds", "600"]
    admin_cert = (pki.admin.cert, pki.admin.key)
    instances: list[Instance] = []
    try:
        a = Instance.start(tmp_path / "a", *common, ca=pki.serving_ca, cert=admin_cert)
        instances.append(a)
        b = Instance.start(tmp_path / "b", *common, ca=pki.serving_ca, cert=admin_cert)
        instances.append(b)
        password = admin_password(a.state)
        token, other = a.login("admin", password), b.login("admin", password)
        assert accepted(a, token) and accepted(b, token)

        code, body = a.request("POST", "/logout", token=token)
        assert code == 200, body
        assert not accepted(a, token)  # at once where it was revoked
        until(lambda: not accepted(b, token), 10, "instance B refuses the token revoked on A")
        assert accepted(b, other) and accepted(a, other)  # only that token

        # revoked on B, refused on A
        code, body = b.request("POST", "/logout", token=other)
        assert code == 200, body
        until(lambda: not accepted(a, other), 10, "instance A refuses the token revoked on B")

        # the revocations survive a restart (the list at start-up)
        instances.remove(b)
        assert b.stop() == 0
        b = Instance.start(tmp_path / "b", *common, ca=pki.serving_ca, cert=admin_cert)
        instances.append(b)
        assert not accepted(b, token) and not accepted(b, other)
        fresh = b.login("admin", password)
        assert accepted(a, fresh) and accepted(b, fresh)

        # stored in etcd, one key per token, kept no longer than the token could verify
        storage = EtcdStorage(EtcdConfig(endpoints=(etcd.endpoint,), prefix="/registry", ca_file=str(tls.ca_file),
                                         cert_file=str(tls.client_cert), key_file=str(tls.client_key)))
        try:
            listed = await storage.get_list(REVOCATIONS, ListOptions())
        finally:
            await storage.close()
        assert len(listed.items) == 2
        for item in listed.items:
            assert time.time() < item["until"] <= time.time() + 600 + 30 + 5
    finally:
        for instance in instances:
            instance.stop()
        await etcd.stop()
