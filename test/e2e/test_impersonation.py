"""Impersonation as kube-apiserver does it: `kubectl --as`, authorized with the `impersonate` verb, audited
with both identities."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import APIServer
from test_audit import find
from test_authentication import client_cert, request, whoami
from test_authorization import admin

LLMS = "/apis/model.kubellm.io/v1alpha1/namespaces/imp/llmservices"


def test_admins_impersonate_with_kubectl_as(apiserver: APIServer) -> None:
    out = apiserver.kubectl("auth", "whoami", "-o", "json", "--as", "alice", "--as-group", "dev").stdout
    info = json.loads(out)["status"]["userInfo"]
    assert info["username"] == "alice" and info["groups"] == ["dev", "system:authenticated"]
    denied = apiserver.kubectl("get", "llms", "-n", "imp", "--as", "alice", check=False)
    assert denied.returncode != 0
    assert 'User "alice" cannot list resource "llmservices" in API group "model.kubellm.io"' in denied.stderr
    allowed = apiserver.kubectl("get", "llms", "-n", "imp", "--as", "alice", "--as-group", "system:masters")
    assert allowed.returncode == 0
    sa = json.loads(apiserver.kubectl("auth", "whoami", "-o", "json", "--as",
                                      "system:serviceaccount:imp:robot").stdout)["status"]["userInfo"]
    assert sa["groups"] == ["system:serviceaccounts", "system:serviceaccounts:imp", "system:authenticated"]
    event = find(apiserver, lambda e: e.get("impersonatedUser", {}).get("username") == "alice"
                 and "system:masters" in e["impersonatedUser"]["groups"] and e["verb"] == "list")
    assert event["user"]["username"] == "kubellm-admin"


def test_impersonation_needs_the_impersonate_verb(apiserver: APIServer, tmp_path: Path) -> None:
    bob = client_cert(apiserver, tmp_path, "bob-imp")
    headers = {"Impersonate-User": "kubellm-admin"}
    code, body = request(apiserver, "GET", LLMS, bob, headers)
    assert code == 403
    assert body["message"] == ('users "kubellm-admin" is forbidden: User "bob-imp" cannot impersonate resource '
                               '"users" in API group "" at the cluster scope')
    role = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "ClusterRole", "metadata": {"name": "imp-alice"},
            "rules": [{"apiGroups": [""], "resources": ["users"], "resourceNames": ["alice"],
                       "verbs": ["impersonate"]}]}
    binding = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "ClusterRoleBinding", "metadata": {"name": "imp-alice"},
               "roleRef": {"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": "imp-alice"},
               "subjects": [{"apiGroup": "iam.kubellm.io", "kind": "User", "name": "bob-imp"}]}
    assert request(apiserver, "POST", "/apis/iam.kubellm.io/v1alpha1/clusterroles", admin(apiserver),
                   body=role)[0] == 201
    assert request(apiserver, "POST", "/apis/iam.kubellm.io/v1alpha1/clusterrolebindings", admin(apiserver),
                   body=binding)[0] == 201
    as_alice = {"Impersonate-User": "alice"}
    import time

    deadline = time.monotonic() + 5
    while whoami(apiserver, bob, as_alice)[0] != 201 and time.monotonic() < deadline:
        time.sleep(0.05)
    code, review = whoami(apiserver, bob, as_alice)
    assert code == 201 and review["status"]["userInfo"]["username"] == "alice"
    # only alice, and no groups (system:masters least of all), uids or extras
    for headers in ({"Impersonate-User": "kubellm-admin"},
                    {"Impersonate-User": "alice", "Impersonate-Group": "system:masters"},
                    {"Impersonate-User": "alice", "Impersonate-Uid": "1234"},
                    {"Impersonate-User": "alice", "Impersonate-Extra-Scopes": "all"},
                    {"Impersonate-User": "system:serviceaccount:kube-system:admin"}):
        code, body = request(apiserver, "GET", LLMS, bob, headers)
        assert code == 403 and "cannot impersonate" in body["message"], (headers, body)
    # groups without a user are a bad request
    code, body = request(apiserver, "GET", LLMS, bob, {"Impersonate-Group": "system:masters"})
    assert code == 400 and body["reason"] == "BadRequest"
