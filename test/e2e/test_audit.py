"""Audit events of a real run: levels from the policy, bodies at RequestResponse, secrets redacted."""

from __future__ import annotations

import json
import time
from typing import Any

from conftest import APIServer, secret
from test_authentication import request
from test_authorization import admin

SECRET = secret("audit-secret-token-1234567")


def events(apiserver: APIServer) -> list[dict[str, Any]]:
    path = apiserver.state_dir / "audit.log"
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # the server may be writing this line right now
            continue
    return out


def find(apiserver: APIServer, pred: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for e in events(apiserver):
            if pred(e):
                return e
        time.sleep(0.05)
    raise AssertionError("no matching audit event")


def raw_request(apiserver: APIServer, method: str, path: str, cert: Any, body: str,
                content_type: str) -> tuple[int, str]:
    import http.client

    from test_authentication import context

    host, port = apiserver.url.removeprefix("https://").rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=context(apiserver, cert), timeout=15)
    try:
        conn.request(method, path, body=body.encode(), headers={"Content-Type": content_type})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_audit_events_follow_the_policy_and_redact_secrets(apiserver: APIServer) -> None:
    me = admin(apiserver)
    llm = {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService", "metadata": {"name": "audited"},
           "spec": {"model": "Qwen/Qwen2.5-3B-Instruct"}}
    assert request(apiserver, "POST", "/apis/model.kubellm.io/v1alpha1/namespaces/audit/llmservices", me,
                   body=llm)[0] == 201
    ev = find(apiserver, lambda e: e.get("objectRef", {}).get("resource") == "llmservices"
              and e["verb"] == "create" and e["requestObject"]["metadata"]["name"] == "audited")
    assert ev["kind"] == "Event" and ev["apiVersion"] == "audit.k8s.io/v1" and ev["level"] == "RequestResponse"
    assert ev["user"]["username"] == "kubellm-admin" and ev["responseStatus"]["code"] == 201
    assert ev["objectRef"] == {"resource": "llmservices", "namespace": "audit", "apiGroup": "model.kubellm.io",
                               "apiVersion": "v1alpha1"}
    assert ev["responseObject"]["metadata"]["uid"]

    cluster = {"apiVersion": "cluster.kubellm.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "audited"},
               "spec": {"apiEndpoint": "https://10.0.0.9:6443", "credentials": {"token": SECRET}}}
    assert request(apiserver, "POST", "/apis/cluster.kubellm.io/v1alpha1/clusters", me, body=cluster)[0] == 201
    ev = find(apiserver, lambda e: e.get("objectRef", {}).get("resource") == "clusters" and e["verb"] == "create")
    assert ev["requestObject"]["spec"]["credentials"] == "<redacted>"

    # YAML bodies are recorded too, redacted
    yaml_cluster = (f"apiVersion: cluster.kubellm.io/v1alpha1\nkind: Cluster\nmetadata: {{name: audited-yaml}}\n"
                    f"spec: {{apiEndpoint: 'https://10.0.0.8:6443', credentials: {{token: {SECRET}}}}}\n")
    code, _ = raw_request(apiserver, "POST", "/apis/cluster.kubellm.io/v1alpha1/clusters", me, yaml_cluster,
                          "application/yaml")
    assert code == 201
    ev = find(apiserver, lambda e: e.get("objectRef", {}).get("resource") == "clusters" and e["verb"] == "create"
              and (e.get("requestObject") or {}).get("metadata", {}).get("name") == "audited-yaml")
    assert ev["requestObject"]["spec"]["credentials"] == "<redacted>"
    assert ev["requestObject"]["spec"]["apiEndpoint"] == "https://10.0.0.8:6443"

    # Metadata level: no bodies; anonymous and forbidden requests are audited too; health is not
    request(apiserver, "GET", "/apis/iam.kubellm.io/v1alpha1/roles", None)
    anon = find(apiserver, lambda e: e["user"]["username"] == "system:anonymous"
                and e["requestURI"] == "/apis/iam.kubellm.io/v1alpha1/roles")
    assert anon["responseStatus"]["code"] == 401 and anon["level"] == "Metadata" and "responseObject" not in anon
    request(apiserver, "GET", "/healthz", None)
    assert not any(e["requestURI"].startswith("/healthz") for e in events(apiserver))
    assert SECRET not in (apiserver.state_dir / "audit.log").read_text()


def test_client_aborts_are_not_audited_as_server_errors(apiserver: APIServer) -> None:
    """A request whose client leaves before the answer is recorded as aborted (no code), a watch that had
    started streaming with the 200 it was sent: never as a 500."""
    import socket

    from test_authentication import context

    host, port = apiserver.url.removeprefix("https://").rsplit(":", 1)
    path = "/apis/model.kubellm.io/v1alpha1/namespaces/audit-abort/llmservices"
    ctx = context(apiserver, admin(apiserver))
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as sock:  # a create whose body never comes
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 500\r\n\r\n{".encode())
        find(apiserver, lambda e: False) if False else None
    aborted = find(apiserver, lambda e: e["requestURI"] == path and e["verb"] == "create")
    assert aborted["annotations"] == {"kubellm.io/client-aborted": "true"}
    assert "code" not in aborted["responseStatus"] and aborted["responseStatus"]["reason"] == "ClientDisconnected"

    watch = f"{path}?watch=1&timeoutSeconds=60"
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as sock:
        sock.sendall(f"GET {watch} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    left = find(apiserver, lambda e: e["requestURI"] == watch)
    assert left["responseStatus"]["code"] == 200 and "annotations" not in left
