"""Server-side apply on lists with several field managers, against the real server.

Finalizers (a set) and a RAGService's sources (a map list by name) are applied with the real
`kubectl apply --server-side --field-manager ...`; conditions (a map list by type) with raw apply patches to
the status subresource, as controllers send them. Each check reads back the object and its managedFields.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from conftest import APIServer

NS = "apply-lists"
GV = "model.kubellm.io/v1alpha1"
FA, FB, FC, SHARED = "a.example.com/cleanup", "b.example.com/cleanup", "c.example.com/cleanup", "shared.example.com/x"
T1, T2 = "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z"


class Client:
    """Raw HTTPS requests as the admin (client certificate)."""

    def __init__(self, apiserver: APIServer) -> None:
        parsed = urllib.parse.urlsplit(apiserver.url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 443
        pki = apiserver.state_dir / "pki"
        self.ctx = ssl.create_default_context(cafile=str(pki / "serving-ca.crt"))
        self.ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def request(self, method: str, path: str, body: str | None = None,
                content_type: str = "application/json") -> tuple[int, Any]:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        try:
            headers = {"Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=body.encode() if body is not None else None, headers=headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            conn.close()

    def apply(self, path: str, doc: dict[str, Any], manager: str, *, force: bool = False) -> tuple[int, Any]:
        query = urllib.parse.urlencode({"fieldManager": manager, **({"force": "true"} if force else {})})
        return self.request("PATCH", f"{path}?{query}", yaml.safe_dump(doc), "application/apply-patch+yaml")


@pytest.fixture
def k(apiserver: APIServer) -> Iterator[APIServer]:
    yield apiserver
    for kind in ("llmservices", "ragservices"):
        names = apiserver.kubectl("get", kind, "-n", NS, "-o", "name", check=False).stdout.split()
        for name in names:  # a failed test may leave finalizers behind
            apiserver.kubectl("patch", name, "-n", NS, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                              check=False)
        apiserver.kubectl("delete", kind, "--all", "-n", NS, "--wait=false", check=False)


@pytest.fixture
def client(apiserver: APIServer) -> Client:
    return Client(apiserver)


def ssa(k: APIServer, manager: str, doc: dict[str, Any], *, force: bool = False,
        check: bool = True) -> Any:
    args = ["apply", "--server-side", "--field-manager", manager, "-f", "-"]
    return k.kubectl(*args, *(["--force-conflicts"] if force else []), input=yaml.safe_dump(doc), check=check)


def get(k: APIServer, kind: str, name: str) -> dict[str, Any]:
    out = k.kubectl("get", kind, name, "-n", NS, "-o", "json", "--show-managed-fields").stdout
    return json.loads(out)  # type: ignore[no-any-return]


def fields_of(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"], e.get("subresource", "")): e["fieldsV1"]
            for e in obj["metadata"].get("managedFields", [])}


def llm(name: str, finalizers: list[str] | None = None, *, spec: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if finalizers is not None:
        meta["finalizers"] = finalizers
    doc: dict[str, Any] = {"apiVersion": GV, "kind": "LLMService", "metadata": meta}
    if spec:
        doc["spec"] = {"model": "Qwen/Qwen2.5-3B-Instruct"}
    return doc


def test_controllers_each_own_their_finalizer_and_release_it(k: APIServer) -> None:
    ssa(k, "ctrl-a", llm("fin", [FA], spec=True))
    ssa(k, "ctrl-b", llm("fin", [FB, SHARED]))  # no conflict with ctrl-a: each finalizer has its own owners
    ssa(k, "ctrl-c", llm("fin", [FC, SHARED]))
    obj = get(k, "llmservice", "fin")
    assert obj["metadata"]["finalizers"] == [FA, FB, FC, SHARED]
    fields = fields_of(obj)
    assert fields[("ctrl-a", "Apply", "")] == {"f:metadata": {"f:finalizers": {f'v:"{FA}"': {}}},
                                               "f:spec": {"f:model": {}}}
    assert fields[("ctrl-b", "Apply", "")] == {"f:metadata": {"f:finalizers": {f'v:"{FB}"': {}, f'v:"{SHARED}"': {}}}}
    assert fields[("ctrl-c", "Apply", "")] == {"f:metadata": {"f:finalizers": {f'v:"{FC}"': {}, f'v:"{SHARED}"': {}}}}

    out = ssa(k, "ctrl-b", llm("fin", [FB, SHARED]))
    assert "serverside-applied" in out.stdout
    assert get(k, "llmservice", "fin")["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]

    ssa(k, "ctrl-b", llm("fin"))  # ctrl-b is done: its finalizer goes, the shared one stays for ctrl-c
    obj = get(k, "llmservice", "fin")
    assert obj["metadata"]["finalizers"] == [FA, FC, SHARED]
    assert ("ctrl-b", "Apply", "") not in fields_of(obj)

    k.kubectl("delete", "llmservice", "fin", "-n", NS, "--wait=false")
    assert get(k, "llmservice", "fin")["metadata"]["deletionTimestamp"]
    ssa(k, "ctrl-c", llm("fin"))
    assert get(k, "llmservice", "fin")["metadata"]["finalizers"] == [FA]
    ssa(k, "ctrl-a", llm("fin", spec=True))  # the last finalizer goes: the object is deleted
    gone = k.kubectl("get", "llmservice", "fin", "-n", NS, check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr


def condition(kind: str, status: str = "True", reason: str = "Serving", time: str = T1) -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "lastTransitionTime": time}


def status_doc(name: str, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": GV, "kind": "LLMService", "metadata": {"name": name}, "status": {"conditions": conditions}}


def test_controllers_own_their_conditions_through_the_status_subresource(k: APIServer, client: Client) -> None:
    ssa(k, "owner", llm("cond", spec=True))
    path = f"/apis/{GV}/namespaces/{NS}/llmservices/cond/status"
    code, body = client.apply(path, status_doc("cond", [condition("Ready")]), "ctrl-a")
    assert code == 200, body
    code, body = client.apply(path, status_doc("cond", [condition("Synced", reason="Synced")]), "ctrl-b")
    assert code == 200, body
    obj = get(k, "llmservice", "cond")
    assert [(c["type"], c["status"]) for c in obj["status"]["conditions"]] == [("Ready", "True"), ("Synced", "True")]
    fields = fields_of(obj)
    assert fields[("ctrl-a", "Apply", "status")] == {"f:status": {"f:conditions": {'k:{"type":"Ready"}': {
        ".": {}, "f:lastTransitionTime": {}, "f:reason": {}, "f:status": {}, "f:type": {}}}}}
    assert list(fields[("ctrl-b", "Apply", "status")]["f:status"]["f:conditions"]) == ['k:{"type":"Synced"}']
    assert fields[("owner", "Apply", "")] == {"f:spec": {"f:model": {}}}

    not_ready = condition("Ready", "False", "Loading", T2)
    code, body = client.apply(path, status_doc("cond", [condition("Synced", reason="Synced"), not_ready]), "ctrl-b")
    assert code == 409, body
    prefix = '.status.conditions[type="Ready"]'
    assert body["reason"] == "Conflict"
    assert body["message"] == ('Apply failed with 3 conflicts: conflicts with "ctrl-a" with subresource "status":\n'
                               f"- {prefix}.lastTransitionTime\n- {prefix}.reason\n- {prefix}.status")
    assert body["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "ctrl-a" with subresource "status"',
         "field": f"{prefix}.{name}"} for name in ("lastTransitionTime", "reason", "status")]

    code, body = client.apply(path, status_doc("cond", [not_ready]), "ctrl-b", force=True)  # and drops Synced
    assert code == 200, body
    obj = get(k, "llmservice", "cond")
    assert [(c["type"], c["status"], c["reason"]) for c in obj["status"]["conditions"]] == [("Ready", "False",
                                                                                            "Loading")]
    fields = fields_of(obj)
    assert fields[("ctrl-a", "Apply", "status")] == {"f:status": {"f:conditions": {'k:{"type":"Ready"}': {
        ".": {}, "f:type": {}}}}}
    code, body = client.apply(path, status_doc("cond", [condition("Ready")]), "ctrl-a")
    assert code == 409, body
    assert {c["message"] for c in body["details"]["causes"]} == {'conflict with "ctrl-b" with subresource "status"'}


def rag(sources: list[dict[str, Any]] | None = None, *, spec: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"llmServiceRef": {"name": "chat"}, "embedding": {"model": "minilm"}} if spec else {}
    if sources is not None:
        body["sources"] = sources
    return {"apiVersion": GV, "kind": "RAGService", "metadata": {"name": "rag", "namespace": NS}, "spec": body}


DOCS = {"name": "docs", "type": "git", "uri": "https://git.example.com/docs"}
WIKI = {"name": "wiki", "type": "url", "uri": "https://wiki.example.com"}


def test_sources_of_a_rag_service_are_merged_and_owned_by_name(k: APIServer, client: Client) -> None:
    ssa(k, "ctrl-a", rag([DOCS], spec=True))
    ssa(k, "ctrl-b", rag([WIKI]))
    obj = get(k, "ragservice", "rag")
    assert [(s["name"], s["uri"]) for s in obj["spec"]["sources"]] == [("docs", DOCS["uri"]), ("wiki", WIKI["uri"])]
    assert fields_of(obj)[("ctrl-b", "Apply", "")] == {"f:spec": {"f:sources": {'k:{"name":"wiki"}': {
        ".": {}, "f:name": {}, "f:type": {}, "f:uri": {}}}}}
    assert fields_of(obj)[("ctrl-a", "Apply", "")]["f:spec"]["f:llmServiceRef"] == {}  # atomic: one field

    moved = {**DOCS, "uri": "https://mirror.example.com/docs"}
    conflict = ssa(k, "ctrl-b", rag([WIKI, moved]), check=False)
    assert conflict.returncode != 0
    assert 'conflict with "ctrl-a": .spec.sources[name="docs"].uri' in conflict.stderr

    code, body = client.apply(f"/apis/{GV}/namespaces/{NS}/ragservices/rag", rag([WIKI, WIKI]), "ctrl-b")
    assert (code, body["reason"]) == (400, "BadRequest")
    assert body["message"] == (f"failed to create typed patch object ({NS}/rag; {GV}, Kind=RAGService): "
                               '.spec.sources: duplicate entries for key [name="wiki"]')

    ssa(k, "ctrl-a", rag(spec=True))  # ctrl-a stops applying its source: removed, ctrl-b's stays
    obj = get(k, "ragservice", "rag")
    assert [s["name"] for s in obj["spec"]["sources"]] == ["wiki"]
    assert "f:sources" not in fields_of(obj)[("ctrl-a", "Apply", "")]["f:spec"]
    ssa(k, "ctrl-b", rag([WIKI, moved]))  # docs is nobody's now: ctrl-b adds it back without a conflict
    assert [s["name"] for s in get(k, "ragservice", "rag")["spec"]["sources"]] == ["wiki", "docs"]
