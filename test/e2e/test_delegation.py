"""Delegation to a host cluster: a second server that sends TokenReview and SubjectAccessReview to the
first (KubeLLM serves both APIs, as kube-apiserver does), through the official Python client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import APIServer, running_apiserver
from test_authentication import request
from test_authorization import admin
from test_login import login, make_user

LLMS = "/apis/model.kubellm.io/v1alpha1/namespaces/deleg/llmservices"


@pytest.fixture(scope="module")
def delegating(apiserver: APIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[APIServer]:
    state = tmp_path_factory.mktemp("delegating")
    with running_apiserver(state, "--authentication-kubeconfig", str(apiserver.kubeconfig),
                           "--authorization-kubeconfig", str(apiserver.kubeconfig)) as server:
        yield server


def test_token_and_access_reviews_are_served(apiserver: APIServer) -> None:
    make_user(apiserver, "rita", "a reviewable password")
    token = str(login(apiserver, "rita", "a reviewable password")[1]["status"]["token"])  # type: ignore[index]
    code, review = request(apiserver, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", admin(apiserver),
                           body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                 "spec": {"token": token}})
    assert code == 201 and review["status"]["authenticated"] is True
    assert review["status"]["user"]["username"] == "rita"
    code, review = request(apiserver, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", admin(apiserver),
                           body={"spec": {"token": "not-a-token"}})
    assert code == 201 and review["status"] == {"authenticated": False}
    sar = {"spec": {"user": "rita", "resourceAttributes": {"verb": "list", "group": "model.kubellm.io",
                                                           "resource": "llmservices", "namespace": "deleg"}}}
    code, review = request(apiserver, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                           admin(apiserver), body=sar)
    assert code == 201 and review["status"]["allowed"] is False
    # asking needs permission
    assert request(apiserver, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", None, body=sar)[0] == 401


def test_delegated_authentication_and_authorization(apiserver: APIServer, delegating: APIServer) -> None:
    make_user(apiserver, "hank", "a long enough secret phrase")
    binding = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "RoleBinding", "metadata": {"name": "hank-view"},
               "roleRef": {"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"apiGroup": "iam.kubellm.io", "kind": "User", "name": "hank"}]}
    assert request(apiserver, "POST", "/apis/iam.kubellm.io/v1alpha1/namespaces/deleg/rolebindings",
                   admin(apiserver), body=binding)[0] == 201
    token = str(login(apiserver, "hank", "a long enough secret phrase")[1]["status"]["token"])  # type: ignore[index]
    auth = {"Authorization": f"Bearer {token}"}
    code, review = request(delegating, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", None, auth,
                           {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert code == 201 and review["status"]["userInfo"]["username"] == "hank"  # the host vouched for the token
    assert request(delegating, "GET", LLMS, None, auth)[0] == 200  # the host's RBAC allows viewing
    code, body = request(delegating, "POST", LLMS, None, auth,
                         {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
                          "metadata": {"name": "x"}, "spec": {"model": "Qwen/Qwen2.5-3B-Instruct"}})
    assert code == 403 and body["reason"] == "Forbidden"  # ...but not editing
    assert request(delegating, "GET", LLMS, None, {"Authorization": "Bearer forged.token.value"})[0] == 401
