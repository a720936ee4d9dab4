"""The server's edge under attack, over real sockets: metric labels, nesting, parameters, timeouts and limits.

Each test is a class of attack, not one input: random paths and methods never create metric label values
outside the served resources; random nesting never gets past decoding (400, never 500); random parameters
and DeleteOptions never reach etcd unchecked. Timeouts and limits run against servers of their own with
small values (one with short connection timeouts, one with small in-flight budgets and connection cap).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import APIServer, eventually, running_apiserver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from kubellm.server.certs import Pair, issue_client_certificate

GV = "model.kubellm.io/v1alpha1"
IAM = "iam.kubellm.io/v1alpha1"
NS = "edge"
LLMS = f"/apis/{GV}/namespaces/{NS}/llmservices"
VERBS = {"APPLY", "DELETE", "GET", "LIST", "PATCH", "POST", "PUT", "WATCH", "other"}
SCOPES = {"resource", "namespace", "cluster"}
REVIEWS = {("authentication.k8s.io", v, "selfsubjectreviews") for v in ("v1", "v1beta1", "v1alpha1")} | {
    ("authorization.k8s.io", v, r) for v in ("v1", "v1beta1", "v1alpha1")
    for r in ("selfsubjectaccessreviews", "selfsubjectrulesreviews")} | {
    ("authentication.k8s.io", "v1", "tokenreviews"), ("authorization.k8s.io", "v1", "subjectaccessreviews")}
ETCD_WORDS = ("unmarshal", "Go value", "etcdserver", "invalid character", "storage is unavailable")
MAX_DEPTH = 100
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --- a raw HTTPS client ---------------------------------------------------------------------------------------


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    """Requests as the admin (system:masters), anonymously (admin=False), or as `user` when one is given."""

    server: APIServer
    user: Pair | None = None
    host: str = field(init=False)
    port: int = field(init=False)

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.server.url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 443

    def context(self, admin: bool = True) -> ssl.SSLContext:
        pki = self.server.state_dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "serving-ca.crt"))
        if self.user is not None:
            ctx.load_cert_chain(str(self.user.cert), str(self.user.key))
        elif admin:
            ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def editor(self) -> Client:
        """A user outside system:masters (so under the in-flight budgets) who may do anything to LLMServices."""
        pki = self.server.state_dir / "pki"
        pair = Pair(pki / "edge-editor.crt", pki / "edge-editor.key")
        if not pair.cert.exists():
            issue_client_certificate(Pair(pki / "client-ca.crt", pki / "client-ca.key"), pair, "edge-editor")
            role = {"apiVersion": IAM, "kind": "ClusterRole", "metadata": {"name": "edge-editor"},
                    "rules": [{"apiGroups": ["model.kubellm.io"], "resources": ["*"], "verbs": ["*"]}]}
            binding = {"apiVersion": IAM, "kind": "ClusterRoleBinding", "metadata": {"name": "edge-editor"},
                       "roleRef": {"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": "edge-editor"},
                       "subjects": [{"apiGroup": "iam.kubellm.io", "kind": "User", "name": "edge-editor"}]}
            for path, obj in ((f"/apis/{IAM}/clusterroles", role), (f"/apis/{IAM}/clusterrolebindings", binding)):
                assert self.request("POST", path, obj).status == 201
        editor = Client(self.server, pair)
        eventually(lambda: editor.request("GET", LLMS).status, lambda code: code == 200)  # RBAC reads a cache
        return editor

    def request(self, method: str, path: str, body: Any = None, *, admin: bool = True,
                content_type: str = "application/json", headers: dict[str, str] | None = None) -> Resp:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context(admin), timeout=30)
        try:
            hdrs = {"Accept": "application/json", **({"Content-Type": content_type} if data is not None else {}),
                    **(headers or {})}
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def tcp(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def tls(self, admin: bool = False, timeout: float = 10) -> ssl.SSLSocket:
        """A connection with its TLS handshake done, nothing sent."""
        return self.context(admin).wrap_socket(self.tcp(timeout), server_hostname=self.host)

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        text = self.request("GET", "/metrics").body.decode()
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return out

    def metric(self, name: str, **labels: str) -> float:
        return sum(v for got, v in self.metrics().get(name, []) if all(got.get(k) == x for k, x in labels.items()))


def status(r: Resp, code: int, reason: str | None = None) -> dict[str, Any]:
    """A `kind: Status` failure with this code; returns it."""
    assert r.status == code, r
    assert r.headers.get("content-type", "").startswith("application/json"), r
    body: dict[str, Any] = r.json()
    assert body["kind"] == "Status" and body["code"] == code and body["status"] == "Failure", body
    if reason is not None:
        assert body["reason"] == reason, body
    return body



def closed_by_server(sock: socket.socket, timeout: float = 10) -> bool:
    """Whether the server closes the connection within `timeout` (reading, and discarding, what it sends)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionError, ssl.SSLError, OSError) as exc:
        return not isinstance(exc, TimeoutError)
    return False


