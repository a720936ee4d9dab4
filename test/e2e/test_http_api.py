"""Raw HTTPS against a running KubeLLM: the wire behaviour of kube-apiserver, request by request.

Every request presents the admin client certificate and trusts the serving CA; nothing here goes through
a client library, so status codes, reasons, headers and bodies are checked exactly as a client sees them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from conftest import APIServer

GROUP = "model.kubellm.io"
VERSION = "v1alpha1"
GV = f"{GROUP}/{VERSION}"
MODEL = "Qwen/Qwen2.5-3B-Instruct"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
LLM_COLUMNS = ["Name", "Model", "Quant", "Replicas", "Ready", "Phase", "Endpoint", "Age"]
MAX_BODY = 3 * 1024 * 1024
OPTIMISTIC_LOCK = "the object has been modified; please apply your changes to the latest version and try again"


# --- a tiny HTTPS client --------------------------------------------------------------------------------------


@dataclass
class Resp:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def header_all(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []

    def __repr__(self) -> str:
        return f"<{self.status} {self.content_type} {self.body[:600]!r}>"


@dataclass
class WatchStream:
    """A watch response read line by line on a background thread."""

    conn: http.client.HTTPSConnection
    resp: http.client.HTTPResponse
    events: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    ended: threading.Event = field(default_factory=threading.Event)

    def start(self) -> WatchStream:
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                if line.strip():
                    self.events.put(json.loads(line))
        except Exception:  # the stream was closed under us, or ended mid-chunk
            pass
        finally:
            self.ended.set()
            self.events.put(None)

    def next(self, timeout: float = 15) -> dict[str, Any] | None:
        """The next event; None when the stream ended. Fails if nothing arrives in time."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no watch event within {timeout}s") from None

    def collect(self, until: Callable[[dict[str, Any]], bool], timeout: float = 15,
                skip_bookmarks: bool = True) -> list[dict[str, Any]]:
        """Events up to and including the first one matching `until`."""
        deadline = time.monotonic() + timeout
        got: list[dict[str, Any]] = []
        while True:
            ev = self.next(max(0.1, deadline - time.monotonic()))
            if ev is None:
                raise AssertionError(f"watch ended before the expected event; got {got}")
            if skip_bookmarks and ev.get("type") == "BOOKMARK":
                continue
            got.append(ev)
            if until(ev):
                return got

    def close(self) -> None:
        sock = self.conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.ended.wait(5)
        self.conn.close()


