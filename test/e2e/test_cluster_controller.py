"""The Cluster controller for real: a KubeLLM API server, two kubellm-controller-manager replicas (as the
user `system:kubellm:controller-manager`, with the kubeconfig the server writes) and two member clusters
(real kube-apiservers with simulated GPU nodes), registered with the tokens of deploy/member.

What a user sees is checked through kubectl and the audit log: conditions, inventory and columns; a stopped
member going stale and coming back; wrong credentials named; one writer at a time; a killed leader's
standby taking over.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import AUDIT_POLICY, APIServer, running_apiserver, secret
from managers import FAST_ELECTION, Manager, managers, start_manager
from polling import until
from test_member_cluster import start_member

from kubellm.devcluster import MemberCluster, MemberOptions
from kubellm.nodesim.options import NodePool

INTERVAL = 2.0
A100 = "NVIDIA-A100-SXM4-80GB"
L4 = "NVIDIA-L4"


@dataclass
class World:
    server: APIServer
    members: dict[str, MemberCluster]
    managers: list[Manager]
    audit: Path

    def cluster(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.server.kubectl("get", "cluster", name, "-o", "json").stdout)
        return out

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        for c in self.cluster(name).get("status", {}).get("conditions", []):
            if c["type"] == kind:
                return dict(c)
        raise KeyError(kind)

    def status_writers(self) -> list[tuple[str, str]]:
        """(user agent, cluster) of every write to a Cluster's status the audit log holds."""
        out = []
        for line in self.audit.read_text().splitlines():
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            if (event.get("stage") == "ResponseComplete" and ref.get("resource") == "clusters"
                    and ref.get("subresource") == "status" and event.get("verb") in ("patch", "update")):
                out.append((event.get("userAgent", ""), ref.get("name", "")))
        return out


def _start_members(root: Path) -> dict[str, MemberCluster]:
    options = {
        "gpu-a": MemberOptions(name="gpu-a", pools=(NodePool(count=1, gpus=4, product=A100, memory_mib=81920),)),
        "gpu-b": MemberOptions(name="gpu-b", pools=(NodePool(count=2, gpus=4, product=L4, memory_mib=23034),)),
    }
    # one after the other, from this thread: the processes die with the thread that started them
    # (PR_SET_PDEATHSIG), so not from helper threads
    started: dict[str, MemberCluster] = {}
    try:
        for name, opts in options.items():
            started[name] = start_member(root / name, opts)
    except BaseException:
        for m in started.values():
            m.stop()
        raise
    return started


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("cluster-controller")
    members = _start_members(root)
    state = root / "kubellm"
    state.mkdir()
    (state / "audit-policy.yaml").write_text(AUDIT_POLICY)
    try:
        with running_apiserver(state, "--audit-log-path", str(state / "audit.log"), "--audit-policy-file",
                               str(state / "audit-policy.yaml")) as server, managers() as started:
            for name, member in members.items():
                secret(member.token)
                manifest, _ = member.write_files(region="eu-west" if name == "gpu-a" else "us-east")
                server.kubectl("apply", "-f", str(manifest))
            kubeconfig = state / "controller-manager.kubeconfig"
            for name in ("cm-1", "cm-2"):
                started.append(start_manager(
                    kubeconfig, root / "managers", name, *FAST_ELECTION, "--controllers", "cluster",
                    "--cluster-probe-interval", f"{INTERVAL}s", plugin=False))
            yield World(server, members, started, state / "audit.log")
    finally:
        for m in members.values():
            m.stop()


def test_members_are_ready_with_their_gpus(world: World) -> None:
    for name in ("gpu-a", "gpu-b"):
        until(lambda n=name: world.condition(n, "Ready")["status"] == "True", 60, f"{name} Ready")
    a, b = world.cluster("gpu-a")["status"], world.cluster("gpu-b")["status"]
    assert a["nodeCount"] == 1 and b["nodeCount"] == 2
    assert a["kubernetesVersion"].startswith("v1.") and a["lastProbeTime"]
    assert [(g["model"], g["memoryMiB"], g["count"], g["allocatable"], g["available"], g["nodes"])
            for g in a["gpus"]] == [(A100, 81920, 4, 4, 4, 1)]
    assert [(g["model"], g["count"], g["available"], g["largestFree"]) for g in b["gpus"]] == [(L4, 8, 8, 4)]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in a["conditions"]}
    assert conditions == {"Ready": ("True", "ClusterReady"), "Reachable": ("True", "ProbeSucceeded"),
                          "GPURuntimeReady": ("True", "RuntimeClassFound"),
                          "CredentialsExpiringSoon": ("False", "NoExpiry")}
    assert all(c["lastTransitionTime"] and c["message"] for c in a["conditions"])

    table = world.server.kubectl("get", "clusters").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "VERSION", "GPUS", "NODES", "REGION", "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["gpu-a"][1:6] == ["True", a["kubernetesVersion"], "4/4", "1", "eu-west"]
    assert rows["gpu-b"][1:6] == ["True", b["kubernetesVersion"], "8/8", "2", "us-east"]
    described = world.server.kubectl("describe", "cluster", "gpu-a").stdout
    assert "ClusterReady" in described and "cluster-controller" in described  # the Normal Event