def llm(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": GV, "kind": "LLMService", "metadata": {"name": name, **meta}, "spec": {"model": "a/b"}}


@pytest.fixture(scope="module")
def c(apiserver: APIServer) -> Client:
    return Client(apiserver)


# --- metric labels --------------------------------------------------------------------------------------------


def served(c: Client) -> dict[tuple[str, str, str], set[str]]:
    out: dict[tuple[str, str, str], set[str]] = {k: set() for k in REVIEWS}
    versions = [("", v, f"/api/{v}") for v in c.request("GET", "/api").json()["versions"]]
    versions += [(group["name"], version["version"], f"/apis/{version['groupVersion']}")
                 for group in c.request("GET", "/apis").json()["groups"] for version in group["versions"]]
    for group_name, version_name, path in versions:
        for res in c.request("GET", path).json()["resources"]:
            name, _, sub = res["name"].partition("/")
            out.setdefault((group_name, version_name, name), set()).update([sub] if sub else [])
    return out


def assert_bounded_labels(c: Client) -> None:
    resources = served(c)
    for name, samples in c.metrics().items():
        if not name.startswith(("apiserver_request_total", "apiserver_request_duration_seconds",
                                "apiserver_request_aborts_total")):
            continue
        for labels, _ in samples:
            key = (labels["group"], labels["version"], labels["resource"])
            assert key in resources or key == ("other", "other", "other"), (name, labels)
            assert labels["subresource"] in {"", "other", *resources.get(key, ())}, (name, labels)
            assert labels["verb"] in VERBS and labels["scope"] in SCOPES, (name, labels)
            code = labels.get("code", "200")
            assert code.isdigit() or code in {"1xx", "2xx", "3xx", "4xx", "5xx", "other"}, (name, labels)


METHODS = st.one_of(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND", "MKCOL",
                                     "LOCK", "SEARCH", "PURGE", "REPORT", "LINK", "SUBSCRIBE"]),
                    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=8))
SEGMENTS = st.lists(st.one_of(st.sampled_from(["apis", "model.kubellm.io", "v1alpha1", "namespaces", "llmservices",
                                               "status", "scale", "users", "iam.kubellm.io"]),
                              st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_~", min_size=1, max_size=16)),
                    min_size=2, max_size=8)


@SLOW
@given(method=METHODS, segments=SEGMENTS, admin=st.booleans(), apis=st.booleans())
def test_random_paths_and_methods_never_make_metric_label_values(c: Client, method: str, segments: list[str],
                                                                 admin: bool, apis: bool) -> None:
    path = "/" + "/".join((["apis"] if apis else []) + segments)
    r = c.request(method, path + "?watch=0", admin=admin)
    assert r.status != 500, r
    if r.status >= 400 and method != "HEAD":
        status(r, r.status)  # every error is a Status, even for a method aiohttp cannot parse


def test_label_values_stay_in_the_served_set(c: Client) -> None:
    """After the random requests above (and whatever else this session sent): no label from a raw request."""
    for path in ("/apis/made/up/things", "/apis/model.kubellm.io/v1alpha1/namespaces/x/llmservices/a/b/c/d",
                 "/apis/model.kubellm.io/v9/llmservices", "/apis/iam.kubellm.io/v1alpha1/users/u/scale"):
        c.request("GET", path, admin=False)
        c.request("PROPFIND", path)
    assert_bounded_labels(c)
    assert c.metric("apiserver_request_total", group="made") == 0


# --- nesting and alias expansion ------------------------------------------------------------------------------


def nested_json(depth: int, as_list: bool) -> bytes:
    """`depth` levels of arrays or objects around a string, written directly (json.dumps would recurse)."""
    if as_list:
        return b"[" * depth + b'"x"' + b"]" * depth
    return b'{"k":' * depth + b'"x"' + b"}" * depth


def deep_llm(name: str, where: str, depth: int, as_list: bool) -> tuple[bytes, int]:
    """An LLMService with `depth` levels nested at `where`, and its whole depth."""
    obj = llm(name)
    if where == "managedFields":
        obj["metadata"]["managedFields"] = [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1",
                                             "fieldsV1": "INNER"}]
        around = 4  # the object, metadata, managedFields, its item
    elif where == "spec":
        obj["spec"]["extra"] = "INNER"
        around = 2
    else:
        obj["metadata"]["labels"] = "INNER"
        around = 2
    return json.dumps(obj).encode().replace(b'"INNER"', nested_json(depth, as_list)), around + depth


