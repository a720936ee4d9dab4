"""RBAC against the running server: default deny, namespaced grants, default roles, discovery for all."""

from __future__ import annotations

from pathlib import Path

from conftest import APIServer
from test_authentication import client_cert, request

from kubellm.server.certs import Pair

LLM = {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
       "metadata": {"name": "q"}, "spec": {"model": "Qwen/Qwen2.5-3B-Instruct"}}


def llms(ns: str) -> str:
    return f"/apis/model.kubellm.io/v1alpha1/namespaces/{ns}/llmservices"


def admin(apiserver: APIServer) -> Pair:
    pki = apiserver.state_dir / "pki"
    return Pair(pki / "admin.crt", pki / "admin.key")


def bind(apiserver: APIServer, ns: str, name: str, user: str, cluster_role: str) -> None:
    body = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"apiGroup": "iam.kubellm.io", "kind": "User", "name": user}]}
    code, out = request(apiserver, "POST", f"/apis/iam.kubellm.io/v1alpha1/namespaces/{ns}/rolebindings",
                        admin(apiserver), body=body)
    assert code == 201, out


def wait_allowed(apiserver: APIServer, cert: Pair, path: str) -> None:
    """Bindings reach the authorizer through the watch cache: allow a moment."""
    import time

    deadline = time.monotonic() + 5
    while request(apiserver, "GET", path, cert)[0] == 403 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_default_deny_with_kube_message(apiserver: APIServer, tmp_path: Path) -> None:
    nobody = client_cert(apiserver, tmp_path, "nobody")
    code, body = request(apiserver, "GET", llms("default"), nobody)
    assert code == 403
    assert isinstance(body, dict) and body["reason"] == "Forbidden"
    assert body["message"] == ('llmservices.model.kubellm.io is forbidden: User "nobody" cannot list resource '
                               '"llmservices" in API group "model.kubellm.io" in the namespace "default"')
    code, body = request(apiserver, "GET", llms("default") + "/x", nobody)
    assert code == 403 and 'llmservices.model.kubellm.io "x" is forbidden: User "nobody" cannot get' in body["message"]
    code, body = request(apiserver, "GET", "/apis/iam.kubellm.io/v1alpha1/users", nobody)
    assert code == 403 and "at the cluster scope" in body["message"]
    code, body = request(apiserver, "GET", "/metrics", nobody)
    assert code == 403 and body["message"] == 'forbidden: User "nobody" cannot get path "/metrics"'
    # discovery and OpenAPI are open to every authenticated user
    for path in ("/apis", "/apis/model.kubellm.io/v1alpha1", "/openapi/v3", "/api"):
        assert request(apiserver, "GET", path, nobody)[0] == 200, path


def test_namespaced_edit_and_view(apiserver: APIServer, tmp_path: Path) -> None:
    editor = client_cert(apiserver, tmp_path, "eve")
    viewer = client_cert(apiserver, tmp_path, "vic")
    bind(apiserver, "team-e", "eve-edit", "eve", "edit")
    bind(apiserver, "team-e", "vic-view", "vic", "view")
    wait_allowed(apiserver, editor, llms("team-e"))
    wait_allowed(apiserver, viewer, llms("team-e"))
    assert request(apiserver, "POST", llms("team-e"), editor, body=LLM)[0] == 201
    assert request(apiserver, "GET", llms("team-e") + "/q", viewer)[0] == 200
    assert request(apiserver, "GET", llms("team-e"), viewer)[0] == 200
    code, body = request(apiserver, "DELETE", llms("team-e") + "/q", viewer)
    assert code == 403 and 'cannot delete resource "llmservices"' in body["message"]
    # the grant stays inside its namespace
    assert request(apiserver, "POST", llms("team-f"), editor, body=LLM)[0] == 403
    assert request(apiserver, "GET", llms("team-f"), viewer)[0] == 403
    # edit does not extend to RBAC objects
    code, _ = request(apiserver, "GET", "/apis/iam.kubellm.io/v1alpha1/namespaces/team-e/rolebindings", editor)
    assert code == 403
    assert request(apiserver, "DELETE", llms("team-e") + "/q", editor)[0] == 200


