"""KubeLLM mounted into a real kube-apiserver as an aggregated API, driven with real kubectl through the host.

The host (etcd + kube-apiserver v1.36 with the aggregator, RBAC, the front proxy) starts once per session;
KubeLLM runs in two deployments, one after the other, each registered with APIServices and Available:
`requestheader-flags` (the aggregator trusted through --requestheader-client-ca-file and
--requestheader-allowed-names) and `delegated` (--authentication-kubeconfig/--authorization-kubeconfig to
the host, front-proxy settings from its ConfigMap, host RBAC for delegation), as a real deployment runs.
"""

from __future__ import annotations

import json
import queue
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostcluster import GROUPS, VERSION, Aggregated, ControlPlane, aggregated_kubellm, control_plane, wait_until

from kubellm.registry.registry import ALL_RESOURCES

NS = "aggr-e2e"
LLMS = f"/apis/model.kubellm.io/{VERSION}/namespaces/{NS}/llmservices"
# the host records the SubjectAccessReviews KubeLLM sends it (with their bodies), nothing else
HOST_AUDIT_POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Request
    resources: [{group: authorization.k8s.io, resources: [subjectaccessreviews]}]
  - level: None
"""


@pytest.fixture(scope="session")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    d = tmp_path_factory.mktemp("host-cluster")
    (d / "audit-policy.yaml").write_text(HOST_AUDIT_POLICY)
    with control_plane(d, "host", extra_apiserver_args=(
            "--audit-log-path", str(d / "audit.log"), "--audit-policy-file", str(d / "audit-policy.yaml"))) as cp:
        cp.kubectl("create", "namespace", NS)
        yield cp


@pytest.fixture(scope="module", params=["requestheader-flags", "delegated"])
def agg(request: pytest.FixtureRequest, host: ControlPlane,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aggregated]:
    state = tmp_path_factory.mktemp(f"kubellm-{request.param}")
    with aggregated_kubellm(host, state, delegated=request.param == "delegated",
                            extra_args=("--audit-log-path", str(state / "audit.log"))) as a:
        yield a


def llm(name: str, replicas: int = 1) -> str:
    return yaml.safe_dump({"apiVersion": f"model.kubellm.io/{VERSION}", "kind": "LLMService",
                           "metadata": {"name": name, "namespace": NS},
                           "spec": {"model": "Qwen/Qwen2.5-3B-Instruct", "replicas": replicas}})


def audit_events(agg: Aggregated, path: Path | None = None) -> list[dict[str, Any]]:
    """KubeLLM's audit events (or those of the file at `path`)."""
    path = path or agg.kubellm.state_dir / "audit.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_api_resources_list_kubellm_kinds(agg: Aggregated) -> None:
    names = set(agg.host.kubectl("api-resources", "-o", "name").stdout.split())
    expected = {info.group_resource for info in ALL_RESOURCES if not info.host_kind}
    assert expected <= names, expected - names
    table = agg.host.kubectl("api-resources", "--api-group=model.kubellm.io").stdout.splitlines()
    assert ["llmservices", "llms", f"model.kubellm.io/{VERSION}", "true", "LLMService"] in [r.split() for r in table]
    versions = set(agg.host.kubectl("api-versions").stdout.split())
    assert {f"{g}/{VERSION}" for g in GROUPS} <= versions
    assert {"v1", "apiregistration.k8s.io/v1"} <= versions  # ...next to the host's own