@SLOW
@given(depth=st.integers(min_value=1, max_value=1200), as_list=st.booleans(),
       where=st.sampled_from(["managedFields", "spec", "labels"]), yaml_body=st.booleans())
def test_random_nesting_is_never_a_server_error(c: Client, depth: int, as_list: bool, where: str,
                                               yaml_body: bool) -> None:
    raw, total = deep_llm(f"deep-{depth}-{int(as_list)}-{where[0]}", where, depth, as_list)
    if yaml_body:
        raw = b"# YAML (flow style), not JSON: read by the YAML parser\n" + raw
    r = c.request("POST", LLMS + "?dryRun=All", raw,
                  content_type="application/yaml" if yaml_body else "application/json")
    assert r.status < 500, r
    if total > MAX_DEPTH:
        assert "nested too deeply" in status(r, 400, "BadRequest")["message"]


@SLOW
@given(depth=st.integers(min_value=50, max_value=3000), flow=st.booleans())
def test_nested_yaml_on_login_is_a_bad_request(c: Client, depth: int, flow: bool) -> None:
    """Anonymous: the login endpoint decodes YAML before any credential is checked."""
    inner = "[" * depth + "]" * depth if flow else "\n" + "- " * depth + "x"
    r = c.request("POST", "/login", f"username: {inner}\npassword: p\n".encode(), admin=False,
                  content_type="application/yaml")
    assert r.status in (400, 413), r
    if r.status == 400 and depth > MAX_DEPTH:
        assert "nested too deeply" in status(r, 400)["message"]


def laughs(levels: int, fanout: int) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]" for i in range(1, levels)]
    return "\n".join(lines)


@pytest.mark.parametrize(("levels", "fanout"), [(9, 9), (25, 2), (6, 16)])
def test_alias_bombs_are_refused(c: Client, levels: int, fanout: int) -> None:
    bomb = laughs(levels, fanout)
    r = c.request("POST", "/login", f"{bomb}\nusername: *l{levels - 1}\npassword: p\n".encode(), admin=False,
                  content_type="application/yaml")
    assert "expands to too much data" in status(r, 400, "BadRequest")["message"]
    body = (f"{bomb}\napiVersion: {GV}\nkind: LLMService\nmetadata: {{name: bomb}}\n"
            f"spec: {{model: a/b, extra: *l{levels - 1}}}\n")
    r = c.request("POST", LLMS, body.encode(), content_type="application/yaml")
    assert "expands to too much data" in status(r, 400, "BadRequest")["message"]


# --- parameters and DeleteOptions -----------------------------------------------------------------------------


def token(rv: Any) -> str:
    import base64

    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": "a"}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def q(**params: Any) -> str:
    return "?" + urllib.parse.urlencode(params)


