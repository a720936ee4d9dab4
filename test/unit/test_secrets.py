"""Secret fields: one declaration on the types; removal for clients, redaction for the audit log, and
the last-applied annotation scrubbed before storage."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubellm.apis import secrets
from kubellm.apis.cluster.v1alpha1 import Cluster
from kubellm.apis.iam.v1alpha1 import User
from kubellm.registry.registry import ALL_RESOURCES
from kubellm.server.audit import redact, secret_paths
from kubellm.server.requestinfo import parse

TOKEN = "tok-3f9a8c7d-secret"


def cluster(**extra: Any) -> dict[str, Any]:
    return {"apiVersion": "cluster.kubellm.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "gpu"},
            "spec": {"apiEndpoint": "https://10.0.0.1:6443", "credentials": {"token": TOKEN}, **extra}}


def with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    applied = json.dumps(obj) + "\n"
    return {**obj, "metadata": {**obj["metadata"], "annotations": {secrets.LAST_APPLIED: applied, "team": "a"}}}


def test_secret_paths_come_from_the_types() -> None:
    assert secrets.secret_paths(Cluster) == (("spec", "credentials"),)
    assert secrets.secret_paths(User) == (("spec", "password"), ("spec", "passwordHash"))
    declared = {i.kind: i.secret_fields for i in ALL_RESOURCES if i.secret_fields}
    assert declared == {"Cluster": (("spec", "credentials"),),
                        "User": (("spec", "password"), ("spec", "passwordHash"))}
    assert {i.kind for i in ALL_RESOURCES if i.encrypted_by_default} == {"Cluster", "User", "LoginRecord"}


def test_secret_fields_are_published_write_only() -> None:
    extra = Cluster.model_fields["spec"].annotation.model_fields["credentials"].json_schema_extra  # type: ignore[union-attr]
    assert secrets.is_secret(extra) and extra["writeOnly"] is True  # type: ignore[index]


def test_without_secrets_removes_fields_and_scrubs_the_annotation() -> None:
    obj = with_last_applied(cluster())
    out = secrets.without_secrets(obj, secrets.secret_paths(Cluster))
    assert TOKEN not in json.dumps(out)
    applied = json.loads(out["metadata"]["annotations"][secrets.LAST_APPLIED])
    assert "credentials" not in applied["spec"] and applied["spec"]["apiEndpoint"] == "https://10.0.0.1:6443"
    assert out["metadata"]["annotations"]["team"] == "a"
    assert out["metadata"]["annotations"][secrets.LAST_APPLIED].endswith("\n")
    assert TOKEN in json.dumps(obj)  # the input is not changed


def test_an_annotation_that_is_not_json_is_dropped() -> None:
    obj = cluster()
    obj["metadata"]["annotations"] = {secrets.LAST_APPLIED: f"token: {TOKEN}"}
    out = secrets.scrub_last_applied(obj, secrets.secret_paths(Cluster))
    assert secrets.LAST_APPLIED not in out["metadata"]["annotations"]


def test_audit_redacts_every_body_shape() -> None:
    paths = secret_paths(parse("POST", "/apis/cluster.kubellm.io/v1alpha1/clusters", {}))
    shapes = [
        with_last_applied(cluster()),
        {"kind": "ClusterList", "items": [with_last_applied(cluster())]},
        {"kind": "Table", "rows": [{"cells": ["gpu"], "object": with_last_applied(cluster())}]},
        [{"op": "replace", "path": "/spec/credentials/token", "value": TOKEN}],
        [{"op": "add", "path": "/spec/credentials", "value": {"token": TOKEN}}],
        [{"op": "replace", "path": "/spec", "value": cluster()["spec"]}],
        [{"op": "add", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
          "value": json.dumps(cluster())}],
    ]
    for body in shapes:
        assert TOKEN not in json.dumps(redact(body, paths)), body
    login = secret_paths(parse("POST", "/login", {}))
    assert redact({"username": "u", "password": "hunter2"}, login) == {"username": "u", "password": "<redacted>"}
    review = secret_paths(parse("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {}))
    assert TOKEN not in json.dumps(redact({"spec": {"token": TOKEN}}, review))


@given(st.recursive(st.none() | st.booleans() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                    max_leaves=20))
def test_redaction_never_fails_on_any_body(body: Any) -> None:
    """Whatever a client sends, redaction returns (audit must never break a request)."""
    paths = secrets.secret_paths(Cluster)
    redact(body, paths)
    redact({"spec": body, "metadata": {"annotations": {secrets.LAST_APPLIED: json.dumps(body)}}}, paths)
    redact([{"op": "add", "path": "/spec", "value": body}], paths)
