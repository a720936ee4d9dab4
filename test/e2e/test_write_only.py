"""Write-only fields never come back: cluster credentials and password hashes, in every response form."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from conftest import APIServer
from test_authentication import request
from test_authorization import admin

CLUSTERS = "/apis/cluster.kubellm.io/v1alpha1/clusters"
SECRET = "s3cr3t-t0ken-value"


def cluster(name: str, token: str | None = SECRET) -> dict[str, Any]:
    spec: dict[str, Any] = {"apiEndpoint": "https://10.0.0.1:6443", "region": "cn-east"}
    if token:
        spec["credentials"] = {"token": token}
    return {"apiVersion": "cluster.kubellm.io/v1alpha1", "kind": "Cluster", "metadata": {"name": name}, "spec": spec}


def test_cluster_credentials_are_write_only(apiserver: APIServer, tmp_path: Path) -> None:
    me = admin(apiserver)
    code, rv_list = request(apiserver, "GET", CLUSTERS, me)
    rv = rv_list["metadata"]["resourceVersion"]
    seen: list[str] = []
    host, port = apiserver.url.removeprefix("https://").rsplit(":", 1)

    def watch() -> None:
        import http.client

        from test_authentication import context

        conn = http.client.HTTPSConnection(host, int(port), context=context(apiserver, me), timeout=10)
        conn.request("GET", f"{CLUSTERS}?watch=true&resourceVersion={rv}&timeoutSeconds=3")
        resp = conn.getresponse()
        seen.append(resp.read().decode())
        conn.close()

    t = threading.Thread(target=watch)
    t.start()
    code, created = request(apiserver, "POST", CLUSTERS, me, body=cluster("gpu-wo"))
    assert code == 201 and "credentials" not in created["spec"], created
    code, got = request(apiserver, "GET", f"{CLUSTERS}/gpu-wo", me)
    assert "credentials" not in got["spec"]
    code, listed = request(apiserver, "GET", CLUSTERS, me)
    assert all("credentials" not in i["spec"] for i in listed["items"])
    # an update that does not send credentials keeps them (it is accepted: they are required)
    got["spec"]["region"] = "cn-north"
    code, updated = request(apiserver, "PUT", f"{CLUSTERS}/gpu-wo", me, body=got)
    assert code == 200 and updated["spec"]["region"] == "cn-north" and "credentials" not in updated["spec"]
    t.join(10)
    assert seen and "gpu-wo" in seen[0]
    for body in (json.dumps(created), json.dumps(got), json.dumps(listed), json.dumps(updated), seen[0]):
        assert SECRET not in body
    log = apiserver.log.read_text()
    assert SECRET not in log


def test_cluster_credentials_are_encrypted_in_etcd(apiserver: APIServer) -> None:
    import base64
    import urllib.request

    request(apiserver, "POST", CLUSTERS, admin(apiserver), body=cluster("gpu-enc"))
    endpoint = next(json.loads(line)["endpoint"] for line in apiserver.log.read_text().splitlines()
                    if line.startswith("{") and json.loads(line).get("event") == "etcd ready")
    key = base64.b64encode(b"/registry/cluster.kubellm.io/clusters/gpu-enc").decode()
    req = urllib.request.Request(f"{endpoint}/v3/kv/range", data=json.dumps({"key": key}).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        value = base64.b64decode(json.loads(resp.read())["kvs"][0]["value"])
    assert value.startswith(b"k8s:enc:aesgcm:v1:")
    assert SECRET.encode() not in value and b"gpu-enc" not in value


def test_admin_user_bootstrap_and_password_rules(apiserver: APIServer) -> None:
    import stat

    creds = apiserver.state_dir / "admin-credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    lines = dict(line.split(": ", 1) for line in creds.read_text().splitlines())
    assert lines["username"] == "admin" and len(lines["password"]) >= 24
    me = admin(apiserver)
    code, user = request(apiserver, "GET", "/apis/iam.kubellm.io/v1alpha1/users/admin", me)
    assert code == 200 and user["spec"]["groups"] == ["system:masters"]
    assert "password" not in user["spec"] and "passwordHash" not in user["spec"]
    assert lines["password"] not in json.dumps(user)

    weak = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "User", "metadata": {"name": "weakling"},
            "spec": {"email": "w@example.com", "password": "weakling1"}}
    code, body = request(apiserver, "POST", "/apis/iam.kubellm.io/v1alpha1/users", me, body=weak)
    assert code == 422, body
    assert "spec.password: Invalid value: must be at least 12 characters long" in body["message"]
    assert "weakling1" not in json.dumps(body)
    strong = {**weak, "metadata": {"name": "strong"},
              "spec": {"email": "s@example.com", "password": "correct horse battery staple"}}
    code, body = request(apiserver, "POST", "/apis/iam.kubellm.io/v1alpha1/users", me, body=strong)
    assert code == 201 and "passwordHash" not in body["spec"] and "password" not in body["spec"]
    assert "correct horse" not in apiserver.log.read_text()