@pytest.mark.parametrize(("path", "param"), [
    (LLMS + q(limit=10**20), "limit"), (LLMS + q(limit="1e20"), "limit"),
    (LLMS + q(resourceVersion=2**63), "resourceVersion"),
    (LLMS + q(resourceVersion=2**63, resourceVersionMatch="Exact"), "resourceVersion"),
    (LLMS + q(watch=1, resourceVersion=2**63 - 1), "resourceVersion"),
    (LLMS + q(limit=1, **{"continue": token(True)}), "continue"),
    (LLMS + q(limit=1, **{"continue": token(2**63)}), "continue"),
    (LLMS + q(watch=1, timeoutSeconds=-5), "timeoutSeconds"),
    (LLMS + q(watch=1, timeoutSeconds=10**25), "timeoutSeconds"),
    (LLMS + q(timeout="soon"), "timeout"),
    (LLMS + "/x" + q(resourceVersion="abc"), "resourceVersion"),
])
def test_out_of_range_parameters_are_bad_requests_naming_them(c: Client, path: str, param: str) -> None:
    body = status(c.request("GET", path), 400, "BadRequest")
    assert param in body["message"], body
    assert not any(w in body["message"] for w in ETCD_WORDS), body


@pytest.mark.parametrize(("body", "field"), [
    ({"preconditions": "x"}, "preconditions"), ({"gracePeriodSeconds": "x"}, "gracePeriodSeconds"),
    ({"preconditions": {"uid": 1}}, "preconditions.uid"),
    ({"preconditions": {"resourceVersion": []}}, "preconditions.resourceVersion"),
    ({"propagationPolicy": 5}, "propagationPolicy"), ({"orphanDependents": "true"}, "orphanDependents"),
    ({"dryRun": "All"}, "dryRun"), ({"gracePeriodSeconds": 2**70}, "gracePeriodSeconds"),
])
def test_undecodable_delete_options_are_bad_requests(c: Client, body: dict[str, Any], field: str) -> None:
    c.request("POST", LLMS, llm("victim"))
    for path in (LLMS + "/victim", LLMS):
        got = status(c.request("DELETE", path, body), 400, "BadRequest")
        assert field in got["message"], got
    assert c.request("GET", LLMS + "/victim").status == 200  # nothing was deleted


HOSTILE = st.sampled_from([
    "", "0", "-1", "1e20", str(2**63), str(2**63 - 1), str(2**64), "9" * 60, "true", "false", "abc", "All", "Exact",
    "NotOlderThan", "Orphan", "1.5", "%00", token(True), token(2**63), token("1"), token(-4), "1m", "-3s"])
PARAM_VALUES = st.one_of(HOSTILE, HOSTILE, st.integers(min_value=-(2**70), max_value=2**70).map(str),
                         st.text(max_size=12))
PARAM_NAMES = ["limit", "resourceVersion", "resourceVersionMatch", "continue", "timeoutSeconds", "allowWatchBookmarks",
               "includeObject", "timeout", "dryRun", "fieldValidation", "gracePeriodSeconds", "propagationPolicy",
               "orphanDependents", "labelSelector", "fieldSelector"]
DELETE_BODIES = st.one_of(st.none(), st.dictionaries(
    st.sampled_from(["gracePeriodSeconds", "preconditions", "propagationPolicy", "orphanDependents", "dryRun", "kind"]),
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3), st.lists(st.text(max_size=3)),
              st.dictionaries(st.sampled_from(["uid", "resourceVersion"]), st.integers() | st.text())),
    max_size=3))


@pytest.mark.parametrize("param", PARAM_NAMES)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=PARAM_VALUES, method=st.sampled_from(["GET", "GET", "GET1", "DELETE", "DELETE1"]),
       more=st.dictionaries(st.sampled_from(PARAM_NAMES), PARAM_VALUES, max_size=2), body=DELETE_BODIES)
def test_random_parameters_never_reach_etcd_unchecked(c: Client, param: str, value: str, method: str,
                                                      more: dict[str, str], body: dict[str, Any] | None) -> None:
    query = urllib.parse.urlencode({**more, param: value})
    path = (LLMS + "/nothing-here" if method.endswith("1") else LLMS) + "?" + query
    r = c.request(method.rstrip("1"), path, body if method.startswith("DELETE") else None)
    assert r.status in (200, 400, 404, 410, 422, 504), r
    if r.status == 504:  # a revision from the future, as kube-apiserver answers it
        assert status(r, 504, "Timeout")["message"].startswith("Too large resource version"), r
    elif r.status >= 400:
        message = status(r, r.status)["message"]
        assert not any(w in message for w in ETCD_WORDS), message


# --- protocol errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "code"), [
    ({"X-Big": "a" * 9000}, 431), ({f"X-H{i}": "v" for i in range(200)}, 431),
])
def test_oversized_headers_answer_a_status(c: Client, headers: dict[str, str], code: int) -> None:
    for admin in (True, False):
        body = status(c.request("GET", "/version", headers=headers, admin=admin), code)
        assert "aaaa" not in body["message"] and body["message"], body


