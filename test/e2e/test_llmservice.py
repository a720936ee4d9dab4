"""The LLMService controller for real: a KubeLLM API server, the controller manager, and three member clusters
with different GPUs (real kube-apiserver, kube-controller-manager and kube-scheduler; the node simulator
plays the kubelet and the GPUs). Everything is driven and read with kubectl, on KubeLLM and on the members.

Members: gpu-a (1 node, 4x A100-80GB), gpu-b (2 nodes, 4x L4 each), gpu-c (1 node, 2x H100). Images ending in
`:broken` fail to pull on every member. Each test removes its LLMServices, so the GPUs are free for the next.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import APIServer, running_apiserver, secret
from managers import Manager, managers, start_manager
from polling import until
from test_member_cluster import start_member

from kubellm.devcluster import MemberCluster, MemberOptions
from kubellm.nodesim.options import NodePool

NS = "models"
INTERVAL = 2.0
POOLS = {
    "gpu-a": NodePool(count=1, gpus=4, product="NVIDIA-A100-SXM4-80GB", memory_mib=81920),
    "gpu-b": NodePool(count=2, gpus=4, product="NVIDIA-L4", memory_mib=23034),
    "gpu-c": NodePool(count=1, gpus=2, product="NVIDIA-H100-80GB-HBM3", memory_mib=81559),
}


@dataclass
class World:
    server: APIServer
    members: dict[str, MemberCluster]
    root: Path
    manager: Manager

    def apply(self, name: str, **spec: Any) -> None:
        manifest = {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
                    "metadata": {"name": name, "namespace": NS}, "spec": {"model": "Qwen/Qwen2.5-3B-Instruct", **spec}}
        self.server.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def llm(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.server.kubectl("get", "llms", name, "-n", NS, "-o", "json").stdout)
        return out

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.llm(name).get("status") or {})

    def placement(self, name: str) -> dict[str, int]:
        return {c["name"]: c["replicas"] for c in self.status(name).get("clusters") or [] if c["replicas"]}

    def serving(self, name: str, timeout: float = 60) -> dict[str, Any]:
        return until(lambda: (s := self.status(name)).get("phase") == "Serving"
                          and s.get("observedGeneration") == self.llm(name)["metadata"]["generation"] and s,
                          timeout, f"{name} Serving")

    def remote(self, cluster: str, kind: str, name: str) -> dict[str, Any] | None:
        out = self.members[cluster].kubectl("get", kind, name, "-n", NS, "-o", "json", "--ignore-not-found").stdout
        return json.loads(out) if out.strip() else None

    def delete(self, *names: str) -> None:
        """Delete and wait until the members' GPUs are all free again (as the Clusters report them)."""
        self.server.kubectl("delete", "llms", "-n", NS, *names, "--wait=true", timeout=90)

        def idle() -> bool:
            clusters = json.loads(self.server.kubectl("get", "clusters", "-o", "json").stdout)["items"]
            return all(g["available"] == g["count"] for c in clusters for g in c["status"].get("gpus") or [])

        until(idle, 60, "every GPU free")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("llmservice")
    members: dict[str, MemberCluster] = {}
    try:
        for name, pool in POOLS.items():
            members[name] = start_member(root / name, MemberOptions(
                name=name, pools=(pool,), image_failure_pattern=r":broken$", ready_delay=2.0))
        state = root / "kubellm"
        state.mkdir()
        with running_apiserver(state) as server, managers() as started:
            server.kubectl("create", "namespace", NS)
            for member in members.values():
                secret(member.token)
                manifest, _ = member.write_files()
                server.kubectl("apply", "-f", str(manifest))
            started.append(start_manager(state / "controller-manager.kubeconfig", root / "managers", "cm",
                                         "--cluster-probe-interval", f"{INTERVAL}s", "--leader-elect=false",
                                         plugin=False))
            world = World(server, members, root, started[0])
            for name in members:
                until(lambda n=name: "True" in server.kubectl(
                    "get", "cluster", n, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}').stdout,
                    60, f"{name} Ready")
            yield world
    finally:
        for m in members.values():
            m.stop()


