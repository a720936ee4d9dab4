"""The authorization matrix: every resource and every verb, for no credentials (401), a user without the
permission (403 with kube's message), a user with it (allowed), and namespaced grants staying inside."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import APIServer
from test_authentication import client_cert, request
from test_authorization import admin, wait_allowed

from kubellm.registry.registry import ALL_RESOURCES
from kubellm.server.certs import Pair

NS, OTHER = "matrix", "matrix-other"
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]


def base(info: Any, ns: str) -> str:
    scope = f"/namespaces/{ns}" if info.namespaced else ""
    api = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    return f"{api}{scope}/{info.plural}"


def call(apiserver: APIServer, cert: Pair | None, info: Any, verb: str, ns: str = NS) -> tuple[int, Any]:
    coll, item = base(info, ns), base(info, ns) + "/matrix-x"
    method, path, body, headers = {
        "get": ("GET", item, None, {}),
        "list": ("GET", coll, None, {}),
        "watch": ("GET", coll + "?watch=true", None, {}),
        "create": ("POST", coll, {"apiVersion": info.api_version, "kind": info.kind}, {}),
        "update": ("PUT", item, {"apiVersion": info.api_version, "kind": info.kind}, {}),
        "patch": ("PATCH", item, {}, {"Content-Type": "application/merge-patch+json"}),
        "delete": ("DELETE", item, None, {}),
        "deletecollection": ("DELETE", coll + "?labelSelector=matrix%3Dnone", None, {}),
    }[verb]
    if verb == "watch":
        return watch_status(apiserver, cert, path)
    return request(apiserver, method, path, cert, headers, body)


def watch_status(apiserver: APIServer, cert: Pair | None, path: str) -> tuple[int, Any]:
    """A watch's status: an error's Status body, or 200 as soon as the stream has started (not its end)."""
    import http.client
    import json

    from test_authentication import context

    host, port = apiserver.url.removeprefix("https://").rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=context(apiserver, cert), timeout=15)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, (json.loads(resp.read()) if resp.status != 200 else None)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def users(apiserver: APIServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    tmp = tmp_path_factory.mktemp("matrix")
    granted, nobody = client_cert(apiserver, tmp, "matrix-granted"), client_cert(apiserver, tmp, "matrix-nobody")
    cluster_wide = client_cert(apiserver, tmp, "matrix-cluster")
    role = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "ClusterRole", "metadata": {"name": "matrix-all"},
            "rules": [{"verbs": ["*"], "apiGroups": sorted({info.group for info in ALL_RESOURCES}),
                       "resources": ["*"]}]}
    assert request(apiserver, "POST", "/apis/iam.kubellm.io/v1alpha1/clusterroles", admin(apiserver),
                   body=role)[0] == 201
    subjects = [{"apiGroup": "iam.kubellm.io", "kind": "User", "name": "matrix-granted"}]
    cluster_subjects = [{"apiGroup": "iam.kubellm.io", "kind": "User", "name": "matrix-cluster"}]
    ref = {"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": "matrix-all"}
    # namespaced kinds through a RoleBinding in NS only; cluster-scoped kinds need a ClusterRoleBinding
    assert request(apiserver, "POST", f"/apis/iam.kubellm.io/v1alpha1/namespaces/{NS}/rolebindings", admin(apiserver),
                   body={"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "RoleBinding",
                         "metadata": {"name": "matrix"}, "roleRef": ref, "subjects": subjects})[0] == 201
    crb = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "ClusterRoleBinding",
           "metadata": {"name": "matrix-cluster"}, "roleRef": ref, "subjects": cluster_subjects}
    assert request(apiserver, "POST", "/apis/iam.kubellm.io/v1alpha1/clusterrolebindings", admin(apiserver),
                   body=crb)[0] == 201
    wait_allowed(apiserver, granted, "/apis/model.kubellm.io/v1alpha1/namespaces/matrix/llmservices")
    wait_allowed(apiserver, cluster_wide, "/apis/cluster.kubellm.io/v1alpha1/clusters")
    return {"granted": granted, "nobody": nobody, "cluster": cluster_wide}


@pytest.mark.parametrize("info", ALL_RESOURCES, ids=lambda i: i.plural)
@pytest.mark.parametrize("verb", VERBS)
def test_matrix(apiserver: APIServer, users: dict[str, Pair], info: Any, verb: str) -> None:
    code, body = call(apiserver, None, info, verb)
    assert code == 401 and body["reason"] == "Unauthorized", (code, body)

    code, body = call(apiserver, users["nobody"], info, verb)
    assert code == 403 and body["reason"] == "Forbidden", (code, body)
    target = info.group_resource + (' "matrix-x"' if verb in ("get", "update", "patch", "delete") else "")
    where = f'in the namespace "{NS}"' if info.namespaced else "at the cluster scope"
    assert body["message"] == (f'{target} is forbidden: User "matrix-nobody" cannot {verb} resource '
                               f'"{info.plural}" in API group "{info.group}" {where}'), body["message"]

    permitted = users["granted"] if info.namespaced else users["cluster"]
    code, body = call(apiserver, permitted, info, verb)
    assert code not in (401, 403), (code, body)  # allowed: 200/201/404/422 depending on the verb and body

    if info.namespaced:
        # a RoleBinding's grant does not reach another namespace
        code, body = call(apiserver, users["granted"], info, verb, OTHER)
        assert code == 403, (code, body)
    else:
        # a RoleBinding never grants cluster-scoped resources
        code, body = call(apiserver, users["granted"], info, verb)
        assert code == 403, (code, body)