def kubeconfig_for(apiserver: APIServer, cert: Pair, tmp: Path) -> Path:
    import base64

    import yaml

    cfg = yaml.safe_load(apiserver.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"client-certificate-data": base64.b64encode(cert.cert.read_bytes()).decode(),
                               "client-key-data": base64.b64encode(cert.key.read_bytes()).decode()}
    path = tmp / "user.kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_kubectl_auth_can_i_and_whoami(apiserver: APIServer, tmp_path: Path) -> None:
    dan = client_cert(apiserver, tmp_path, "dan", ("devs",))
    bind(apiserver, "team-d", "dan-view", "dan", "view")
    wait_allowed(apiserver, dan, llms("team-d"))
    env = {"KUBECONFIG": str(kubeconfig_for(apiserver, dan, tmp_path))}

    def can_i(*args: str) -> str:
        return apiserver.kubectl("auth", "can-i", *args, check=False, env=env).stdout.strip()

    assert can_i("list", "llmservices", "-n", "team-d") == "yes"
    assert can_i("get", "llmservices.model.kubellm.io/q", "-n", "team-d") == "yes"
    assert can_i("create", "llmservices", "-n", "team-d") == "no"
    assert can_i("list", "llmservices", "-n", "team-x") == "no"
    assert can_i("get", "/apis") == "yes"
    assert can_i("get", "/metrics") == "no"
    assert apiserver.kubectl("auth", "can-i", "create", "llmservices", "-n", "team-d").stdout.strip() == "yes"
    listing = apiserver.kubectl("auth", "can-i", "--list", "-n", "team-d", env=env).stdout
    assert "llmservices.model.kubellm.io" in listing and "[get list watch]" in listing
    who = apiserver.kubectl("auth", "whoami", env=env).stdout
    assert "dan" in who and "devs" in who


def test_escalation_is_prevented(apiserver: APIServer, tmp_path: Path) -> None:
    adam = client_cert(apiserver, tmp_path, "adam")
    bind(apiserver, "team-g", "adam-admin", "adam", "admin")
    roles = "/apis/iam.kubellm.io/v1alpha1/namespaces/team-g/roles"
    bindings = "/apis/iam.kubellm.io/v1alpha1/namespaces/team-g/rolebindings"
    wait_allowed(apiserver, adam, roles)

    def role(name: str, rules: list[dict[str, object]]) -> dict[str, object]:
        return {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "Role", "metadata": {"name": name}, "rules": rules}

    held = [{"verbs": ["get", "list"], "apiGroups": ["model.kubellm.io"], "resources": ["llmservices"]}]
    assert request(apiserver, "POST", roles, adam, body=role("reader", held))[0] == 201
    not_held = [{"verbs": ["*"], "apiGroups": ["cluster.kubellm.io"], "resources": ["clusters"]}]
    code, body = request(apiserver, "POST", roles, adam, body=role("greedy", not_held))
    assert code == 403, body
    assert body["reason"] == "Forbidden"
    assert body["message"].startswith('roles.iam.kubellm.io "greedy" is forbidden: user "adam"')
    assert "is attempting to grant RBAC permissions not currently held" in body["message"]
    assert request(apiserver, "GET", roles + "/greedy", admin(apiserver))[0] == 404  # nothing written

    to_admin = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "RoleBinding", "metadata": {"name": "up"},
                "roleRef": {"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": "iam.kubellm.io", "kind": "User", "name": "adam"}]}
    code, body = request(apiserver, "POST", bindings, adam, body=to_admin)
    assert code == 403 and "not currently held" in body["message"], body
    # binding a role whose rules adam holds is fine
    ok = {**to_admin, "metadata": {"name": "reader-binding"},
          "roleRef": {"apiGroup": "iam.kubellm.io", "kind": "Role", "name": "reader"}}
    assert request(apiserver, "POST", bindings, adam, body=ok)[0] == 201
    # system:masters may grant anything
    assert request(apiserver, "POST", roles, admin(apiserver), body=role("greedy", not_held))[0] == 201