def test_the_operators_deployment_service_and_hpa(world: World) -> None:
    world.apply("qwen", replicas=1, quantization="awq", maxModelLen=8192, gpuMemoryUtilization="0.85",
                extraArgs=["--enable-prefix-caching"], env=[{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}],
                resources={"gpu": 2, "cpu": "4", "memory": "32Gi"}, image="vllm/vllm-openai:v0.6.3",
                placement={"clusterAffinity": {"clusterNames": ["gpu-a"]}},
                autoscaling={"minReplicas": 1, "maxReplicas": 2, "waitingThreshold": 5})
    st = world.serving("qwen")
    assert st["endpoint"] == f"http://qwen.{NS}.svc.cluster.local:8000/v1"
    assert world.placement("qwen") == {"gpu-a": 1}
    dep = world.remote("gpu-a", "deployment", "qwen")
    assert dep is not None
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["name"] == "vllm" and c["image"] == "vllm/vllm-openai:v0.6.3"
    assert c["args"] == ["--model", "Qwen/Qwen2.5-3B-Instruct", "--host", "0.0.0.0", "--port", "8000",
                         "--gpu-memory-utilization", "0.85", "--max-model-len", "8192", "--served-model-name", "qwen",
                         "--quantization", "awq", "--enable-prefix-caching"]
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["runtimeClassName"] == "nvidia"
    assert c["resources"] == {"limits": {"nvidia.com/gpu": "2"}, "requests": {"cpu": "4", "memory": "32Gi"}}
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000, "scheme": "HTTP"}
    assert c["startupProbe"]["httpGet"]["path"] == "/health"
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 600
    assert [e["name"] for e in c["env"]] == ["HF_ENDPOINT", "VLLM_LOGGING_LEVEL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "4Gi"} and "hf-cache" in volumes
    assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
    labels = dep["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "qwen",
                      "app.kubernetes.io/managed-by": "kubellm"}
    assert dep["spec"]["selector"]["matchLabels"] == labels
    svc = world.remote("gpu-a", "service", "qwen")
    assert svc is not None and [(p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [(8000, "TCP")]
    assert svc["spec"]["selector"] == labels
    hpa = world.remote("gpu-a", "hpa", "qwen")
    assert hpa is not None
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 2)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"] == {"name": "vllm_num_requests_waiting",
                                            "selector": {"matchLabels": {"deployment": "qwen"}}}
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "5"}
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "qwen"}
    for other in ("gpu-b", "gpu-c"):
        assert world.remote(other, "deployment", "qwen") is None

    # autoscaling off: the HPA goes; drift on the member is put back
    world.apply("qwen", replicas=1, quantization="awq", maxModelLen=8192, gpuMemoryUtilization="0.85",
                extraArgs=["--enable-prefix-caching"], env=[{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}],
                resources={"gpu": 2, "cpu": "4", "memory": "32Gi"}, image="vllm/vllm-openai:v0.6.3",
                placement={"clusterAffinity": {"clusterNames": ["gpu-a"]}})
    until(lambda: world.remote("gpu-a", "hpa", "qwen") is None, 30, "the HPA removed")
    world.members["gpu-a"].kubectl("patch", "deployment", "qwen", "-n", NS, "--type", "json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/template/spec/containers/0/args/1", "value": "hacked"}]))
    until(lambda: (d := world.remote("gpu-a", "deployment", "qwen")) is not None
               and d["spec"]["template"]["spec"]["containers"][0]["args"][1] == "Qwen/Qwen2.5-3B-Instruct", 30,
               "the hand edit put back")
    world.members["gpu-a"].kubectl("delete", "service", "qwen", "-n", NS)
    until(lambda: world.remote("gpu-a", "service", "qwen") is not None, 30, "the deleted Service recreated")
    world.delete("qwen")
    for kind in ("deployment", "service"):
        assert world.remote("gpu-a", kind, "qwen") is None, f"the {kind} outlived its LLMService"


