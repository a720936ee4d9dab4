"""The deploy manifests render with kubectl's kustomize and register exactly the served groups."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm.registry.registry import ALL_RESOURCES

ROOT = Path(__file__).resolve().parents[2]


def render(path: str) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is required")
    out = subprocess.run(["kubectl", "kustomize", str(ROOT / path)], capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("path", ["deploy/base", "deploy/overlays/dev"])
def test_manifests_render_and_match_the_served_groups(path: str) -> None:
    docs = render(path)
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "APIService"}
    served = {(r.group, r.version) for r in ALL_RESOURCES if not r.host_kind}
    assert {(s["spec"]["group"], s["spec"]["version"]) for s in services.values()} == served
    for name, svc in services.items():
        assert name == f"{svc['spec']['version']}.{svc['spec']['group']}"
        assert svc["spec"]["service"] == {"name": "kubellm-apiserver", "namespace": "kubellm-system", "port": 443}
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    reader = by_kind[("RoleBinding", "kubellm-apiserver-auth-reader")]
    assert reader["metadata"]["namespace"] == "kube-system"
    deployment = by_kind[("Deployment", "kubellm-apiserver")]
    assert deployment["metadata"]["namespace"] == "kubellm-system"
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    # etcd over TLS with KubeLLM's client certificate, and a NetworkPolicy that lets only KubeLLM reach it
    assert "--etcd-servers=https://etcd-0.etcd:2379" in args
    assert {"--etcd-cafile=/etc/kubellm/etcd/ca.crt", "--etcd-certfile=/etc/kubellm/etcd/tls.crt",
            "--etcd-keyfile=/etc/kubellm/etcd/tls.key"} <= set(args)
    etcd = by_kind[("StatefulSet", "etcd")]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--client-cert-auth" in etcd and "--peer-client-cert-auth" in etcd
    assert not any(a.startswith("--listen-client-urls=http:") for a in etcd)
    policy = by_kind[("NetworkPolicy", "etcd")]["spec"]
    sources = [(rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], rule["ports"][0]["port"])
               for rule in policy["ingress"]]
    assert sources == [("kubellm-apiserver", 2379), ("etcd", 2380)] and policy["policyTypes"] == ["Ingress"]
    if path.endswith("dev"):
        assert all(s["spec"].get("insecureSkipTLSVerify") for s in services.values())
    else:
        assert all("cert-manager.io/inject-ca-from" in s["metadata"]["annotations"] for s in services.values())
