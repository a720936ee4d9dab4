"""hack/gen-secrets.py makes etcd Secrets that a real etcd serves with and KubeLLM connects with."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import yaml
from cryptography import x509

from kubellm.registry.storage.etcd import EtcdConfig, EtcdStorage
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd, EtcdTLS

ROOT = Path(__file__).resolve().parents[2]


async def test_generated_etcd_secrets_work_with_a_real_etcd(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "hack" / "gen-secrets.py"), "--out", str(tmp_path / "ca"),  # noqa: ASYNC221
                          "--etcd-replicas", "3"], capture_output=True, text=True, check=True, timeout=60).stdout
    secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all(out)}
    assert set(secrets) == {"etcd-server-tls", "kubellm-etcd-client"}
    assert "ca.key" not in out and "PRIVATE KEY" not in base64.b64decode(secrets["etcd-server-tls"]["data"]["ca.crt"]
                                                                        ).decode()
    files: dict[str, Path] = {}
    for name, doc in secrets.items():
        for key, value in doc["data"].items():
            path = tmp_path / f"{name}-{key}"
            path.write_bytes(base64.b64decode(value))
            path.chmod(0o600)
            files[f"{name}/{key}"] = path
    cert = x509.load_pem_x509_certificate(files["etcd-server-tls/tls.crt"].read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert {"etcd-0.etcd", "etcd-2.etcd.kubellm-system.svc"} <= set(sans)
    tls = EtcdTLS(files["etcd-server-tls/ca.crt"], files["etcd-server-tls/tls.crt"], files["etcd-server-tls/tls.key"],
                  files["kubellm-etcd-client/tls.crt"], files["kubellm-etcd-client/tls.key"])
    etcd = EmbeddedEtcd(tmp_path / "data", tls=tls)
    endpoint = await etcd.start()
    storage = EtcdStorage(EtcdConfig(endpoints=(endpoint,), prefix="/install", ca_file=str(tls.ca_file),
                                     cert_file=str(tls.client_cert), key_file=str(tls.client_key)))
    try:
        await storage.create("/x/y", {"metadata": {"name": "y"}})
        assert (await storage.get("/x/y"))["metadata"]["name"] == "y"
    finally:
        await storage.close()
        await etcd.stop()
