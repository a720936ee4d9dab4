"""Member clusters without GPUs: a real control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler) with the node simulator playing kubelet and GPUs, driven with the real kubectl.

One GPU member (two nodes of 8 A100s) serves most tests; a second, without the RuntimeClass `nvidia`, runs
beside it. The member's kube-controller-manager has a short node-monitor grace period and HPA sync period,
so heartbeats and autoscaling are proved in seconds; the restart test comes last.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from hostcluster import skip_unless_ci
from polling import until

from kubellm.devcluster import BinariesMissing, MemberCluster, MemberOptions, StartupError
from kubellm.devcluster.binaries import ROOT
from kubellm.nodesim.options import NodePool
from kubellm.server.certs import Pair

PRODUCT = "NVIDIA-A100-SXM4-80GB"
GRACE_SECONDS = 8
READY_DELAY = 1.0
GPUS = 8
FAILING = r":broken$"


def start_member(directory: Path, options: MemberOptions) -> MemberCluster:
    try:
        member = MemberCluster(directory, options)
    except BinariesMissing as exc:
        skip_unless_ci(exc)
        raise
    try:
        member.start()
    except BaseException:
        member.stop()
        raise
    return member


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemberCluster]:
    m = start_member(tmp_path_factory.mktemp("member-gpu"), MemberOptions(
        name="gpu-a", pools=(NodePool(count=2, gpus=GPUS, product=PRODUCT, memory_mib=81920),),
        image_failure_pattern=FAILING, ready_delay=READY_DELAY, image_backoff=2.0, hpa_sync_period="2s",
        node_monitor_grace_period=f"{GRACE_SECONDS}s", node_monitor_period="1s", lease_interval=2.0,
        node_status_interval=600.0))  # NodeStatus far apart: only the Leases keep the nodes Ready
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemberCluster]:
    m = start_member(tmp_path_factory.mktemp("member-bare"), MemberOptions(
        name="bare", pools=(NodePool(count=1, gpus=2),), runtime_class=False))
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def cleanup(member: MemberCluster) -> Iterator[list[str]]:
    """Namespaces a test adds here are deleted after it (without waiting), so their pods free the GPUs."""
    doomed: list[str] = []
    yield doomed
    if doomed:
        member.kubectl("delete", "namespace", *doomed, "--wait=false", "--ignore-not-found")


def get(cluster: MemberCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def apply(cluster: MemberCluster, *objects: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def deployment(name: str, ns: str, *, gpus: int = 1, replicas: int = 1, image: str = "vllm/vllm-openai:v0.6.5",
               probe_delay: int = 0) -> dict[str, Any]:
    """A vLLM Deployment as the seed renders it: RuntimeClass nvidia, GPU limits, a readiness probe."""
    labels = {"app": name, "deployment": name}
    container: dict[str, Any] = {"name": "vllm", "image": image, "args": ["--model", "Qwen/Qwen2.5-3B-Instruct"],
                                 "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                                 "ports": [{"containerPort": 8000, "name": "http"}]}
    if probe_delay:
        container["readinessProbe"] = {"httpGet": {"path": "/health", "port": 8000},
                                       "initialDelaySeconds": probe_delay}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "strategy": {"type": "Recreate"},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"runtimeClassName": "nvidia", "containers": [container]}}}}


def pods(cluster: MemberCluster, ns: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(cluster, "pods", "-n", ns, "-l", selector)["items"]
    return items


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), {})


def ready_pods(cluster: MemberCluster, ns: str, selector: str, count: int) -> list[dict[str, Any]] | None:
    found = [p for p in pods(cluster, ns, selector) if condition(p, "Ready").get("status") == "True"
             and not p["metadata"].get("deletionTimestamp")]
    return found if len(found) == count else None


def events(cluster: MemberCluster, ns: str, reason: str) -> list[dict[str, Any]] | None:
    items = get(cluster, "events", "-n", ns, "--field-selector", f"reason={reason}")["items"]
    return items or None


# ------------------------------------------------------------------------------------------------- nodes


def test_kubectl_shows_gpu_nodes_ready(member: MemberCluster) -> None:
    out = member.kubectl("get", "nodes,deploy,pods", "-A").stdout
    nodes = get(member, "nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["gpu-a-gpu-0", "gpu-a-gpu-1"]
    for n in nodes:
        assert f"node/{n['metadata']['name']}" in out
        assert condition(n, "Ready")["status"] == "True"
        assert n["status"]["capacity"]["nvidia.com/gpu"] == str(GPUS) == n["status"]["allocatable"]["nvidia.com/gpu"]
        labels = n["metadata"]["labels"]
        assert (labels["nvidia.com/gpu.product"], labels["nvidia.com/gpu.memory"], labels["nvidia.com/gpu.count"]) \
            == (PRODUCT, "81920", str(GPUS))
        assert not n["spec"].get("taints"), n["spec"]
    node_lines = [line for line in out.splitlines() if "node/" in line]
    assert len(node_lines) == 2 and all(" Ready " in line for line in node_lines), out


def test_several_members_run_side_by_side(member: MemberCluster, bare: MemberCluster) -> None:
    assert member.url != bare.url
    assert [n["metadata"]["name"] for n in get(bare, "nodes")["items"]] == ["bare-gpu-0"]
    rss = sum(member.rss_bytes().values())
    assert 0 < rss < 1_500 * 2**20, member.rss_bytes()  # one member: well under 1.5 GiB


# ------------------------------------------------------------------------------------------------- pods


def test_gpu_deployment_gets_pods_running_and_ready(member: MemberCluster, cleanup: list[str]) -> None:
    cleanup.append("llm")
    apply(member, namespace("llm"), deployment("qwen-ready", "llm", gpus=2, replicas=2, probe_delay=3))
    member.kubectl("rollout", "status", "deployment/qwen-ready", "-n", "llm", "--timeout=60s")
    ready = until(lambda: ready_pods(member, "llm", "app=qwen-ready", 2), 30, "2 Ready pods")
    for p in ready:
        st = p["status"]
        assert st["phase"] == "Running" and p["spec"]["nodeName"].startswith("gpu-a-gpu-")
        assert st["containerStatuses"][0]["ready"] and "running" in st["containerStatuses"][0]["state"]
        assert condition(p, "ContainersReady")["status"] == "True"
        assert condition(p, "PodScheduled")["status"] == "True"  # the scheduler's condition is kept
        # the readiness probe's initialDelaySeconds is honoured as timing (1 s: RFC 3339 has whole seconds)
        started = st["startTime"]
        became_ready = condition(p, "Ready")["lastTransitionTime"]
        assert seconds_between(started, became_ready) >= 2, (started, became_ready)
    assert len({p["status"]["podIP"] for p in ready}) == 2
    dep = get(member, "deployment", "qwen-ready", "-n", "llm")
    assert dep["status"]["readyReplicas"] == 2 == dep["status"]["availableReplicas"]


def seconds_between(a: str, b: str) -> float:
    def parse(t: str) -> float:
        return time.mktime(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))
    return parse(b) - parse(a)


def test_more_gpus_than_a_node_has_stays_pending(member: MemberCluster, cleanup: list[str]) -> None:
    cleanup.append("too-big")
    apply(member, namespace("too-big"), deployment("huge", "too-big", gpus=GPUS + 1))
    failed = until(lambda: events(member, "too-big", "FailedScheduling"), 30, "a FailedScheduling event")
    assert "Insufficient nvidia.com/gpu" in failed[0]["message"], failed[0]["message"]
    (pod,) = pods(member, "too-big", "app=huge")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")


def test_failing_image_backs_off(member: MemberCluster, cleanup: list[str]) -> None:
    cleanup.append("bad-image")
    apply(member, namespace("bad-image"), deployment("broken", "bad-image", image="vllm/vllm-openai:broken"))

    def waiting(reason: str) -> dict[str, Any] | None:
        (pod,) = pods(member, "bad-image", "app=broken")
        state = (pod["status"].get("containerStatuses") or [{}])[0].get("state", {})
        return pod if state.get("waiting", {}).get("reason") == reason else None

    until(lambda: waiting("ErrImagePull"), 30, "ErrImagePull")
    pod = until(lambda: waiting("ImagePullBackOff"), 30, "ImagePullBackOff")
    assert pod["status"]["phase"] == "Pending"
    assert condition(pod, "Ready")["status"] == "False"
    assert "ImagePullBackOff" in member.kubectl("get", "pods", "-n", "bad-image").stdout
    failed = until(lambda: events(member, "bad-image", "Failed"), 10, "a Failed event")
    assert "vllm/vllm-openai:broken" in failed[0]["message"]
    assert get(member, "deployment", "broken", "-n", "bad-image")["status"].get("readyReplicas") is None


def test_without_runtime_class_nvidia_pods_are_rejected(bare: MemberCluster) -> None:
    apply(bare, namespace("llm"))
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "vllm", "namespace": "llm", "labels": {"app": "direct"}},
           "spec": deployment("x", "llm")["spec"]["template"]["spec"]}
    refused = bare.kubectl("apply", "-f", "-", input=json.dumps(pod), check=False)
    assert refused.returncode != 0
    assert 'pod rejected: RuntimeClass "nvidia" not found' in refused.stderr, refused.stderr
    # the Deployment's ReplicaSet is refused the same way
    apply(bare, deployment("qwen", "llm"))
    failed = until(lambda: events(bare, "llm", "FailedCreate"), 30, "a FailedCreate event")
    assert 'RuntimeClass "nvidia" not found' in failed[0]["message"]
    # the manifest of deploy/member fixes it
    bare.kubectl("apply", "-f", str(ROOT / "deploy" / "member" / "runtimeclass-nvidia.yaml"))
    bare.kubectl("apply", "-f", "-", input=json.dumps(pod))
    until(lambda: ready_pods(bare, "llm", "app=direct", 1), 30, "the pod Ready once the RuntimeClass exists")


# ---------------------------------------------------------------------------------------------- autoscaling


def test_hpa_scales_up_when_the_queue_grows(member: MemberCluster, cleanup: list[str]) -> None:
    cleanup.append("autoscale")
    ns, name = "autoscale", "qwen-hpa"
    apply(member, namespace(ns), deployment(name, ns), {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name, "namespace": ns},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "minReplicas": 1, "maxReplicas": 3,
                 "metrics": [{"type": "External", "external": {
                     "metric": {"name": "vllm_num_requests_waiting",
                                "selector": {"matchLabels": {"deployment": name}}},
                     "target": {"type": "AverageValue", "averageValue": "5"}}}]}})
    (pod,) = until(lambda: ready_pods(member, ns, f"deployment={name}", 1), 30, "one Ready pod")

    def metric(hpa: dict[str, Any]) -> str | None:
        current = hpa.get("status", {}).get("currentMetrics") or []
        return current[0]["external"]["current"].get("averageValue") if current else None

    # the HPA reads the metric (0 waiting requests) and keeps one replica
    def reading() -> dict[str, Any] | None:
        hpa: dict[str, Any] = get(member, "hpa", name, "-n", ns)
        return hpa if metric(hpa) is not None else None

    hpa = until(reading, 60, "the HPA reading vllm_num_requests_waiting")
    assert metric(hpa) == "0" and condition(hpa, "ScalingActive")["status"] == "True"
    raw = json.loads(member.kubectl("get", "--raw", f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/"
                                    f"vllm_num_requests_waiting?labelSelector={quote(f'deployment={name}')}").stdout)
    assert [(i["metricLabels"]["pod"], i["value"]) for i in raw["items"]] == [(pod["metadata"]["name"], "0")]

    member.kubectl("annotate", "pod", "-n", ns, "-l", f"deployment={name}", "sim.kubellm.io/queue-length=20")
    until(lambda: ready_pods(member, ns, f"deployment={name}", 3), 60, "three Ready replicas")
    hpa = get(member, "hpa", name, "-n", ns)
    assert hpa["status"]["desiredReplicas"] == 3
    assert get(member, "deployment", name, "-n", ns)["spec"]["replicas"] == 3


def test_metrics_api_authorizes_through_the_cluster(member: MemberCluster) -> None:
    _, kubeconfig = member.control_plane.user("metrics-stranger")
    path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/autoscale/vllm_num_requests_waiting"
    denied = member.kubectl("get", "--raw", path, kubeconfig=kubeconfig, check=False)
    assert denied.returncode != 0 and "(Forbidden)" in denied.stderr, denied.stderr
    unknown = member.kubectl("get", "--raw", path.replace("vllm_num_requests_waiting", "other_metric"), check=False)
    assert unknown.returncode != 0 and "(NotFound)" in unknown.stderr, unknown.stderr


def test_metrics_server_trusts_only_the_front_proxy(member: MemberCluster) -> None:
    """Called directly (not through kube-apiserver): the simulator's own authentication and authorization."""
    cp = member.control_plane
    url = f"https://127.0.0.1:{cp.port('nodesim-metrics')}/apis/external.metrics.k8s.io/v1beta1/namespaces/" \
          "autoscale/vllm_num_requests_waiting"

    def call(client: Pair | None, user: str = "", groups: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
        ctx = ssl.create_default_context(cafile=str(member.dir / "pki" / "nodesim-ca.crt"))
        if client is not None:
            ctx.load_cert_chain(str(client.cert), str(client.key))
        headers = {"X-Remote-User": user} if user else {}
        req = urllib.request.Request(url, headers=headers)
        for g in groups:
            req.add_unredirected_header("X-Remote-Group", g)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except (OSError, http.client.HTTPException):  # refused in the TLS handshake
            return 0, {}

    assert call(None, "admin", ("system:masters",))[0] == 401  # no front-proxy certificate
    assert call(cp.admin, "admin", ("system:masters",))[0] == 0  # a client certificate of another CA
    assert call(cp.proxy_client)[0] == 401  # no user
    code, body = call(cp.proxy_client, "metrics-stranger")
    assert (code, body["reason"]) == (403, "Forbidden"), body  # the cluster's RBAC, asked by SubjectAccessReview
    code, body = call(cp.proxy_client, "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
                      ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"))
    assert code == 200 and body["kind"] == "ExternalMetricValueList", body


# ------------------------------------------------------------------------------------------------ deletion


def test_deleting_a_namespace_with_running_pods_completes(member: MemberCluster) -> None:
    apply(member, namespace("doomed"), deployment("qwen", "doomed", replicas=2))
    until(lambda: ready_pods(member, "doomed", "app=qwen", 2), 30, "2 Ready pods")
    member.kubectl("delete", "namespace", "doomed", "--timeout=60s")  # waits until it is gone
    assert member.kubectl("get", "namespace", "doomed", check=False).returncode != 0
    assert not [p for p in get(member, "pods", "-A")["items"] if p["metadata"]["namespace"] == "doomed"]


# ------------------------------------------------------------------------------------------ KubeLLM's access


def test_kubellm_service_account_has_the_member_role(member: MemberCluster, cleanup: list[str]) -> None:
    cleanup.append("kubellm-made")
    manifest, kubeconfig = member.write_files(region="eu-west")
    cluster = yaml.safe_load(manifest.read_text())
    assert (cluster["apiVersion"], cluster["kind"]) == ("cluster.kubellm.io/v1alpha1", "Cluster")
    assert cluster["spec"]["apiEndpoint"] == member.url and cluster["spec"]["region"] == "eu-west"
    assert base64.b64decode(cluster["spec"]["caBundle"]) == member.ca_pem()
    assert cluster["spec"]["credentials"]["token"] == member.token

    def can(*args: str) -> bool:
        out = member.kubectl("auth", "can-i", *args, kubeconfig=kubeconfig, check=False)
        return out.stdout.strip() == "yes"
    for allowed in (("list", "nodes"), ("watch", "pods", "-A"), ("get", "runtimeclasses.node.k8s.io"),
                    ("create", "namespaces"), ("delete", "namespaces"), ("patch", "deployments.apps", "-n", "x"),
                    ("update", "deployments.apps", "--subresource=scale", "-n", "x"), ("create", "services", "-n", "x"),
                    ("create", "horizontalpodautoscalers.autoscaling", "-n", "x"), ("create", "events", "-n", "x")):
        assert can(*allowed), allowed
    for refused in (("get", "secrets", "-n", "kubellm-system"), ("delete", "nodes"), ("create", "pods", "-n", "x"),
                    ("create", "clusterrolebindings")):
        assert not can(*refused), refused
    # the token works with real kubectl as KubeLLM's identity
    who = json.loads(member.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert who["status"]["userInfo"]["username"] == "system:serviceaccount:kubellm-system:kubellm"
    apply(member, namespace("kubellm-made"))
    member.kubectl("apply", "-n", "kubellm-made", "-f", "-", kubeconfig=kubeconfig,
                   input=json.dumps(deployment("from-kubellm", "kubellm-made")))
    until(lambda: ready_pods(member, "kubellm-made", "app=from-kubellm", 1), 30, "KubeLLM's pod Ready")


# ------------------------------------------------------------------------------------------- heartbeats


def test_nodes_stay_ready_beyond_the_node_monitor_grace_period(member: MemberCluster) -> None:
    # a node nobody heartbeats, to prove the node-lifecycle controller does mark silent nodes
    apply(member, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "silent"},
                   "spec": {"taints": [{"key": "example.com/silent", "effect": "NoSchedule"}]},
                   "status": {"capacity": {"cpu": "1", "pods": "10"}, "conditions": [
                       {"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "lastHeartbeatTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}})
    try:
        began = time.monotonic()
        def not_ready() -> dict[str, Any] | None:
            node: dict[str, Any] = get(member, "node", "silent")
            return node if condition(node, "Ready")["status"] != "True" else None

        silent = until(not_ready, 3 * GRACE_SECONDS + 10, "the silent node NotReady")
        assert condition(silent, "Ready")["status"] == "Unknown"
        assert time.monotonic() - began < 3 * GRACE_SECONDS + 10
        for n in get(member, "nodes", "-l", "kubellm.io/simulated=true")["items"]:
            assert condition(n, "Ready")["status"] == "True", n["status"]["conditions"]
            assert not [t for t in n["spec"].get("taints") or [] if t["key"].startswith("node.kubernetes.io/")]
            lease = get(member, "lease", n["metadata"]["name"], "-n", "kube-node-lease")
            assert lease["spec"]["holderIdentity"] == n["metadata"]["name"]
    finally:
        member.kubectl("delete", "node", "silent", "--ignore-not-found")


# ------------------------------------------------------------------------------------------------ restart


def test_stop_then_start_brings_the_cluster_back(member: MemberCluster) -> None:
    apply(member, namespace("survivor"), deployment("qwen", "survivor"))
    (before,) = until(lambda: ready_pods(member, "survivor", "app=qwen", 1), 30, "a Ready pod")
    url, token = member.url, member.token
    member.stop()
    assert member.control_plane.exit_codes["kubellm-nodesim"] == 0  # SIGTERM: a clean exit
    with pytest.raises(AssertionError):
        member.kubectl("get", "nodes", timeout=10)
    try:
        member.start()
    except StartupError:
        pytest.fail("the member did not come back")
    assert member.url == url and member.token == token
    (after,) = until(lambda: ready_pods(member, "survivor", "app=qwen", 1), 60, "the pod Ready again")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert [condition(n, "Ready")["status"] for n in get(member, "nodes")["items"]] == ["True", "True"]