def test_a_request_aiohttp_cannot_parse_answers_a_status(c: Client) -> None:
    with c.tls() as sock:
        sock.sendall(b"FOO\x01BAR / HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, payload = sock.recv(65536).partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400")), head
    assert json.loads(payload)["kind"] == "Status"


# --- aborted requests in metrics ------------------------------------------------------------------------------


def test_a_client_abort_is_counted_apart_not_as_a_server_error(c: Client) -> None:
    labels = {"verb": "POST", "resource": "llmservices", "group": "model.kubellm.io"}
    editor = c.editor()  # outside system:masters, so its request shows in the in-flight gauge
    errors_before = c.metric("apiserver_request_total", code="500", **labels)
    aborts_before = c.metric("apiserver_request_aborts_total", **labels)
    with editor.tls() as sock:  # a create whose body never comes, then the client goes away
        sock.sendall(f"POST {LLMS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 500\r\n\r\n{".encode())
        eventually(lambda: c.metric("apiserver_current_inflight_requests", request_kind="mutating"),
                   lambda v: v >= 1)
    eventually(lambda: c.metric("apiserver_request_aborts_total", **labels), lambda v: v == aborts_before + 1)
    assert c.metric("apiserver_request_total", code="500", **labels) == errors_before


def test_a_watch_whose_client_leaves_counts_with_the_status_it_was_sent(c: Client) -> None:
    labels = {"verb": "WATCH", "resource": "llmservices", "group": "model.kubellm.io"}
    ok_before = c.metric("apiserver_request_total", code="200", **labels)
    c.request("POST", LLMS, llm("watched"))
    with c.tls(admin=True) as sock:
        sock.sendall(f"GET {LLMS}?watch=1&timeoutSeconds=60 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = b""
        while b"watched" not in got:
            got += sock.recv(65536)
        assert got.startswith(b"HTTP/1.1 200"), got
    eventually(lambda: c.metric("apiserver_request_total", code="200", **labels), lambda v: v == ok_before + 1)
    assert c.metric("apiserver_request_total", code="500", **labels) == 0
    assert c.metric("apiserver_request_aborts_total", **labels) == 0


# --- connection timeouts (a server of their own) --------------------------------------------------------------


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with running_apiserver(tmp_path_factory.mktemp("quick-timeouts"), "--tls-handshake-timeout", "1s",
                           "--read-header-timeout", "1s", "--idle-connection-timeout", "1s",
                           "--read-body-timeout", "1s", "--request-timeout", "30s") as server:
        yield Client(server)


def test_a_connection_that_never_starts_tls_is_dropped(quick: Client) -> None:
    with quick.tcp() as sock:
        assert closed_by_server(sock)


def test_a_tls_connection_that_sends_nothing_is_closed(quick: Client) -> None:
    with quick.tls() as sock:
        assert closed_by_server(sock)


def test_trickled_headers_are_cut_off(quick: Client) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: " + b"s" * 40 + b"\r\n\r\n"
    with quick.tls() as sock:
        closed = threading.Event()
        threading.Thread(target=lambda: closed_by_server(sock, 30) and closed.set(), daemon=True).start()
        sent = 0
        for byte in request:  # a byte every 0.2 s: the whole request would take 14 s
            if closed.is_set():
                break
            with contextlib.suppress(OSError):
                sock.send(bytes([byte]))
            sent += 1
            closed.wait(0.2)
        assert closed.is_set() and sent < len(request), f"sent {sent} of {len(request)} bytes"


def test_an_idle_keep_alive_connection_is_closed(quick: Client) -> None:
    with quick.tls() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_by_server(sock)


def test_a_slow_body_is_a_timeout_status(quick: Client) -> None:
    with quick.tls() as sock:
        sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"user")
        sock.settimeout(10)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert json.loads(payload)["kind"] == "Status"  # and then the connection was closed (the loop ended)