def test_apply_get_and_yaml(agg: Aggregated) -> None:
    h = agg.host
    assert "llmservice.model.kubellm.io/applied created" in h.kubectl("apply", "-f", "-", input=llm("applied")).stdout
    assert "unchanged" in h.kubectl("apply", "-f", "-", input=llm("applied")).stdout
    assert "configured" in h.kubectl("apply", "-f", "-", input=llm("applied", replicas=2)).stdout
    rows = [r.split() for r in h.kubectl("get", "llms", "-n", NS).stdout.splitlines()]
    assert rows[0][:2] == ["NAME", "MODEL"]
    assert any(r[:2] == ["applied", "Qwen/Qwen2.5-3B-Instruct"] for r in rows[1:]), rows
    listed = yaml.safe_load(h.kubectl("get", "llms", "-n", NS, "-o", "yaml").stdout)
    obj = next(i for i in listed["items"] if i["metadata"]["name"] == "applied")
    assert obj["apiVersion"] == f"model.kubellm.io/{VERSION}" and obj["kind"] == "LLMService"
    assert obj["spec"]["replicas"] == 2 and obj["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    one = yaml.safe_load(h.kubectl("get", "llmservices.model.kubellm.io/applied", "-n", NS, "-o", "yaml").stdout)
    assert one["metadata"]["uid"] == obj["metadata"]["uid"]
    h.kubectl("delete", "llms", "applied", "-n", NS)
    missing = h.kubectl("get", "llms", "applied", "-n", NS, check=False)
    assert missing.returncode == 1 and "NotFound" in missing.stderr


def _openapi_v3_lists_kubellm(h: ControlPlane) -> bool | None:
    r = h.request("GET", "/openapi/v3", timeout=10)
    paths = (r.body or {}).get("paths", {}) if r.status == 200 else {}
    missing = [g for g in GROUPS if f"apis/{g}/{VERSION}" not in paths]
    if missing:
        raise AssertionError(f"/openapi/v3 of the host ({r.status}) lacks {missing}")
    return True


def _openapi_v2_has_llmservice(h: ControlPlane) -> bool | None:
    r = h.request("GET", "/openapi/v2", timeout=30)
    defs = (r.body or {}).get("definitions", {}) if r.status == 200 else {}
    if not any(name.endswith(".LLMService") for name in defs):
        raise AssertionError(f"/openapi/v2 of the host ({r.status}) has no LLMService definition")
    return True


def test_explain_through_openapi_aggregation(agg: Aggregated) -> None:
    h = agg.host
    # The aggregator fetches KubeLLM's OpenAPI as system:aggregator with no X-Remote-Group, on its own schedule.
    wait_until(lambda: _openapi_v3_lists_kubellm(h), 30, "the host's /openapi/v3 listing KubeLLM's groups",
               processes=tuple(h.processes), interval=0.25)
    spec = h.kubectl("explain", "llmservice.spec").stdout
    assert "KIND:       LLMService" in spec and "GROUP:      model.kubellm.io" in spec, spec
    for field in ("model\t<string>", "replicas\t<integer>", "autoscaling\t<AutoscalingSpec>", "maxModelLen"):
        assert field in spec, spec
    rec = h.kubectl("explain", "llmservice", "--recursive").stdout
    for field in ("spec\t<LLMServiceSpec>", "status\t<LLMServiceStatus>", "minReplicas", "managedFields"):
        assert field in rec, rec
    assert "Cluster" in h.kubectl("explain", "clusters.cluster.kubellm.io").stdout
    wait_until(lambda: _openapi_v2_has_llmservice(h), 30, "the host's /openapi/v2 with KubeLLM's types",
               processes=tuple(h.processes), interval=0.5)
    v2 = h.kubectl("explain", "llmservice.spec", "--output=plaintext-openapiv2").stdout
    assert "KIND:     LLMService" in v2 and "model" in v2 and "replicas" in v2, v2


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    q: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            q.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return q


def _expect(q: queue.Queue[str], wanted: list[str], timeout: float = 30) -> None:
    """Wait for a line whose columns are `wanted` (other lines are skipped)."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = q.get(timeout=left)
        except queue.Empty:
            break
        seen.append(line)
        if line.split() == wanted:
            return
    raise AssertionError(f"no watch line {wanted} in {timeout}s; got {seen}")


def test_kubectl_watch_through_the_host(agg: Aggregated) -> None:
    h = agg.host
    h.kubectl("apply", "-f", "-", input=llm("watched"))
    argv = [h.binaries["kubectl"], "--kubeconfig", str(h.kubeconfig), "--cache-dir", str(h.dir / "kubectl-cache"),
            "get", "llms", "-n", NS, "-w", "--output-watch-events", "--request-timeout", "0",
            "-o", "custom-columns=EVENT:.type,NAME:.object.metadata.name,REPLICAS:.object.spec.replicas"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        q = _lines(proc)
        _expect(q, ["ADDED", "watched", "1"])  # the initial list: the watch starts from its resourceVersion
        h.kubectl("patch", "llms", "watched", "-n", NS, "--type", "merge", "-p", '{"spec":{"replicas":3}}')
        _expect(q, ["MODIFIED", "watched", "3"])
        h.kubectl("delete", "llms", "watched", "-n", NS, "--wait=false")
        _expect(q, ["DELETED", "watched", "3"])
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    assert "error" not in err.lower(), err


def test_raw_watch_stream_through_the_host(agg: Aggregated) -> None:
    h = agg.host
    listed = h.request("GET", LLMS)
    assert listed.status == 200, listed.body
    rv = listed.body["metadata"]["resourceVersion"]
    resp = h.stream(f"{LLMS}?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=60")
    try:
        assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("application/json")
        h.kubectl("create", "-f", "-", input=llm("streamed"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = resp.readline()  # bounded by the connection's 30 s socket timeout
            assert line, "the watch stream ended before the event"
            event = json.loads(line)
            if event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "streamed":
                assert int(event["object"]["metadata"]["resourceVersion"]) > int(rv)
                break
            assert event["type"] == "BOOKMARK", event
        else:
            pytest.fail("no ADDED event for the object created after the watch started")
    finally:
        resp.close()
        h.kubectl("delete", "llms", "streamed", "-n", NS, "--wait=false", check=False)


@pytest.fixture(scope="module")
def reader(agg: Aggregated) -> Path:
    """A host user (not an admin) with a host ClusterRole granting get and list on llmservices."""
    h = agg.host
    _, kubeconfig = h.user("alice", ("llm-readers",))
    h.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "llm-reader"},
             "rules": [{"apiGroups": ["model.kubellm.io"], "resources": ["llmservices"], "verbs": ["get", "list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "alice-llm-reader"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "llm-reader"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]})
    h.kubectl("apply", "-f", "-", input=llm("readable"))
    return kubeconfig


def test_host_rbac_decides_for_a_host_user(agg: Aggregated, reader: Path) -> None:
    h = agg.host
    listed = h.kubectl("get", "llms", "-n", NS, kubeconfig=reader, check=False)
    events: list[dict[str, Any]] = []

    def alice_listed() -> bool | None:
        events[:] = [e for e in audit_events(agg) if e["user"]["username"] == "alice" and e["verb"] == "list"
                     and e.get("objectRef", {}).get("resource") == "llmservices"]
        return True if events else None

    # the identity reached KubeLLM through the front-proxy headers of the aggregator's request
    wait_until(alice_listed, 10, "KubeLLM's audit event for alice's list")
    assert "llm-readers" in events[-1]["user"].get("groups", []), events[-1]
    if agg.delegated:
        # KubeLLM's own RBAC knows no alice; the host's SubjectAccessReview allows her
        assert listed.returncode == 0, listed.stderr
        assert "readable" in listed.stdout
        assert events[-1]["responseStatus"]["code"] == 200
    else:
        # without --authorization-kubeconfig only KubeLLM's RBAC decides, after the host let the list through
        assert listed.returncode == 1 and "Forbidden" in listed.stderr and 'User "alice"' in listed.stderr
        assert events[-1]["responseStatus"]["code"] == 403
    created = h.kubectl("create", "-f", "-", input=llm("by-alice"), kubeconfig=reader, check=False)
    assert created.returncode == 1, created.stdout
    assert ('llmservices.model.kubellm.io is forbidden: User "alice" cannot create resource "llmservices" in API '
            f'group "model.kubellm.io" in the namespace "{NS}"') in created.stderr
    # the host refused it: the request never reached KubeLLM
    assert not [e for e in audit_events(agg) if e["user"]["username"] == "alice" and e["verb"] == "create"]
    assert h.kubectl("get", "llms", "by-alice", "-n", NS, check=False).returncode == 1


def test_kubectl_auth_can_i_through_the_host(agg: Aggregated, reader: Path) -> None:
    h = agg.host

    def can_i(*args: str, kubeconfig: Path | None = None) -> str:
        proc = h.kubectl("auth", "can-i", *args, "-n", NS, kubeconfig=kubeconfig, check=False)
        return proc.stdout.strip()

    assert can_i("list", "llms", kubeconfig=reader) == "yes"
    assert can_i("get", "llmservices.model.kubellm.io", kubeconfig=reader) == "yes"
    assert can_i("create", "llms", kubeconfig=reader) == "no"
    assert can_i("delete", "llmservices.model.kubellm.io", "--as", "alice") == "no"
    assert can_i("create", "llms") == "yes"  # the host admin


def kubellm_request(agg: Aggregated, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    """A request straight to KubeLLM (not through the host) with a bearer token."""
    ctx = ssl.create_default_context(cafile=str(agg.kubellm.state_dir / "pki" / "serving-ca.crt"))
    req = urllib.request.Request(agg.kubellm.url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_delegated_authentication_of_a_host_service_account_token(agg: Aggregated) -> None:
    """A client calling KubeLLM directly with a host ServiceAccount token: TokenReview and
    SubjectAccessReview go to the host, with the RBAC grant_delegation gave KubeLLM there."""
    if not agg.delegated:
        pytest.skip("only the delegated deployment knows the host's tokens")
    h = agg.host
    h.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot", "namespace": NS}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "llm-lister", "namespace": NS},
             "rules": [{"apiGroups": ["model.kubellm.io"], "resources": ["llmservices"], "verbs": ["list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "robot-llm-lister", "namespace": NS},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "llm-lister"},
             "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": NS}]})
    token = h.kubectl("create", "token", "robot", "-n", NS, "--duration", "10m").stdout.strip()
    code, review = kubellm_request(agg, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", token,
                                   {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert code == 201, review
    info = review["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{NS}:robot"
    assert f"system:serviceaccounts:{NS}" in info["groups"]
    code, listed = kubellm_request(agg, "GET", LLMS, token)
    assert code == 200 and listed["kind"] == "LLMServiceList", listed
    code, denied = kubellm_request(agg, "GET", f"/apis/model.kubellm.io/{VERSION}/namespaces/other/llmservices", token)
    assert code == 403 and denied["reason"] == "Forbidden", denied
    assert kubellm_request(agg, "GET", LLMS, token[:-4] + "AAAA")[0] == 401  # a forged signature

    def sar() -> dict[str, Any] | None:
        for e in audit_events(agg, h.dir / "audit.log"):
            spec = (e.get("requestObject") or {}).get("spec", {})
            if e["user"]["username"] == agg.registration.delegate_user and spec.get("user") == info["username"]:
                return dict(spec)
        return None

    # the SubjectAccessReview KubeLLM sent names the whole user, as kube's delegating authorizer does
    spec = wait_until(sar, 10, "the host's audit event of KubeLLM's SubjectAccessReview for the ServiceAccount")
    assert spec.get("uid") == info["uid"] and set(info["groups"]) <= set(spec["groups"]), spec
    assert spec.get("extra") == info["extra"], spec


def test_front_proxy_extra_keys_reach_the_host_unescaped(agg: Aggregated, reader: Path) -> None:
    if not agg.delegated:
        pytest.skip("only the delegated deployment sends SubjectAccessReviews to the host")
    h = agg.host
    h.kubectl("get", "llms", "readable", "-n", NS, kubeconfig=reader)  # a get by name: a SAR not cached yet

    def sar() -> dict[str, Any] | None:
        for e in audit_events(agg, h.dir / "audit.log"):
            spec = (e.get("requestObject") or {}).get("spec", {})
            if (e["user"]["username"] == agg.registration.delegate_user and spec.get("user") == "alice"
                    and spec.get("resourceAttributes", {}).get("name") == "readable"):
                return dict(spec)
        return None

    spec = wait_until(sar, 10, "the host's audit event of KubeLLM's SubjectAccessReview for alice")
    assert "authentication.kubernetes.io/credential-id" in spec.get("extra", {}), spec


def test_objects_in_a_namespace_the_host_lacks_are_refused(agg: Aggregated) -> None:
    if not agg.delegated:
        pytest.skip("only the delegated deployment knows the host")
    h = agg.host
    created = h.kubectl("apply", "-f", "-", input=llm("ghost").replace(f"namespace: {NS}", "namespace: no-such-ns"),
                        check=False)
    h.kubectl("delete", "llms", "ghost", "-n", "no-such-ns", "--ignore-not-found", check=False)
    assert created.returncode == 1 and 'namespaces "no-such-ns" not found' in created.stderr, created.stdout
