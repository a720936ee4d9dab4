"""Write-only fields never come back: cluster credentials and password hashes, in every response form."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

from conftest import APIServer, secret
from test_authentication import request
from test_authorization import admin

CLUSTERS = "/apis/cluster.kubellm.io/v1alpha1/clusters"
SECRET = secret("s3cr3t-t0ken-value")


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


def etcd_value(apiserver: APIServer, key: str) -> bytes:
    """The raw stored bytes of `key`, read from the server's embedded etcd with its client certificate."""
    import base64
    import ssl
    import urllib.request

    endpoint = next(json.loads(line)["endpoint"] for line in apiserver.log.read_text().splitlines()
                    if line.startswith("{") and json.loads(line).get("event") == "etcd ready")
    pki = apiserver.state_dir / "etcd-pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    req = urllib.request.Request(f"{endpoint}/v3/kv/range", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
        return base64.b64decode(json.loads(resp.read())["kvs"][0]["value"])


def test_cluster_credentials_are_encrypted_in_etcd(apiserver: APIServer) -> None:
    request(apiserver, "POST", CLUSTERS, admin(apiserver), body=cluster("gpu-enc"))
    value = etcd_value(apiserver, "/registry/cluster.kubellm.io/clusters/gpu-enc")
    assert value.startswith(b"k8s:enc:aesgcm:v1:")
    assert SECRET.encode() not in value and b"gpu-enc" not in value


def test_users_and_login_records_are_encrypted_in_etcd(apiserver: APIServer) -> None:
    """Password hashes and login records (who logged in from where) are ciphertext in etcd."""
    value = etcd_value(apiserver, "/registry/iam.kubellm.io/users/admin")
    assert value.startswith(b"k8s:enc:aesgcm:v1:") and b"argon2" not in value
    from conftest import eventually
    from test_login import login

    assert login(apiserver, "nobody-enc", "not-a-password", source="127.0.20.1")[0] == 401
    records = eventually(lambda: request(apiserver, "GET", "/apis/iam.kubellm.io/v1alpha1/loginrecords"
                                         "?fieldSelector=spec.username%3Dnobody-enc", admin(apiserver))[1],
                         lambda listed: listed["items"])
    for item in records["items"]:
        stored = etcd_value(apiserver, f"/registry/iam.kubellm.io/loginrecords/{item['metadata']['name']}")
        assert stored.startswith(b"k8s:enc:aesgcm:v1:")


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
            "spec": {"email": "w@example.com", "password": secret("weakling1")}}
    code, body = request(apiserver, "POST", "/apis/iam.kubellm.io/v1alpha1/users", me, body=weak)
    assert code == 422, body
    assert "spec.password: Invalid value: must be at least 12 characters long" in body["message"]
    assert "weakling1" not in json.dumps(body)
    strong = {**weak, "metadata": {"name": "strong"},
              "spec": {"email": "s@example.com", "password": secret("correct horse battery staple")}}
    code, body = request(apiserver, "POST", "/apis/iam.kubellm.io/v1alpha1/users", me, body=strong)
    assert code == 201 and "passwordHash" not in body["spec"] and "password" not in body["spec"]
    assert "correct horse" not in apiserver.log.read_text()


APPLIED_TOKEN = secret("applied-t0ken-9c1e4f")
APPLIED_PASSWORD = secret("applied password 7f3d91ab")