def test_phases_seen_through_kubectl_watch(world: World) -> None:
    watch = subprocess.Popen(["kubectl", "--kubeconfig", str(world.server.kubeconfig), "get", "llms", "-n", NS,
                              "--watch", "-o", "custom-columns=NAME:.metadata.name,PHASE:.status.phase"],
                             stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        world.apply("watched", replicas=2, placement={"clusterAffinity": {"clusterNames": ["gpu-b"]}})
        world.serving("watched")
        time.sleep(1)
    finally:
        watch.terminate()
        out, _ = watch.communicate(timeout=10)
    phases = [line.split()[1] for line in out.splitlines()[1:] if line.startswith("watched ") and len(line.split()) > 1]
    seen = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert seen[-1] == "Serving" and "Loading" in seen, phases
    assert seen.index("Loading") < seen.index("Serving") and (
        "Pending" not in seen or seen.index("Pending") < seen.index("Loading")), phases
    world.delete("watched")


def test_duplicated_static_weights_and_free_gpus(world: World) -> None:
    world.apply("dup", replicas=2, placement={
        "clusterAffinity": {"clusterNames": ["gpu-a", "gpu-b"]},
        "replicaScheduling": {"replicaSchedulingType": "Duplicated"}})
    world.serving("dup")
    assert world.placement("dup") == {"gpu-a": 2, "gpu-b": 2}
    assert world.status("dup")["readyReplicas"] == 4
    world.delete("dup")

    world.apply("weighted", replicas=3, placement={"replicaScheduling": {
        "replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
        "weightPreference": {"staticWeightList": [
            {"targetCluster": {"clusterNames": ["gpu-a"]}, "weight": 1},
            {"targetCluster": {"clusterNames": ["gpu-b"]}, "weight": 2}]}}})
    world.serving("weighted")
    assert world.placement("weighted") == {"gpu-a": 1, "gpu-b": 2}
    world.delete("weighted")

    # free GPUs: 4 on gpu-a, 8 on gpu-b, 2 on gpu-c -> 7 replicas as 2 / 4 / 1
    world.apply("dynamic", replicas=7, placement={"replicaScheduling": {
        "replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
        "weightPreference": {"dynamicWeight": "AvailableReplicas"}}})
    world.serving("dynamic")
    assert world.placement("dynamic") == {"gpu-a": 2, "gpu-b": 4, "gpu-c": 1}
    for cluster, replicas in world.placement("dynamic").items():
        dep = world.remote(cluster, "deployment", "dynamic")
        assert dep is not None and dep["spec"]["replicas"] == replicas
    world.delete("dynamic")


def test_scale_and_spec_edits_flow_through(world: World) -> None:
    world.apply("edited", replicas=1, placement={"clusterAffinity": {"clusterNames": ["gpu-b"]}})
    world.serving("edited")
    world.server.kubectl("scale", "llms/edited", "-n", NS, "--replicas", "3")
    world.serving("edited")
    assert world.placement("edited") == {"gpu-b": 3}
    assert world.remote("gpu-b", "deployment", "edited")["spec"]["replicas"] == 3  # type: ignore[index]
    world.server.kubectl("patch", "llms", "edited", "-n", NS, "--type", "merge", "-p",
                         json.dumps({"spec": {"maxModelLen": 2048}}))
    until(lambda: "2048" in world.remote("gpu-b", "deployment", "edited")[  # type: ignore[index]
        "spec"]["template"]["spec"]["containers"][0]["args"], 30, "the new argument on the member")
    world.serving("edited")
    world.delete("edited")


def test_no_gpu_fits_then_a_cluster_with_room_joins(world: World) -> None:
    world.apply("big", replicas=1, resources={"gpu": 8})
    failed = until(lambda: (s := world.status("big")).get("phase") == "Failed" and s, 30, "Failed")
    assert "8 free GPUs" in failed["message"], failed["message"]
    placed = next(c for c in failed["conditions"] if c["type"] == "Placed")
    assert placed["status"] == "False" and placed["reason"] == "Unschedulable"
    joined = start_member(world.root / "gpu-d", MemberOptions(
        name="gpu-d", pools=(NodePool(count=1, gpus=8, product="NVIDIA-H100-80GB-HBM3", memory_mib=81559),),
        ready_delay=1.0))
    world.members["gpu-d"] = joined
    secret(joined.token)
    manifest, _ = joined.write_files()
    world.server.kubectl("apply", "-f", str(manifest))
    world.serving("big", timeout=60)
    assert world.placement("big") == {"gpu-d": 1}
    world.delete("big")


def test_an_image_that_cannot_be_pulled_fails_naming_the_cluster(world: World) -> None:
    world.apply("broken", replicas=1, image="vllm/vllm-openai:broken",
                placement={"clusterAffinity": {"clusterNames": ["gpu-c"]}})
    failed = until(lambda: (s := world.status("broken")).get("phase") == "Failed" and s, 40, "Failed")
    assert "gpu-c" in failed["message"] and ("ErrImagePull" in failed["message"]
                                             or "ImagePullBackOff" in failed["message"]), failed["message"]
    events = world.server.kubectl("get", "events", "-n", NS, "--field-selector", "involvedObject.name=broken",
                                  "-o", "json").stdout
    assert "Failed" in {e["reason"] for e in json.loads(events)["items"]}
    world.server.kubectl("patch", "llms", "broken", "-n", NS, "--type", "merge", "-p",
                         json.dumps({"spec": {"image": "vllm/vllm-openai:v0.6.3"}}))
    world.serving("broken")
    world.delete("broken")


def test_an_unreachable_cluster_loses_its_replicas_to_the_others(world: World) -> None:
    world.apply("moving", replicas=2, placement={"clusterAffinity": {"clusterNames": ["gpu-a", "gpu-b"]}})
    world.serving("moving")
    before = world.placement("moving")
    assert sum(before.values()) == 2 and "gpu-a" in before
    world.members["gpu-a"].stop()
    try:
        moved = until(lambda: (p := world.placement("moving")) == {"gpu-b": 2} and p, 40, "replicas moved")
        assert moved == {"gpu-b": 2}
        world.serving("moving")
        removing = [c for c in world.status("moving")["clusters"] if c["name"] == "gpu-a"]
        assert removing and removing[0]["phase"] == "Removing", world.status("moving")["clusters"]
        described = world.server.kubectl("describe", "llms", "moving", "-n", NS).stdout
        assert "Failover" in described
    finally:
        world.members["gpu-a"].start()
    # back: its stale objects are removed
    until(lambda: world.remote("gpu-a", "deployment", "moving") is None
               and all(c["name"] != "gpu-a" for c in world.status("moving")["clusters"]), 60,
               "the returned cluster's objects removed")
    assert world.placement("moving") == {"gpu-b": 2}  # sticky: serving replicas do not move back
    world.delete("moving")


def test_deletion_waits_for_an_unreachable_cluster(world: World) -> None:
    world.apply("kept", replicas=1, placement={"clusterAffinity": {"clusterNames": ["gpu-c"]}})
    world.serving("kept")
    world.members["gpu-c"].stop()
    try:
        world.server.kubectl("delete", "llms", "kept", "-n", NS, "--wait=false")
        time.sleep(3 * INTERVAL)
        assert world.llm("kept")["metadata"]["deletionTimestamp"]  # the finalizer holds it
    finally:
        world.members["gpu-c"].start()
    until(lambda: world.server.kubectl("get", "llms", "kept", "-n", NS, "--ignore-not-found").stdout == "", 60,
               "deleted once the cluster is back")
    assert world.remote("gpu-c", "deployment", "kept") is None


def test_the_autoscaler_owns_the_replica_count(world: World) -> None:
    world.apply("auto", replicas=1, placement={"clusterAffinity": {"clusterNames": ["gpu-b"]}},
                autoscaling={"minReplicas": 1, "maxReplicas": 3, "waitingThreshold": 5})
    world.serving("auto")
    member = world.members["gpu-b"]
    # the simulated vLLM reports 20 waiting requests: the real HPA controller scales to its maximum
    member.kubectl("annotate", "pods", "-n", NS, "-l", "app.kubernetes.io/instance=auto",
                   "sim.kubellm.io/queue-length=20")
    until(lambda: world.remote("gpu-b", "deployment", "auto")["spec"]["replicas"] == 3,  # type: ignore[index]
               60, "the HPA scaled the member's Deployment")
    st = until(lambda: (s := world.serving("auto"))["readyReplicas"] == 3 and s, 60, "3 replicas ready")
    assert st["replicas"] == 3 and world.placement("auto") == {"gpu-b": 3}
    time.sleep(3 * INTERVAL)  # the controller keeps reconciling (member events, requeues): it must not scale back
    dep = json.loads(member.kubectl("get", "deployment", "auto", "-n", NS, "-o", "json",
                                    "--show-managed-fields").stdout)
    assert dep["spec"]["replicas"] == 3
    owners = {e["manager"] for e in dep["metadata"]["managedFields"] if "f:replicas" in e.get("fieldsV1", {}).get(
        "f:spec", {})}
    assert "kubellm-controller" not in owners, owners
    world.delete("auto")


def test_a_namesake_on_a_member_is_not_taken_over(world: World) -> None:
    member = world.members["gpu-c"]
    member.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": NS}}))
    member.kubectl("create", "deployment", "squatter", "-n", NS, "--image", "nginx:1.27")
    try:
        world.apply("squatter", replicas=1, placement={"clusterAffinity": {"clusterNames": ["gpu-c"]}})
        failed = until(lambda: (s := world.status("squatter")).get("phase") == "Failed" and s, 40, "Failed")
        assert "belongs to someone else" in failed["message"] and "gpu-c" in failed["message"], failed["message"]
        theirs = world.remote("gpu-c", "deployment", "squatter")
        assert theirs is not None and theirs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
        assert "app.kubernetes.io/managed-by" not in (theirs["metadata"].get("labels") or {})
    finally:
        member.kubectl("delete", "deployment", "squatter", "-n", NS, "--wait=true")
    world.serving("squatter")  # the name is free: the LLMService's own Deployment is made
    world.delete("squatter")


def test_replicas_no_node_takes_go_where_there_is_room(world: World) -> None:
    # gpu-c's node is tainted: its Cluster still reports free GPUs, but the scheduler places no pod there
    member = world.members["gpu-c"]
    node = member.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout.strip()
    member.kubectl("taint", "nodes", node, "maintenance=true:NoSchedule")
    try:
        world.apply("tainted", replicas=1, placement={
            "clusterAffinity": {"clusterNames": ["gpu-b", "gpu-c"]},
            "replicaScheduling": {"replicaSchedulingType": "Divided", "weightPreference": {"staticWeightList": [
                {"targetCluster": {"clusterNames": ["gpu-c"]}, "weight": 2},
                {"targetCluster": {"clusterNames": ["gpu-b"]}, "weight": 1}]}}})
        until(lambda: world.remote("gpu-c", "deployment", "tainted") is not None, 40, "placed on gpu-c first")
        until(lambda: world.placement("tainted") == {"gpu-b": 1}, 60, "moved to gpu-b")
        world.serving("tainted")
        until(lambda: world.remote("gpu-c", "deployment", "tainted") is None, 40, "removed from gpu-c")
        assert world.placement("tainted") == {"gpu-b": 1}
    finally:
        member.kubectl("taint", "nodes", node, "maintenance=true:NoSchedule-")
    world.delete("tainted")