def test_the_request_deadline_is_a_timeout_status(quick: Client) -> None:
    with quick.tls(admin=True) as sock:
        sock.sendall(f"POST {LLMS}?timeout=300ms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n{".encode())
        sock.settimeout(10)
        head, _, payload = sock.recv(65536).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 504"), head
    body = json.loads(payload)
    assert body["reason"] == "Timeout" and "did not complete within requested timeout" in body["message"]


# --- in-flight budgets and the connection cap (a server of their own) -----------------------------------------


MAX_CONNECTIONS = 12


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    # One worker: these tests count one process's limits exactly; with N workers each has its share, and the
    # kernel decides which worker a connection reaches (kubellm/app/supervisor.py).
    with running_apiserver(tmp_path_factory.mktemp("tight-limits"), "--workers", "1", "--max-requests-inflight", "1",
                           "--max-mutating-requests-inflight", "2", "--max-long-running-requests", "2",
                           "--max-open-connections", str(MAX_CONNECTIONS), "--request-timeout", "3s") as server:
        yield Client(server)


@contextlib.contextmanager
def held_logins(c: Client, n: int) -> Iterator[None]:
    """`n` anonymous logins in flight: their bodies never finish (until the request deadline)."""
    socks = [c.tls() for _ in range(n)]
    try:
        for sock in socks:
            sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{")
        eventually(lambda: c.metric("apiserver_current_inflight_requests", request_kind="mutating"),
                   lambda v: v == n)
        yield
    finally:
        for sock in socks:
            sock.close()


def test_mutating_requests_beyond_the_budget_are_429(tight: Client) -> None:
    with held_logins(tight, 2):
        r = tight.request("POST", "/login", {"username": "u", "password": "p"}, admin=False)
        body = status(r, 429, "TooManyRequests")
        assert r.headers["retry-after"] == "1" and body["details"]["retryAfterSeconds"] == 1
        assert tight.request("GET", "/healthz", admin=False).status == 200  # read-only has its own budget
        assert tight.request("POST", LLMS, llm("by-admin")).status == 201  # system:masters are exempt
    eventually(lambda: tight.request("POST", "/login", {"username": "u", "password": "p"}, admin=False).status,
               lambda code: code != 429)


def test_watches_have_their_own_bound_and_no_deadline(tight: Client) -> None:
    editor = tight.editor()  # under the budgets: one read-only request in flight at most
    watches = []
    try:
        for _ in range(2):
            sock = editor.tls()
            sock.sendall(f"GET {LLMS}?watch=1&timeoutSeconds=60 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            watches.append(sock)
        # The watches use their own bound, for every user, never the read-only budget.
        status(tight.request("GET", LLMS + "?watch=1&timeoutSeconds=5"), 429, "TooManyRequests")
        assert tight.metric("apiserver_current_inflight_requests", request_kind="longRunning") == 2
        assert editor.request("GET", LLMS).status == 200
        # A non-watch request reaches the request deadline (3 s); the watches outlive it.
        with tight.tls(admin=True) as slow:
            slow.sendall(f"POST {LLMS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "Content-Length: 100\r\n\r\n{".encode())
            slow.settimeout(15)
            assert slow.recv(65536).startswith(b"HTTP/1.1 504")
        assert tight.request("POST", LLMS, llm("after-deadline")).status == 201
        for sock in watches:
            got = b""
            sock.settimeout(10)
            while b"after-deadline" not in got:
                chunk = sock.recv(65536)
                assert chunk, got
                got += chunk
    finally:
        for sock in watches:
            sock.close()


def test_open_connections_are_capped(tight: Client) -> None:
    eventually(lambda: tight.metric("kubellm_apiserver_open_connections"), lambda v: v <= 1)
    idle = [tight.tls() for _ in range(MAX_CONNECTIONS)]  # anonymous, idle: all handshakes complete
    try:
        with pytest.raises(OSError):  # the next one is not served (it waits in the kernel's backlog)
            tight.tls(timeout=1).close()
        idle.pop().close()
        idle.pop().close()
        served = eventually(lambda: _try_tls(tight), lambda sock: sock is not None)
        served.close()
    finally:
        for sock in idle:
            sock.close()
    assert tight.request("GET", "/healthz").status == 200
    assert tight.metric("kubellm_apiserver_open_connections") <= MAX_CONNECTIONS


def _try_tls(c: Client) -> ssl.SSLSocket | None:
    try:
        return c.tls(timeout=1)
    except OSError:
        return None