def test_kubectl_apply_keeps_no_secret_in_the_last_applied_annotation(apiserver: APIServer, tmp_path: Path) -> None:
    """`kubectl apply` repeats the manifest in an annotation: its secret fields never reach etcd nor any reader
    (issue: view could read cluster tokens and user passwords from it, in every format)."""
    import urllib.parse

    from test_authentication import client_cert

    manifests = (
        f"apiVersion: cluster.kubellm.io/v1alpha1\nkind: Cluster\nmetadata: {{name: gpu-applied}}\n"
        f"spec: {{apiEndpoint: 'https://10.0.0.7:6443', credentials: {{token: {APPLIED_TOKEN}}}}}\n---\n"
        f"apiVersion: iam.kubellm.io/v1alpha1\nkind: User\nmetadata: {{name: applied-user}}\n"
        f"spec: {{email: applied@example.com, password: '{APPLIED_PASSWORD}'}}\n")
    for _ in range(2):  # the second apply sends the secrets again (they are not in the annotation): no change
        apiserver.kubectl("apply", "-f", "-", input=manifests)
    me = admin(apiserver)
    reader = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "ClusterRole", "metadata": {"name": "applied-reader"},
              "rules": [{"apiGroups": ["iam.kubellm.io", "cluster.kubellm.io"], "resources": ["users", "clusters"],
                         "verbs": ["get", "list", "watch"]}]}
    binding = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "applied-reader"},
               "roleRef": {"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": "applied-reader"},
               "subjects": [{"apiGroup": "iam.kubellm.io", "kind": "User", "name": "applied-viewer"}]}
    assert request(apiserver, "POST", "/apis/iam.kubellm.io/v1alpha1/clusterroles", me, body=reader)[0] == 201
    assert request(apiserver, "POST", "/apis/iam.kubellm.io/v1alpha1/clusterrolebindings", me, body=binding)[0] == 201
    viewer = client_cert(apiserver, tmp_path, "applied-viewer")
    from test_authorization import wait_allowed

    wait_allowed(apiserver, viewer, CLUSTERS)
    seen: list[str] = []
    for path in (CLUSTERS, "/apis/iam.kubellm.io/v1alpha1/users"):
        name = "gpu-applied" if path == CLUSTERS else "applied-user"
        code, obj = request(apiserver, "GET", f"{path}/{name}", viewer)
        assert code == 200, obj
        annotation = obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        assert json.loads(annotation)["metadata"]["name"] == name  # kept, without the secrets
        seen.append(json.dumps(obj))
        seen.append(json.dumps(request(apiserver, "GET", path, viewer)[1]))
        table = "application/json;as=Table;v=v1;g=meta.k8s.io"
        seen.append(json.dumps(request(apiserver, "GET", f"{path}?includeObject=Object", viewer,
                                       {"Accept": table})[1]))
        seen.append(str(request(apiserver, "GET", f"{path}/{name}", viewer, {"Accept": "application/yaml"})[1]))
        selector = urllib.parse.quote(f"metadata.name={name}")
        seen.append(str(request(apiserver, "GET", f"{path}?watch=true&timeoutSeconds=1&fieldSelector={selector}",
                                viewer)[1]))
    for text in seen:
        assert APPLIED_TOKEN not in text and APPLIED_PASSWORD not in text, text[:300]
    for key in ("/registry/cluster.kubellm.io/clusters/gpu-applied", "/registry/iam.kubellm.io/users/applied-user"):
        stored = etcd_value(apiserver, key)
        assert stored.startswith(b"k8s:enc:aesgcm:v1:")
    # kubectl still sees its annotation and applies cleanly (the secret is sent again, nothing changes)
    out = apiserver.kubectl("apply", "-f", "-", input=manifests).stdout
    assert "unchanged" in out or "configured" in out


def test_credentials_subresource_is_for_the_controllers_only(apiserver: APIServer, tmp_path: Path) -> None:
    """`clusters/<name>/credentials` returns the Cluster with its credentials: to cluster-admin and the controller
    manager's default role, to no one the aggregated roles cover; get only; redacted in the audit log."""
    from test_authentication import client_cert
    from test_authorization import bind, wait_allowed

    token = secret("c0ntr0ller-visible-t0ken")
    code, _ = request(apiserver, "POST", CLUSTERS, admin(apiserver), body=cluster("gpu-cred", token))
    assert code == 201
    path = f"{CLUSTERS}/gpu-cred/credentials"
    code, got = request(apiserver, "GET", path, admin(apiserver))
    assert code == 200 and got["kind"] == "Cluster" and got["spec"]["credentials"]["token"] == token, got
    # the controller manager's kubeconfig, written by the server next to the admin's, reads them
    manager = ["kubectl", "--kubeconfig", str(apiserver.state_dir / "controller-manager.kubeconfig")]
    who = subprocess.run([*manager, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
                         capture_output=True, text=True, timeout=30, check=True)
    assert who.stdout == "system:kubellm:controller-manager"
    raw = subprocess.run([*manager, "get", "--raw", path], capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(raw.stdout)["spec"]["credentials"]["token"] == token
    viewer = client_cert(apiserver, tmp_path, "cred-viewer")
    bind(apiserver, "default", "cred-viewer-admin", "cred-viewer", "admin")
    wait_allowed(apiserver, viewer, "/apis/model.kubellm.io/v1alpha1/namespaces/default/llmservices")
    code, denied = request(apiserver, "GET", path, viewer)
    assert code == 403 and denied["reason"] == "Forbidden"
    assert 'cannot get resource "clusters/credentials" in API group "cluster.kubellm.io"' in denied["message"]
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        code, refused = request(apiserver, method, path, admin(apiserver), body=got)
        assert code == 405 and refused["reason"] == "MethodNotAllowed", (method, refused)
    discovery = request(apiserver, "GET", "/apis/cluster.kubellm.io/v1alpha1", admin(apiserver))[1]
    assert isinstance(discovery, dict)
    served = {r["name"]: r["verbs"] for r in discovery["resources"]}
    assert served["clusters/credentials"] == ["get"]
    audit = (apiserver.state_dir / "audit.log").read_text()
    assert "gpu-cred/credentials" in audit and token not in audit
