"""GPU nodes: what a kubelet with the NVIDIA device plugin and GPU feature discovery registers (pure
functions), and the agent that registers them and keeps their heartbeats.

A node carries `nvidia.com/gpu` in capacity and allocatable, the labels `nvidia.com/gpu.product`,
`nvidia.com/gpu.memory` (MiB per GPU), `nvidia.com/gpu.count` and `nvidia.com/gpu.present`, and cpu,
memory and pods capacity. Heartbeats are those of a kubelet: a Lease in `kube-node-lease` renewed every
`lease_interval` seconds (what the node-lifecycle controller watches), and the Ready condition's
`lastHeartbeatTime` written every `status_interval` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubellm.client import AlreadyExists, AsyncDynamicClient, ClientError, NotFound, ResourceRef
from kubellm.nodesim import clock
from kubellm.nodesim.options import NodePool, Options

log = logging.getLogger("kubellm.nodesim.nodes")

NODES = ResourceRef("", "v1", "nodes", "Node", namespaced=False)
LEASES = ResourceRef("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True)
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.36.2"
SIMULATED_LABEL = "kubellm.io/simulated"
GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class SimNode:
    """One simulated node: its name, index (which fixes its addresses) and pool."""

    name: str
    index: int
    pool: NodePool

    @property
    def internal_ip(self) -> str:
        return f"172.18.{self.index // 250}.{self.index % 250 + 2}"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/24"

    def pod_ip(self, host: int) -> str:
        return f"10.244.{self.index}.{host}"


def sim_nodes(options: Options) -> list[SimNode]:
    names = iter(options.node_names())
    out: list[SimNode] = []
    for pool in options.pools:
        for _ in range(pool.count):
            out.append(SimNode(next(names), len(out), pool))
    return out


def labels(node: SimNode) -> dict[str, str]:
    p = node.pool
    return {
        "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
        "nvidia.com/gpu.present": "true" if p.gpus else "false", "nvidia.com/gpu.product": p.product,
        "nvidia.com/gpu.memory": str(p.memory_mib), "nvidia.com/gpu.count": str(p.gpus), SIMULATED_LABEL: "true",
    }


def resources(node: SimNode) -> dict[str, str]:
    p = node.pool
    return {"cpu": p.cpu, "memory": p.memory, "pods": str(p.pods), "ephemeral-storage": "1Ti", GPU: str(p.gpus)}


def conditions(at: datetime, since: datetime) -> list[dict[str, Any]]:
    """A healthy kubelet's conditions, heartbeat `at`, unchanged `since`."""
    def cond(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {"type": type_, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": clock.rfc3339(at), "lastTransitionTime": clock.rfc3339(since)}
    return [cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status (kubellm-nodesim)")]


def status(node: SimNode, at: datetime, since: datetime) -> dict[str, Any]:
    res = resources(node)
    return {
        "capacity": res, "allocatable": dict(res), "conditions": conditions(at, since),
        "addresses": [{"type": "InternalIP", "address": node.internal_ip}, {"type": "Hostname", "address": node.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"machineID": f"kubellm-nodesim-{node.index}", "systemUUID": f"kubellm-nodesim-{node.index}",
                     "bootID": f"kubellm-nodesim-{node.index}", "kernelVersion": "6.1.0-kubellm-nodesim",
                     "osImage": "kubellm-nodesim", "containerRuntimeVersion": "kubellm-nodesim://0.1.0",
                     "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "", "operatingSystem": "linux",
                     "architecture": "amd64"},
    }


def manifest(node: SimNode, at: datetime) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node.name, "labels": labels(node),
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "kubellm.io/simulated-by": "kubellm-nodesim"}},
            "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
            "status": status(node, at, at)}


def lease(node: SimNode, uid: str, at: datetime, duration: int) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": node.name, "namespace": LEASE_NAMESPACE,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": uid}]},
            "spec": {"holderIdentity": node.name, "leaseDurationSeconds": duration, "renewTime": clock.micro(at)}}


def ready_since(existing: dict[str, Any] | None, at: datetime) -> datetime:
    """When the node became Ready, kept from the stored node while it stayed Ready."""
    for c in ((existing or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return clock.parse(c.get("lastTransitionTime")) or at
    return at


class NodeAgent:
    """Registers the nodes, then renews their Leases and NodeStatus heartbeats until cancelled."""

    def __init__(self, client: AsyncDynamicClient, options: Options) -> None:
        self.client = client
        self.options = options
        self.nodes = sim_nodes(options)
        self.uids: dict[str, str] = {}
        self.since: dict[str, datetime] = {}
        self._nodes = client.resource_for(NODES)
        self._leases = client.resource_for(LEASES, LEASE_NAMESPACE)

    async def register(self) -> None:
        """Create each node, or bring an existing one up to date (labels, capacity, Ready)."""
        for node in self.nodes:
            await self._register(node)

    async def _register(self, node: SimNode) -> None:
        at = clock.now()
        want = manifest(node, at)
        try:
            created = await self._nodes.create(want, timeout=10)
            self.uids[node.name] = created["metadata"]["uid"]
            self.since[node.name] = at
            log.info("registered node %s (%d x %s)", node.name, node.pool.gpus, node.pool.product)
            return
        except AlreadyExists:
            pass
        existing = await self._nodes.get(node.name, timeout=10)
        self.uids[node.name] = existing["metadata"]["uid"]
        self.since[node.name] = ready_since(existing, at)
        await self._nodes.patch(node.name, {"metadata": {"labels": want["metadata"]["labels"],
                                                         "annotations": want["metadata"]["annotations"]}},
                                timeout=10)
        await self._post_status(node, at)
        log.info("node %s already registered; updated", node.name)

    async def _post_status(self, node: SimNode, at: datetime) -> None:
        await self._nodes.patch(node.name, {"status": status(node, at, self.since.get(node.name, at))},
                                subresource="status", timeout=10)

    async def renew_lease(self, node: SimNode) -> None:
        at = clock.now()
        try:
            await self._leases.patch(node.name, {"spec": {"holderIdentity": node.name,
                                                          "leaseDurationSeconds": self.options.lease_duration,
                                                          "renewTime": clock.micro(at)}}, timeout=10)
        except NotFound:
            body = lease(node, self.uids.get(node.name, ""), at, self.options.lease_duration)
            if not body["metadata"]["ownerReferences"][0]["uid"]:
                del body["metadata"]["ownerReferences"]
            await self._leases.create(body, timeout=10)

    async def run_leases(self) -> None:
        while True:
            await self._each(self.renew_lease, "lease")
            await asyncio.sleep(self.options.lease_interval)

    async def run_status(self) -> None:
        while True:
            await asyncio.sleep(self.options.status_interval)
            await self._each(lambda n: self._post_status(n, clock.now()), "status")

    async def _each(self, action: Any, what: str) -> None:
        for node in self.nodes:
            try:
                await action(node)
            except NotFound:
                log.warning("node %s is gone; registering it again", node.name)
                await self._try(self._register(node), f"registering {node.name}")
            except ClientError as exc:
                log.warning("%s heartbeat of %s failed: %s", what, node.name, exc)

    @staticmethod
    async def _try(coro: Any, what: str) -> None:
        try:
            await coro
        except ClientError as exc:
            log.warning("%s failed: %s", what, exc)