def test_used_gpus_are_not_available(world: World) -> None:
    member = world.members["gpu-a"]
    member.kubectl("create", "namespace", "busy")
    member.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vllm", "namespace": "busy"},
        "spec": {"runtimeClassName": "nvidia", "containers": [{
            "name": "vllm", "image": "vllm/vllm-openai:v0.6.3",
            "resources": {"limits": {"nvidia.com/gpu": "3"}}}]}}))
    until(lambda: [g["available"] for g in world.cluster("gpu-a")["status"]["gpus"]] == [1], 30,
               "3 of 4 GPUs in use")
    assert world.cluster("gpu-a")["status"]["gpus"][0]["largestFree"] == 1
    member.kubectl("delete", "namespace", "busy", "--wait=false")
    until(lambda: [g["available"] for g in world.cluster("gpu-a")["status"]["gpus"]] == [4], 60,
               "the GPUs free again")


def test_wrong_credentials_are_named(world: World) -> None:
    manifest = world.members["gpu-a"].cluster_manifest("gpu-a-wrong-token")
    manifest["spec"]["credentials"]["token"] = "not-a-token-of-this-cluster"
    world.server.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    ready = until(lambda: (c := world.condition("gpu-a-wrong-token", "Ready"))["status"] == "False" and c, 30,
                       "Ready=False for a wrong token")
    assert ready["reason"] == "Unauthorized" and "credentials" in ready["message"]
    assert world.condition("gpu-a-wrong-token", "Reachable")["status"] == "True"

    untrusted = world.members["gpu-b"].cluster_manifest("gpu-b-wrong-ca")
    untrusted["spec"]["caBundle"] = world.members["gpu-a"].cluster_manifest()["spec"]["caBundle"]
    world.server.kubectl("apply", "-f", "-", input=json.dumps(untrusted))
    wrong_ca = until(lambda: (c := world.condition("gpu-b-wrong-ca", "Ready"))["status"] == "False" and c, 30,
                          "Ready=False for a CA that does not sign the endpoint's certificate")
    assert wrong_ca["reason"] == "UntrustedCertificate", wrong_ca
    world.server.kubectl("delete", "cluster", "gpu-a-wrong-token", "gpu-b-wrong-ca")


def test_a_stopped_member_goes_stale_and_comes_back(world: World) -> None:
    member = world.members["gpu-b"]
    member.stop()
    stopped = time.monotonic()
    ready = until(lambda: (c := world.condition("gpu-b", "Ready"))["status"] == "False" and c,
                       3 * INTERVAL * 1.2 + 10, "Ready=False after the member stopped")
    assert time.monotonic() - stopped <= 3 * INTERVAL * 1.2 + 10
    assert ready["reason"] == "ProbeStale" and "no successful probe since" in ready["message"], ready
    assert world.condition("gpu-b", "Reachable")["status"] == "False"
    assert world.cluster("gpu-b")["status"]["gpus"][0]["count"] == 8  # the last inventory stays
    member.start()
    until(lambda: world.condition("gpu-b", "Ready")["status"] == "True", 60, "Ready again")
    events = world.server.kubectl("get", "events", "-A", "--field-selector", "involvedObject.name=gpu-b",
                                  "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"ClusterReady", "ProbeStale"} <= reasons


def test_one_writer_and_takeover_when_the_leader_dies(world: World) -> None:
    lease = "kubellm-controller-manager"

    def holder() -> str:
        out = world.server.kubectl("get", "lease", lease, "-n", "kube-system", "-o",
                                   "jsonpath={.spec.holderIdentity}").stdout
        return out.strip()

    leader_identity = until(holder, 30, "a leader")
    leader = next(m for m in world.managers if m.identity == leader_identity)
    standby = next(m for m in world.managers if m is not leader)
    writers = {agent for agent, _ in world.status_writers()}
    assert writers and all(leader.identity in agent for agent in writers), writers
    assert not any(standby.identity in agent for agent in writers)

    before = world.cluster("gpu-a")["status"]["lastProbeTime"]
    leader.signal(signal.SIGKILL)
    killed = time.monotonic()
    leader.wait(10)
    until(lambda: holder() == standby.identity, 20, "the standby holds the Lease")
    until(lambda: world.cluster("gpu-a")["status"]["lastProbeTime"] != before
               and any(standby.identity in agent for agent, name in world.status_writers() if name == "gpu-a"),
               20, "the new leader probes")
    assert time.monotonic() - killed < 15 + 2 * INTERVAL
    for name in ("gpu-a", "gpu-b"):
        assert world.condition(name, "Ready")["status"] == "True"