class Http:
    def __init__(self, apiserver: APIServer) -> None:
        parsed = urllib.parse.urlsplit(apiserver.url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 443
        pki = apiserver.state_dir / "pki"
        self.ctx = ssl.create_default_context(cafile=str(pki / "serving-ca.crt"))
        self.ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def _conn(self, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                accept: str | None = "application/json", headers: dict[str, str] | None = None) -> Resp:
        data: bytes | None
        if body is None:
            data = None
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        hdrs = dict(headers or {})
        if accept is not None:
            hdrs.setdefault("Accept", accept)
        if data is not None:
            hdrs.setdefault("Content-Type", content_type)
        conn = self._conn()
        try:
            # The server may answer (e.g. 413) before reading everything; its response is still there.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return Resp(r.status, r.headers, r.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Resp:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> Resp:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> Resp:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any, content_type: str = "application/merge-patch+json", **kw: Any) -> Resp:
        return self.request("PATCH", path, body, content_type=content_type, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> Resp:
        return self.request("DELETE", path, body, **kw)

    def watch(self, path: str, accept: str = "application/json") -> WatchStream:
        conn = self._conn(timeout=60)
        conn.request("GET", path, headers={"Accept": accept})
        resp = conn.getresponse()
        assert resp.status == 200, (resp.status, resp.read()[:500])
        return WatchStream(conn, resp).start()


@pytest.fixture(scope="module")
def h(apiserver: APIServer) -> Http:
    return Http(apiserver)


# --- helpers --------------------------------------------------------------------------------------------------


def coll(ns: str, resource: str = "llmservices") -> str:
    return f"/apis/{GV}/namespaces/{ns}/{resource}"


def item(ns: str, name: str, sub: str = "") -> str:
    return f"{coll(ns)}/{name}" + (f"/{sub}" if sub else "")


def llm(name: str, *, replicas: int = 1, labels: dict[str, str] | None = None,
        finalizers: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": GV, "kind": "LLMService", "metadata": meta,
            "spec": {"model": MODEL, "replicas": replicas, **spec}}


def q(**params: Any) -> str:
    return "?" + urllib.parse.urlencode(params)


def assert_status(r: Resp, code: int, reason: str) -> dict[str, Any]:
    """The response is a metav1.Status failure with this code and reason; returns it."""
    assert r.status == code, r
    assert r.content_type.split(";")[0] == "application/json", r
    body = r.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1", body
    assert body["status"] == "Failure", body
    assert body["code"] == code, body
    assert body["reason"] == reason, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body  # type: ignore[no-any-return]


def create(h: Http, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
    r = h.post(coll(ns), obj)
    assert r.status == 201, r
    return r.json()  # type: ignore[no-any-return]


def list_rv(h: Http, ns: str) -> str:
    r = h.get(coll(ns))
    assert r.status == 200, r
    return r.json()["metadata"]["resourceVersion"]  # type: ignore[no-any-return]


@pytest.fixture
def ns(h: Http, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of this test's own, emptied (finalizers dropped) afterwards."""
    name = "http-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower()).strip("-")[:50]
    yield name
    r = h.get(coll(name))
    if r.status == 200:
        for obj in r.json()["items"]:
            if obj["metadata"].get("finalizers"):
                h.patch(item(name, obj["metadata"]["name"]), {"metadata": {"finalizers": None}})
    h.delete(coll(name))


# --- version, health, metrics ---------------------------------------------------------------------------------


def test_version(h: Http) -> None:
    r = h.get("/version")
    assert r.status == 200 and r.content_type.startswith("application/json"), r
    v = r.json()
    for key in ("major", "minor", "gitVersion", "goVersion", "platform"):
        assert isinstance(v.get(key), str), (key, v)
    assert v["gitVersion"].startswith("v"), v


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/readyz/etcd", "/readyz/ping", "/livez/ping",
                                  "/healthz/etcd"])
def test_health_endpoints(h: Http, path: str) -> None:
    r = h.get(path, accept=None)
    assert r.status == 200, r
    assert r.body == b"ok", r


def test_readyz_verbose(h: Http) -> None:
    r = h.get("/readyz?verbose", accept=None)
    assert r.status == 200, r
    lines = r.body.decode().splitlines()
    assert "[+]etcd ok" in lines and "[+]ping ok" in lines, lines
    assert lines[-1] == "readyz check passed", lines
    excluded = h.get("/readyz?verbose&exclude=etcd", accept=None)
    assert excluded.status == 200
    assert "[+]etcd excluded: ok" in excluded.body.decode().splitlines(), excluded


def test_unknown_health_check_is_404(h: Http) -> None:
    assert h.get("/readyz/bogus", accept=None).status == 404


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m.group(1) == name:
            out.append((dict(_LABEL.findall(m.group(2))), float(m.group(3))))
    return out


def metric_value(text: str, name: str, **labels: str) -> float:
    return sum(v for lbl, v in metric_samples(text, name) if all(lbl.get(k) == val for k, val in labels.items()))


def test_metrics(h: Http, ns: str) -> None:
    before = h.get("/metrics", accept=None).body.decode()
    create(h, ns, llm("m1"))
    assert h.get(coll(ns)).status == 200
    assert h.get(item(ns, "missing")).status == 404
    r = h.get("/metrics", accept=None)
    assert r.status == 200, r
    assert r.content_type.startswith("text/plain"), r
    text = r.body.decode()
    assert "apiserver_request_total{" in text
    assert "apiserver_request_duration_seconds_bucket{" in text
    assert "etcd_request_duration_seconds" in text

    problems = []
    common = {"group": GROUP, "version": VERSION, "resource": "llmservices", "subresource": ""}
    # kube-apiserver's verb label is the route's HTTP-ish verb: POST, PUT, PATCH, APPLY, GET, LIST, WATCH, DELETE,
    # DELETECOLLECTION; the scope of a create or a named request is "resource".
    for verb, code, scope in (("POST", "201", "resource"), ("LIST", "200", "namespace"), ("GET", "404", "resource")):
        delta = (metric_value(text, "apiserver_request_total", verb=verb, code=code, scope=scope, **common)
                 - metric_value(before, "apiserver_request_total", verb=verb, code=code, scope=scope, **common))
        if delta < 1:
            seen = sorted({(lbl["verb"], lbl["code"], lbl["scope"]) for lbl, _ in
                           metric_samples(text, "apiserver_request_total") if lbl.get("resource") == "llmservices"})
            problems.append(f"no apiserver_request_total sample for verb={verb} code={code} scope={scope}; "
                            f"(verb, code, scope) seen: {seen}")
    buckets = metric_samples(text, "apiserver_request_duration_seconds_bucket")
    if not any(lbl.get("resource") == "llmservices" and lbl.get("verb") == "LIST" and "le" in lbl
               for lbl, _ in buckets):
        problems.append("no apiserver_request_duration_seconds_bucket for verb=LIST resource=llmservices")
    assert not problems, problems


# --- discovery ------------------------------------------------------------------------------------------------


def test_discovery_group_list(h: Http) -> None:
    r = h.get("/apis")
    assert r.status == 200 and r.content_type.startswith("application/json"), r
    body = r.json()
    assert body["kind"] == "APIGroupList" and body["apiVersion"] == "v1"
    groups = {g["name"]: g for g in body["groups"]}
    for name in ("iam.kubellm.io", "cluster.kubellm.io", "model.kubellm.io"):
        assert groups[name]["versions"] == [{"groupVersion": f"{name}/v1alpha1", "version": "v1alpha1"}]
        assert groups[name]["preferredVersion"] == {"groupVersion": f"{name}/v1alpha1", "version": "v1alpha1"}

    g = h.get(f"/apis/{GROUP}")
    assert g.status == 200, g
    assert g.json() == {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP,
                        "versions": [{"groupVersion": GV, "version": VERSION}],
                        "preferredVersion": {"groupVersion": GV, "version": VERSION}}


def test_discovery_resource_list(h: Http) -> None:
    r = h.get(f"/apis/{GV}")
    assert r.status == 200, r
    body = r.json()
    assert body["kind"] == "APIResourceList" and body["groupVersion"] == GV
    res = {x["name"]: x for x in body["resources"]}
    main = res["llmservices"]
    assert main["kind"] == "LLMService" and main["singularName"] == "llmservice" and main["namespaced"] is True
    assert main["shortNames"] == ["llms"] and main["categories"] == ["kubellm"]
    assert sorted(main["verbs"]) == ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                                     "watch"]
    status = res["llmservices/status"]
    assert status["kind"] == "LLMService" and sorted(status["verbs"]) == ["get", "patch", "update"]
    scale = res["llmservices/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert sorted(scale["verbs"]) == ["get", "patch", "update"]
    assert "ragservices" in res and "ragservices/status" in res and "ragservices/scale" not in res
    cluster = h.get("/apis/cluster.kubellm.io/v1alpha1").json()
    clusters = {x["name"]: x for x in cluster["resources"]}
    assert clusters["clusters"]["namespaced"] is False


def test_discovery_unknown_group_version(h: Http) -> None:
    assert_status(h.get("/apis/nope.kubellm.io"), 404, "NotFound")
    assert_status(h.get(f"/apis/{GROUP}/v9"), 404, "NotFound")


def test_aggregated_discovery_v2(h: Http) -> None:
    r = h.get("/apis", accept=DISCOVERY_V2 + ",application/json;q=0.9")
    assert r.status == 200, r
    mt, *params = [p.strip() for p in r.content_type.split(";")]
    assert mt == "application/json"
    assert dict(p.split("=", 1) for p in params) == {"g": "apidiscovery.k8s.io", "v": "v2",
                                                     "as": "APIGroupDiscoveryList"}, r.content_type
    body = r.json()
    assert body["kind"] == "APIGroupDiscoveryList" and body["apiVersion"] == "apidiscovery.k8s.io/v2"
    items = {i["metadata"]["name"]: i for i in body["items"]}
    model = items[GROUP]["versions"][0]
    assert model["version"] == VERSION
    res = {x["resource"]: x for x in model["resources"]}
    llms = res["llmservices"]
    assert llms["scope"] == "Namespaced" and llms["shortNames"] == ["llms"] and llms["categories"] == ["kubellm"]
    assert llms["responseKind"] == {"group": GROUP, "version": VERSION, "kind": "LLMService"}
    subs = {s["subresource"]: s for s in llms["subresources"]}
    assert subs["scale"]["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert subs["status"]["responseKind"]["kind"] == "LLMService"
    plain = h.get("/apis")
    assert plain.json()["kind"] == "APIGroupList"


# --- OpenAPI --------------------------------------------------------------------------------------------------


def test_openapi_v2(h: Http) -> None:
    r = h.get("/openapi/v2")
    assert r.status == 200 and r.content_type.startswith("application/json"), r
    doc = r.json()
    assert doc["swagger"] == "2.0"
    llm_def = doc["definitions"]["io.kubellm.model.v1alpha1.LLMService"]
    assert llm_def["x-kubernetes-group-version-kind"] == [{"group": GROUP, "kind": "LLMService", "version": VERSION}]
    assert "spec" in llm_def["properties"]
    etag = r.headers["ETag"]
    assert etag
    again = h.get("/openapi/v2", headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b"", again
    stale = h.get("/openapi/v2", headers={"If-None-Match": '"0000"'})
    assert stale.status == 200


def test_openapi_v3(h: Http) -> None:
    r = h.get("/openapi/v3")
    assert r.status == 200, r
    paths = r.json()["paths"]
    url = paths[f"apis/{GV}"]["serverRelativeURL"]
    assert url.startswith(f"/openapi/v3/apis/{GV}?hash=")
    doc_r = h.get(url)
    assert doc_r.status == 200, doc_r
    doc = doc_r.json()
    assert doc["openapi"].startswith("3.")
    schemas = doc["components"]["schemas"]
    assert "io.kubellm.model.v1alpha1.LLMService" in schemas
    assert schemas["io.kubellm.model.v1alpha1.LLMService"]["x-kubernetes-group-version-kind"] == [
        {"group": GROUP, "kind": "LLMService", "version": VERSION}]
    etag = doc_r.headers["ETag"]
    assert etag
    assert h.get(url, headers={"If-None-Match": etag}).status == 304
    index_etag = r.headers["ETag"]
    assert h.get("/openapi/v3", headers={"If-None-Match": index_etag}).status == 304
    assert_status(h.get("/openapi/v3/apis/nope.kubellm.io/v1"), 404, "NotFound")


# --- tables ---------------------------------------------------------------------------------------------------


def test_table_list_and_get(h: Http, ns: str) -> None:
    create(h, ns, llm("t1", replicas=2, quantization="awq"))
    create(h, ns, llm("t2"))
    r = h.get(coll(ns), accept=TABLE)
    assert r.status == 200, r
    assert r.content_type.split(";")[0] == "application/json"
    t = r.json()
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in t["columnDefinitions"]] == LLM_COLUMNS
    assert t["metadata"]["resourceVersion"]
    assert [row["cells"][0] for row in t["rows"]] == ["t1", "t2"]
    first = t["rows"][0]
    assert first["cells"][1:4] == [MODEL, "awq", 2]
    assert first["object"]["kind"] == "PartialObjectMetadata"
    assert first["object"]["apiVersion"] == "meta.k8s.io/v1"
    assert first["object"]["metadata"]["name"] == "t1" and first["object"]["metadata"]["uid"]
    assert "spec" not in first["object"]

    one = h.get(item(ns, "t2"), accept=TABLE)
    assert one.status == 200, one
    ot = one.json()
    assert ot["kind"] == "Table" and [c["name"] for c in ot["columnDefinitions"]] == LLM_COLUMNS
    assert len(ot["rows"]) == 1 and ot["rows"][0]["cells"][0] == "t2"
    assert ot["rows"][0]["object"]["kind"] == "PartialObjectMetadata"

    full = h.get(coll(ns) + q(includeObject="Object"), accept=TABLE).json()
    assert full["rows"][0]["object"]["kind"] == "LLMService"
    assert full["rows"][0]["object"]["spec"]["quantization"] == "awq"
    none = h.get(coll(ns) + q(includeObject="None"), accept=TABLE).json()
    assert all(row.get("object") is None for row in none["rows"]), none["rows"]


def test_table_for_every_kind(h: Http) -> None:
    groups = h.get("/apis").json()["groups"]
    seen = []
    for g in groups:
        gv = g["preferredVersion"]["groupVersion"]
        for res in h.get(f"/apis/{gv}").json()["resources"]:
            if "/" in res["name"]:
                continue
            r = h.get(f"/apis/{gv}/{res['name']}", accept=TABLE)
            assert r.status == 200, (res["name"], r)
            t = r.json()
            assert t["kind"] == "Table", (res["name"], t)
            names = [c["name"] for c in t["columnDefinitions"]]
            assert names[0] == "Name" and names[-1] == "Age", (res["name"], names)
            seen.append(f"{gv}/{res['name']}")
    assert len(seen) >= 9, seen


def test_table_watch(h: Http, ns: str) -> None:
    rv = list_rv(h, ns)
    w = h.watch(coll(ns) + q(watch="true", resourceVersion=rv, timeoutSeconds=20), accept=TABLE)
    try:
        create(h, ns, llm("tw1"))
        create(h, ns, llm("tw2"))
        events = [w.next(), w.next()]
    finally:
        w.close()
    for ev in events:
        assert ev is not None and ev["type"] == "ADDED", events
        assert ev["object"]["kind"] == "Table", ev
        assert len(ev["object"]["rows"]) == 1
    assert [c["name"] for c in events[0]["object"]["columnDefinitions"]] == LLM_COLUMNS  # type: ignore[index]
    assert [ev["object"]["rows"][0]["cells"][0] for ev in events] == ["tw1", "tw2"]  # type: ignore[index]


# --- watch ----------------------------------------------------------------------------------------------------


def test_watch_events(h: Http, ns: str) -> None:
    rv = list_rv(h, ns)
    w = h.watch(coll(ns) + q(watch="true", resourceVersion=rv, timeoutSeconds=30))
    try:
        assert w.resp.getheader("Content-Type", "").startswith("application/json")
        created = create(h, ns, llm("w1"))
        patched = h.patch(item(ns, "w1"), {"spec": {"replicas": 3}})
        assert patched.status == 200, patched
        deleted = h.delete(item(ns, "w1"))
        assert deleted.status == 200, deleted
        events = w.collect(lambda ev: ev["type"] == "DELETED")
    finally:
        w.close()
    assert [ev["type"] for ev in events] == ["ADDED", "MODIFIED", "DELETED"], events
    assert all(ev["object"]["kind"] == "LLMService" and ev["object"]["metadata"]["name"] == "w1" for ev in events)
    assert events[0]["object"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert events[1]["object"]["spec"]["replicas"] == 3
    assert events[1]["object"]["metadata"]["resourceVersion"] == patched.json()["metadata"]["resourceVersion"]
    rvs = [int(ev["object"]["metadata"]["resourceVersion"]) for ev in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3, rvs

    # Resuming from the ADDED event's resourceVersion replays what came after it.
    resumed = h.watch(coll(ns) + q(watch="true", resourceVersion=rvs[0], timeoutSeconds=30))
    try:
        again = resumed.collect(lambda ev: ev["type"] == "DELETED")
    finally:
        resumed.close()
    assert [ev["type"] for ev in again] == ["MODIFIED", "DELETED"], again


def test_watch_without_resource_version_sends_current_state(h: Http, ns: str) -> None:
    create(h, ns, llm("s1"))
    w = h.watch(coll(ns) + q(watch="true", timeoutSeconds=20))
    try:
        first = w.next()
    finally:
        w.close()
    assert first is not None and first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "s1", first


def test_watch_bookmarks_and_timeout(h: Http, ns: str) -> None:
    rv = list_rv(h, ns)
    start = time.monotonic()
    w = h.watch(coll(ns) + q(watch="true", resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds=2))
    got = []
    try:
        while True:
            ev = w.next(timeout=15)
            if ev is None:
                break
            got.append(ev)
    finally:
        w.close()
    elapsed = time.monotonic() - start
    assert 1.5 <= elapsed < 6, elapsed
    assert all(ev["type"] == "BOOKMARK" for ev in got), got
    for ev in got:
        assert ev["object"]["kind"] == "LLMService" and ev["object"]["metadata"]["resourceVersion"], ev


def test_watch_label_selector_leaving_is_deleted(h: Http, ns: str) -> None:
    create(h, ns, llm("sel", labels={"app": "chat"}))
    create(h, ns, llm("other", labels={"app": "batch"}))
    rv = list_rv(h, ns)
    w = h.watch(coll(ns) + q(watch="true", resourceVersion=rv, labelSelector="app=chat", timeoutSeconds=30))
    try:
        assert h.patch(item(ns, "other"), {"spec": {"replicas": 2}}).status == 200
        r = h.patch(item(ns, "sel"), {"metadata": {"labels": {"app": "batch"}}})
        assert r.status == 200, r
        assert h.patch(item(ns, "other"), {"metadata": {"labels": {"app": "chat"}}}).status == 200
        events = w.collect(lambda ev: ev["type"] == "ADDED")
    finally:
        w.close()
    assert [(ev["type"], ev["object"]["metadata"]["name"]) for ev in events] == [("DELETED", "sel"),
                                                                                 ("ADDED", "other")], events


def test_field_selector_status_phase(h: Http, ns: str) -> None:
    obj = create(h, ns, llm("phase"))
    create(h, ns, llm("pending"))
    rv = obj["metadata"]["resourceVersion"]
    w = h.watch(coll(ns) + q(watch="true", resourceVersion=rv, fieldSelector="status.phase=Serving",
                             timeoutSeconds=30))
    try:
        current = h.get(item(ns, "phase")).json()
        current["status"] = {"phase": "Serving", "replicas": 1, "readyReplicas": 1}
        r = h.put(item(ns, "phase", "status"), current)
        assert r.status == 200, r
        assert r.json()["status"]["phase"] == "Serving"
        events = w.collect(lambda ev: True)
    finally:
        w.close()
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "phase", events
    listed = h.get(coll(ns) + q(fieldSelector="status.phase=Serving")).json()
    assert [i["metadata"]["name"] for i in listed["items"]] == ["phase"]
    negated = h.get(coll(ns) + q(fieldSelector="status.phase!=Serving")).json()
    assert [i["metadata"]["name"] for i in negated["items"]] == ["pending"]


# --- query semantics ------------------------------------------------------------------------------------------


def test_pagination(h: Http, ns: str) -> None:
    names = [f"p{i:02d}" for i in range(7)]
    for n in names:
        create(h, ns, llm(n))
    r1 = h.get(coll(ns) + q(limit=3))
    assert r1.status == 200, r1
    p1 = r1.json()
    assert [i["metadata"]["name"] for i in p1["items"]] == names[:3]
    assert p1["metadata"]["continue"] and p1["metadata"]["remainingItemCount"] == 4, p1["metadata"]
    # A write between pages does not show up: every page is read at the first page's revision.
    create(h, ns, llm("p99"))
    p2 = h.get(coll(ns) + q(limit=3, **{"continue": p1["metadata"]["continue"]})).json()
    assert [i["metadata"]["name"] for i in p2["items"]] == names[3:6]
    assert p2["metadata"]["remainingItemCount"] == 1
    assert p2["metadata"]["resourceVersion"] == p1["metadata"]["resourceVersion"]
    p3 = h.get(coll(ns) + q(limit=3, **{"continue": p2["metadata"]["continue"]})).json()
    assert [i["metadata"]["name"] for i in p3["items"]] == names[6:]
    assert not p3["metadata"].get("continue") and "remainingItemCount" not in p3["metadata"], p3["metadata"]
    unpaged = h.get(coll(ns)).json()
    assert "continue" not in unpaged["metadata"] or not unpaged["metadata"]["continue"]
    assert len(unpaged["items"]) == 8


def test_resource_version_semantics(h: Http, ns: str) -> None:
    create(h, ns, llm("old"))
    rv = list_rv(h, ns)
    create(h, ns, llm("new"))
    zero = h.get(coll(ns) + q(resourceVersion="0"))
    assert zero.status == 200, zero
    assert zero.json()["kind"] == "LLMServiceList" and zero.json()["metadata"]["resourceVersion"]
    exact = h.get(coll(ns) + q(resourceVersion=rv, resourceVersionMatch="Exact"))
    assert exact.status == 200, exact
    assert [i["metadata"]["name"] for i in exact.json()["items"]] == ["old"]
    assert exact.json()["metadata"]["resourceVersion"] == rv
    latest = h.get(coll(ns) + q(resourceVersion=rv, resourceVersionMatch="NotOlderThan"))
    assert [i["metadata"]["name"] for i in latest.json()["items"]] == ["new", "old"]


def test_dry_run_writes_nothing(h: Http, ns: str) -> None:
    dry = q(dryRun="All")
    r = h.post(coll(ns) + dry, llm("dry"))
    assert r.status == 201 and r.json()["metadata"]["name"] == "dry", r
    assert_status(h.get(item(ns, "dry")), 404, "NotFound")

    obj = create(h, ns, llm("real"))
    rv = obj["metadata"]["resourceVersion"]
    obj["spec"]["replicas"] = 5
    put = h.put(item(ns, "real") + dry, obj)
    assert put.status == 200 and put.json()["spec"]["replicas"] == 5, put
    patched = h.patch(item(ns, "real") + dry, {"spec": {"replicas": 6}})
    assert patched.status == 200 and patched.json()["spec"]["replicas"] == 6, patched
    stored = h.get(item(ns, "real")).json()
    assert stored["spec"]["replicas"] == 1 and stored["metadata"]["resourceVersion"] == rv

    deleted = h.delete(item(ns, "real") + dry)
    assert deleted.status == 200, deleted
    collection = h.delete(coll(ns) + dry)
    assert collection.status == 200, collection
    assert [i["metadata"]["name"] for i in collection.json()["items"]] == ["real"]
    after = h.get(item(ns, "real"))
    assert after.status == 200 and after.json()["metadata"]["resourceVersion"] == rv, after


def with_bogus(name: str) -> dict[str, Any]:
    b = llm(name)
    b["spec"]["bogus"] = 1
    return b


def test_field_validation_strict_and_ignore(h: Http, ns: str) -> None:
    strict = h.post(coll(ns) + q(fieldValidation="Strict"), with_bogus("strict"))
    st = assert_status(strict, 400, "BadRequest")
    assert st["message"] == 'strict decoding error: unknown field "spec.bogus"', st
    assert_status(h.get(item(ns, "strict")), 404, "NotFound")

    ignore = h.post(coll(ns) + q(fieldValidation="Ignore"), with_bogus("ignore"))
    assert ignore.status == 201, ignore
    assert "bogus" not in ignore.json()["spec"]
    assert ignore.header_all("Warning") == [], ignore.header_all("Warning")


@pytest.mark.parametrize("params", [q(fieldValidation="Warn"), ""], ids=["warn", "default"])
def test_field_validation_warn(h: Http, ns: str, params: str) -> None:
    r = h.post(coll(ns) + params, with_bogus("warned"))
    assert r.status == 201, r
    assert "bogus" not in r.json()["spec"]
    # RFC 7234 warn-text is a quoted-string: the quotes inside the message are backslash-escaped.
    assert r.header_all("Warning") == ['299 - "unknown field \\"spec.bogus\\""'], r.header_all("Warning")


# --- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/apis/nope.kubellm.io/v1alpha1/namespaces/x/things",
                                  f"/apis/{GV}/namespaces/x/things", f"/apis/{GV}/things",
                                  f"/apis/{GV}/namespaces/x/llmservices/a/bogus", "/no/such/path",
                                  "/apis/cluster.kubellm.io/v1alpha1/namespaces/x/clusters"])
def test_unknown_paths_are_404(h: Http, path: str) -> None:
    body = assert_status(h.get(path), 404, "NotFound")
    assert body["message"] == "the server could not find the requested resource", body


def test_wrong_method_is_405(h: Http, ns: str) -> None:
    create(h, ns, llm("m"))
    for method, path, body in (("POST", item(ns, "m"), llm("m")), ("PUT", coll(ns), llm("m")),
                               ("PATCH", coll(ns), {"spec": {}}), ("DELETE", item(ns, "m", "status"), None),
                               ("POST", item(ns, "m", "scale"), {})):
        r = h.request(method, path, body, content_type="application/merge-patch+json" if method == "PATCH"
                      else "application/json")
        assert_status(r, 405, "MethodNotAllowed")


def test_strategic_merge_patch_is_415(h: Http, ns: str) -> None:
    create(h, ns, llm("smp"))
    r = h.patch(item(ns, "smp"), {"spec": {"replicas": 2}}, content_type="application/strategic-merge-patch+json")
    st = assert_status(r, 415, "UnsupportedMediaType")
    assert "application/merge-patch+json" in st["message"] and "application/json-patch+json" in st["message"], st
    assert h.get(item(ns, "smp")).json()["spec"]["replicas"] == 1


def test_body_too_large_is_413(h: Http, ns: str) -> None:
    big = llm("big")
    big["metadata"]["annotations"] = {"blob": "x" * (MAX_BODY + 64 * 1024)}
    st = assert_status(h.post(coll(ns), big), 413, "RequestEntityTooLarge")
    assert st["message"] == f"Request entity too large: limit is {MAX_BODY}", st
    assert_status(h.get(item(ns, "big")), 404, "NotFound")


def test_malformed_bodies_are_400(h: Http, ns: str) -> None:
    assert_status(h.post(coll(ns), b'{"apiVersion": "model.kubellm.io/v1alpha1", "kind": '), 400, "BadRequest")
    assert_status(h.post(coll(ns), b"metadata: {name: y\n  spec: [\n", content_type="application/yaml"), 400,
                  "BadRequest")
    assert_status(h.post(coll(ns), b"[1, 2]"), 400, "BadRequest")
    obj = create(h, ns, llm("mp"))
    assert_status(h.patch(item(ns, "mp"), b"{not json"), 400, "BadRequest")
    assert_status(h.put(item(ns, "mp"), b"{not json"), 400, "BadRequest")
    assert h.get(item(ns, "mp")).json()["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_invalid_object_is_422(h: Http, ns: str) -> None:
    r = h.post(coll(ns), llm("bad", quantization="int3", maxModelLen=256))
    st = assert_status(r, 422, "Invalid")
    assert st["details"]["name"] == "bad" and st["details"]["group"] == GROUP
    assert st["details"]["kind"] == "LLMService"
    assert st["message"].startswith(f'LLMService.{GROUP} "bad" is invalid: '), st
    causes = {c["field"]: c for c in st["details"]["causes"]}
    assert causes["spec.quantization"]["reason"] == "FieldValueNotSupported", causes
    assert causes["spec.quantization"]["message"].startswith('Unsupported value: "int3"'), causes
    assert causes["spec.maxModelLen"]["reason"] == "FieldValueInvalid", causes
    assert causes["spec.maxModelLen"]["message"].startswith("Invalid value: 256"), causes
    assert_status(h.get(item(ns, "bad")), 404, "NotFound")


def test_conflicts_are_409(h: Http, ns: str) -> None:
    obj = create(h, ns, llm("c"))
    dup = assert_status(h.post(coll(ns), llm("c")), 409, "AlreadyExists")
    assert dup["message"] == f'llmservices.{GROUP} "c" already exists', dup
    assert dup["details"] == {"name": "c", "group": GROUP, "kind": "llmservices"}, dup

    fresh = dict(obj, spec={**obj["spec"], "replicas": 2})
    ok = h.put(item(ns, "c"), fresh)
    assert ok.status == 200, ok
    stale = h.put(item(ns, "c"), dict(obj, spec={**obj["spec"], "replicas": 3}))
    st = assert_status(stale, 409, "Conflict")
    assert st["message"] == f'Operation cannot be fulfilled on llmservices.{GROUP} "c": {OPTIMISTIC_LOCK}', st

    old_rv = obj["metadata"]["resourceVersion"]
    pre = h.delete(item(ns, "c"), {"kind": "DeleteOptions", "apiVersion": "v1",
                                   "preconditions": {"resourceVersion": old_rv}})
    st = assert_status(pre, 409, "Conflict")
    assert (f"Precondition failed: ResourceVersion in precondition: {old_rv}, ResourceVersion in object meta: "
            f"{ok.json()['metadata']['resourceVersion']}") in st["message"], st
    bad_uid = h.delete(item(ns, "c"), {"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}})
    assert_status(bad_uid, 409, "Conflict")
    assert h.get(item(ns, "c")).status == 200

    no_rv = dict(obj, spec={**obj["spec"], "replicas": 4})
    no_rv["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    st = assert_status(h.put(item(ns, "c"), no_rv), 422, "Invalid")
    assert any(c["field"] == "metadata.resourceVersion" for c in st["details"]["causes"]), st


def test_missing_object_is_404(h: Http, ns: str) -> None:
    for method in ("GET", "DELETE"):
        st = assert_status(h.request(method, item(ns, "ghost")), 404, "NotFound")
        assert st["message"] == f'llmservices.{GROUP} "ghost" not found', st
        assert st["details"] == {"name": "ghost", "group": GROUP, "kind": "llmservices"}, st
    assert_status(h.patch(item(ns, "ghost"), {"spec": {"replicas": 2}}), 404, "NotFound")
    assert_status(h.get(item(ns, "ghost", "scale")), 404, "NotFound")


def test_bad_query_parameters_are_400(h: Http, ns: str) -> None:
    create(h, ns, llm("qp"))
    for params in ({"continue": "garbage!!"}, {"labelSelector": "app in (a"}, {"labelSelector": "!!x"},
                   {"fieldSelector": "spec.bogus=1"}, {"limit": "abc"}, {"timeoutSeconds": "soon", "watch": "true"}):
        assert_status(h.get(coll(ns) + q(**params)), 400, "BadRequest")
    st = assert_status(h.get(coll(ns) + q(fieldSelector="spec.bogus=1")), 400, "BadRequest")
    assert "spec.bogus" in st["message"], st


def options_problem(label: str, r: Resp, fld: str, kind: str) -> str | None:
    """kube-apiserver validates the request options (metav1 CreateOptions, PatchOptions, DeleteOptions) before
    anything else: a bad value is 422 Invalid on the options kind in group meta.k8s.io, with no name."""
    body = r.json()
    details = body.get("details") or {}
    got = (r.status, body.get("reason"), [c.get("field") for c in details.get("causes", [])], details.get("kind"),
           details.get("group"), details.get("name", ""))
    want = (422, "Invalid", [fld], kind, "meta.k8s.io", "")
    return None if got == want else f"{label}: got {got} ({body.get('message')!r}), want {want}"


def test_invalid_request_options_are_422(h: Http, ns: str) -> None:
    create(h, ns, llm("opts"))
    apply = yaml.safe_dump(llm("opts", replicas=3))
    checks = [
        ("POST ?dryRun=Some", h.post(coll(ns) + q(dryRun="Some"), llm("opts-new")), "dryRun", "CreateOptions"),
        ("POST ?fieldValidation=Loose", h.post(coll(ns) + q(fieldValidation="Loose"), llm("opts-new")),
         "fieldValidation", "CreateOptions"),
        ("PATCH merge ?force=true", h.patch(item(ns, "opts") + q(force="true"), {"spec": {"replicas": 2}}),
         "force", "PatchOptions"),
        ("PATCH apply without fieldManager",
         h.patch(item(ns, "opts"), apply, content_type="application/apply-patch+yaml"), "fieldManager",
         "PatchOptions"),
        ("DELETE ?propagationPolicy=Sometimes", h.delete(item(ns, "opts") + q(propagationPolicy="Sometimes")),
         "propagationPolicy", "DeleteOptions"),
    ]
    problems = [p for label, r, fld, kind in checks if (p := options_problem(label, r, fld, kind))]
    assert_status(h.get(item(ns, "opts-new")), 404, "NotFound")
    current = h.get(item(ns, "opts"))
    assert current.status == 200 and current.json()["spec"]["replicas"] == 1, current
    ok = h.patch(item(ns, "opts") + q(fieldManager="tester", force="true"), apply,
                 content_type="application/apply-patch+yaml")
    assert ok.status == 200 and ok.json()["spec"]["replicas"] == 3, ok
    assert not problems, problems


# --- YAML -----------------------------------------------------------------------------------------------------


def test_yaml_in_and_out(h: Http, ns: str) -> None:
    text = yaml.safe_dump(llm("yml", labels={"fmt": "yaml"}))
    r = h.post(coll(ns), text, content_type="application/yaml")
    assert r.status == 201, r
    assert r.json()["metadata"]["labels"] == {"fmt": "yaml"}
    out = h.get(item(ns, "yml"), accept="application/yaml")
    assert out.status == 200, out
    assert out.content_type.split(";")[0] == "application/yaml", out
    doc = yaml.safe_load(out.body)
    assert doc["kind"] == "LLMService" and doc["metadata"]["name"] == "yml" and doc["spec"]["model"] == MODEL
    listed = yaml.safe_load(h.get(coll(ns), accept="application/yaml").body)
    assert listed["kind"] == "LLMServiceList" and len(listed["items"]) == 1
    err = h.get(item(ns, "nope"), accept="application/yaml")
    assert err.status == 404 and yaml.safe_load(err.body)["reason"] == "NotFound", err
    assert_status(h.get(item(ns, "yml"), accept="image/png"), 406, "NotAcceptable")


# --- delete and finalizers ------------------------------------------------------------------------------------


def test_delete_with_and_without_finalizers(h: Http, ns: str) -> None:
    create(h, ns, llm("plain"))
    r = h.delete(item(ns, "plain"))
    assert r.status == 200, r
    assert r.json()["kind"] == "LLMService" and r.json()["metadata"]["name"] == "plain"
    assert_status(h.get(item(ns, "plain")), 404, "NotFound")

    create(h, ns, llm("fin", finalizers=["kubellm.io/test"]))
    r = h.delete(item(ns, "fin"))
    assert r.status == 200, r  # as kube-apiserver: 200 with the object, its deletionTimestamp set
    body = r.json()
    assert body["kind"] == "LLMService" and body["metadata"]["deletionTimestamp"], body
    still = h.get(item(ns, "fin"))
    assert still.status == 200 and still.json()["metadata"]["deletionTimestamp"], still
    again = h.delete(item(ns, "fin") + "?orphanDependents=false")
    assert again.status == 202, again  # 202 only when the client asked for orphanDependents=false
    done = h.patch(item(ns, "fin"), {"metadata": {"finalizers": None}})
    assert done.status == 200, done
    assert_status(h.get(item(ns, "fin")), 404, "NotFound")


def test_delete_collection_with_selector(h: Http, ns: str) -> None:
    for i, team in enumerate(["a", "a", "b"]):
        create(h, ns, llm(f"dc{i}", labels={"team": team}))
    r = h.delete(coll(ns) + q(labelSelector="team=a"))
    assert r.status == 200, r
    assert sorted(i["metadata"]["name"] for i in r.json()["items"]) == ["dc0", "dc1"]
    left = h.get(coll(ns)).json()
    assert [i["metadata"]["name"] for i in left["items"]] == ["dc2"]


# --- subresources ---------------------------------------------------------------------------------------------


def test_status_and_scale_subresources(h: Http, ns: str) -> None:
    obj = create(h, ns, llm("sub"))
    # The main resource ignores status; /status ignores everything but status.
    obj["status"] = {"phase": "Serving"}
    obj["spec"]["replicas"] = 2
    main = h.put(item(ns, "sub"), obj).json()
    assert main["spec"]["replicas"] == 2 and not main.get("status"), main
    main["status"] = {"phase": "Loading", "replicas": 2, "selector": "app=sub"}
    main["spec"]["replicas"] = 9
    status = h.put(item(ns, "sub", "status"), main)
    assert status.status == 200, status
    assert status.json()["status"]["phase"] == "Loading" and status.json()["spec"]["replicas"] == 2
    assert status.json()["metadata"]["generation"] == main["metadata"]["generation"]

    scale = h.get(item(ns, "sub", "scale"))
    assert scale.status == 200, scale
    s = scale.json()
    assert (s["apiVersion"], s["kind"]) == ("autoscaling/v1", "Scale")
    assert s["spec"] == {"replicas": 2} and s["status"]["replicas"] == 2 and s["status"]["selector"] == "app=sub"
    s["spec"]["replicas"] = 4
    put = h.put(item(ns, "sub", "scale"), s)
    assert put.status == 200 and put.json()["spec"]["replicas"] == 4, put
    assert h.get(item(ns, "sub")).json()["spec"]["replicas"] == 4
    st = assert_status(h.put(item(ns, "sub", "scale"), s), 409, "Conflict")
    assert OPTIMISTIC_LOCK in st["message"], st
    patched = h.patch(item(ns, "sub", "scale"), {"spec": {"replicas": 1}})
    assert patched.status == 200 and patched.json()["spec"]["replicas"] == 1, patched
    neg = h.patch(item(ns, "sub", "scale"), {"spec": {"replicas": -1}})
    assert_status(neg, 422, "Invalid")
    bad_status = h.patch(item(ns, "sub", "status"), {"status": {"phase": "Dancing"}})
    st = assert_status(bad_status, 422, "Invalid")
    assert [c["field"] for c in st["details"]["causes"]] == ["status.phase"], st


def test_watch_released_when_client_disconnects(h: Http, ns: str) -> None:
    """A watcher that goes away is dropped at once, not at the next event or its timeout."""

    def open_watches() -> float:
        return sum(v for labels, v in metric_samples(h.get("/metrics").body.decode(), "apiserver_longrunning_requests")
                   if labels.get("resource") == "llmservices")

    before = open_watches()
    streams = [h.watch(coll(ns) + q(watch="true", resourceVersion=list_rv(h, ns), timeoutSeconds=300))
               for _ in range(3)]
    deadline = time.monotonic() + 10
    while open_watches() < before + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_watches() == before + 3
    for w in streams:
        w.conn.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        w.conn.sock.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while open_watches() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_watches() == before, "watches of disconnected clients are still open"


# --- sendInitialEvents (watch-list) and pretty, as advertised --------------------------------------------


def test_send_initial_events(h: Http, ns: str) -> None:
    for name in ("a", "b"):
        create(h, ns, llm(name))
    rv = list_rv(h, ns)
    w = h.watch(coll(ns) + q(watch="true", sendInitialEvents="true", allowWatchBookmarks="true",
                              resourceVersionMatch="NotOlderThan", resourceVersion=rv, timeoutSeconds=30))
    try:
        initial = w.collect(lambda ev: ev["type"] == "BOOKMARK", skip_bookmarks=False)
        assert [(ev["type"], ev["object"]["metadata"].get("name")) for ev in initial[:-1]] == [
            ("ADDED", "a"), ("ADDED", "b")]
        end = initial[-1]["object"]
        assert end["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert int(end["metadata"]["resourceVersion"]) >= int(rv)
        assert end["kind"] == "LLMService"
        created = create(h, ns, llm("c"))
        after = w.collect(lambda ev: ev["type"] == "ADDED")
        assert after[-1]["object"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    finally:
        w.close()


def test_send_initial_events_checks(h: Http, ns: str) -> None:
    base = coll(ns)
    r = h.get(base + q(sendInitialEvents="true"))  # a list
    body = assert_status(r, 422, "Invalid")
    assert body["details"]["causes"][0]["message"].endswith("sendInitialEvents is forbidden for list")
    r = h.get(base + q(watch="true", sendInitialEvents="true", timeoutSeconds=1))
    fields = {c["field"] for c in assert_status(r, 422, "Invalid")["details"]["causes"]}
    assert fields == {"allowWatchBookmarks", "resourceVersionMatch"}
    r = h.get(base + q(watch="true", resourceVersionMatch="NotOlderThan", resourceVersion="1", timeoutSeconds=1))
    assert assert_status(r, 422, "Invalid")["details"]["causes"][0]["field"] == "resourceVersionMatch"


def test_pretty_prints_json(h: Http, ns: str) -> None:
    create(h, ns, llm("p"))
    plain, pretty = h.get(item(ns, "p")), h.get(item(ns, "p") + q(pretty="true"))
    assert b"\n" not in plain.body.strip() and pretty.body.startswith(b'{\n  "')
    assert pretty.json() == plain.json()
    assert h.get(item(ns, "p") + q(pretty="maybe")).body == plain.body  # not a boolean: ignored, as kube does
    missing = h.get(item(ns, "nope") + q(pretty="true"))  # errors are pretty too
    assert missing.status == 404 and missing.body.startswith(b'{\n  "kind": "Status"')
