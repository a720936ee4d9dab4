"""Two replicas on one etcd (issue #12, item 1): with different state directories but the same mounted
encryption configuration, client CA and serving certificate, both start, both read the Clusters encrypted at
rest, and each accepts the tokens the other issued (the signing key ring is in etcd, encrypted by the shared
key). A replica whose key cannot decrypt what is stored, or whose CA or certificate file is unusable, refuses
to start with one line naming the flag, not a traceback."""

from __future__ import annotations

from pathlib import Path

import yaml
from instances import Instance, admin_password, etcd_flags, failed_start, launch, shared_flags

from kubellm.app.encryption import default_config
from kubellm.app.etcd_pki import ensure_etcd_pki
from kubellm.registry.storage.etcd import EtcdStorage
from kubellm.registry.storage.etcd.client import b64, unb64
from kubellm.registry.storage.etcd.config import EtcdConfig
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd
from kubellm.server.certs import ensure_pki

CLUSTERS = "/apis/cluster.kubellm.io/v1alpha1/clusters"
CLUSTER = {"apiVersion": "cluster.kubellm.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "gpu-east"},
           "spec": {"apiEndpoint": "https://10.0.0.1:6443", "credentials": {"token": "shared-keys-member-token"}}}


def one_line_error(output: str, flag: str) -> None:
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and flag in errors[0], output


async def test_two_instances_share_keys_and_a_wrong_key_is_refused(tmp_path: Path) -> None:
    tls = ensure_etcd_pki(tmp_path / "etcd-pki")
    etcd = EmbeddedEtcd(tmp_path / "etcd", tls=tls)
    await etcd.start()
    pki = ensure_pki(tmp_path / "shared-pki", ["127.0.0.1", "localhost"])
    encryption = tmp_path / "encryption-config.yaml"
    encryption.write_text(yaml.safe_dump(default_config()))
    common = [*etcd_flags(etcd, tls), *shared_flags(pki, encryption)]
    admin_cert = (pki.admin.cert, pki.admin.key)
    instances: list[Instance] = []
    try:
        a = Instance.start(tmp_path / "a", *common, ca=pki.serving_ca, cert=admin_cert)
        instances.append(a)
        b = Instance.start(tmp_path / "b", *common, ca=pki.serving_ca, cert=admin_cert)
        instances.append(b)

        # a Cluster written through A is encrypted at rest and read through B
        code, body = a.request("POST", CLUSTERS, CLUSTER)
        assert code == 201, body
        code, body = b.request("GET", f"{CLUSTERS}/gpu-east")
        assert code == 200 and body["spec"]["apiEndpoint"] == "https://10.0.0.1:6443", body
        raw = EtcdStorage(EtcdConfig(endpoints=(etcd.endpoint,), prefix="/registry", ca_file=str(tls.ca_file),
                                     cert_file=str(tls.client_cert), key_file=str(tls.client_key)))
        try:
            kvs = (await raw.client.call("/kv/range", {"key": b64("/registry/cluster.kubellm.io/clusters/gpu-east")}))
            assert unb64(kvs["kvs"][0]["value"]).startswith(b"k8s:enc:aesgcm:v1:")
        finally:
            await raw.close()

        # tokens issued by one are accepted by the other, both ways
        password = admin_password(a.state)  # the admin user is created once, by the first instance
        from_a, from_b = a.login("admin", password), b.login("admin", password)
        assert b.request("GET", CLUSTERS, token=from_a)[0] == 200
        assert a.request("GET", CLUSTERS, token=from_b)[0] == 200

        # a third replica with another key: a clear error naming the flag, not a traceback
        other = tmp_path / "other-encryption-config.yaml"
        other.write_text(yaml.safe_dump(default_config()))
        wrong = [*etcd_flags(etcd, tls), *shared_flags(pki, encryption)[:-1], str(other)]
        proc, log = launch(tmp_path / "c", *wrong)
        code, output = failed_start(proc, log)
        assert code != 0
        one_line_error(output, "--encryption-provider-config")

        # an unreadable client CA, a serving certificate that is not one: the same
        bad_ca = [*common, "--client-ca-file", str(tmp_path / "missing-ca.crt")]
        proc, log = launch(tmp_path / "d", *bad_ca)
        code, output = failed_start(proc, log)
        assert code != 0
        one_line_error(output, "--client-ca-file")
        garbage = tmp_path / "garbage.crt"
        garbage.write_text("not a certificate\n")
        bad_cert = [*common, "--tls-cert-file", str(garbage)]
        proc, log = launch(tmp_path / "e", *bad_cert)
        code, output = failed_start(proc, log)
        assert code != 0
        one_line_error(output, "--tls-cert-file")

        # the replicas that started are unaffected
        assert a.request("GET", f"{CLUSTERS}/gpu-east")[0] == 200
    finally:
        for instance in instances:
            instance.stop()
        await etcd.stop()
