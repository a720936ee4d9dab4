"""The kubelet's part for pods bound to the simulated nodes: their status (see `podstatus`), and the end of
their deletion (a pod with a deletionTimestamp is deleted with gracePeriodSeconds=0, as a kubelet does once
its containers stopped, so deleting a Deployment or a namespace completes).

One informer watches every bound pod (`spec.nodeName!=`); its handlers queue the keys of pods on our nodes;
`workers` tasks reconcile them. Transitions due later (Ready after the delay, ImagePullBackOff) are queued
for that time.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from kubellm.client import (
    AsyncDynamicClient,
    AsyncDynamicInformerFactory,
    ClientError,
    Conflict,
    DeletedFinalStateUnknown,
    EventHandlerFuncs,
    NotFound,
    ResourceRef,
    SharedIndexInformer,
)
from kubellm.nodesim import clock, podstatus
from kubellm.nodesim.nodes import SimNode
from kubellm.nodesim.options import Options
from kubellm.nodesim.workqueue import WorkQueue

log = logging.getLogger("kubellm.nodesim.pods")

PODS = ResourceRef("", "v1", "pods", "Pod", namespaced=True)
EVENTS = ResourceRef("", "v1", "events", "Event", namespaced=True)
BOUND = "spec.nodeName!="

Obj = dict[str, Any]


def node_of(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def waiting_reasons(pod: Obj) -> dict[str, str]:
    return {s.get("name", ""): ((s.get("state") or {}).get("waiting") or {}).get("reason", "")
            for s in (pod.get("status") or {}).get("containerStatuses") or []}


class PodAgent:
    def __init__(self, client: AsyncDynamicClient, options: Options, nodes: list[SimNode]) -> None:
        self.client = client
        self.options = options
        self.nodes = {n.name: n for n in nodes}
        self.timing = podstatus.Timing(options.ready_delay, options.probe_delay_scale, options.image_backoff,
                                       options.failing_image())
        self.factory = AsyncDynamicInformerFactory(client.transport, field_selector=BOUND)
        self.informer: SharedIndexInformer[Obj] = self.factory.for_resource(PODS).informer()
        self.queue = WorkQueue()
        self._ips: dict[str, dict[str, str]] = {name: {} for name in self.nodes}  # node -> ip -> pod uid
        self._tasks: list[asyncio.Task[None]] = []

    # -- wiring

    async def start(self, sync_timeout: float = 60) -> None:
        self.informer.add_event_handler(EventHandlerFuncs(
            add=self._on_change, update=lambda _, new: self._on_change(new), delete=self._on_delete))
        self.factory.start()
        if not (await self.factory.wait_for_cache_sync(sync_timeout)).get(PODS):
            raise TimeoutError(f"the pod informer did not sync in {sync_timeout}s")
        self._tasks = [asyncio.create_task(self.queue.worker(self.reconcile), name=f"pod-worker-{i}")
                       for i in range(self.options.workers)]

    async def stop(self) -> None:
        self.queue.shutdown()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.factory.shutdown()

    def _on_change(self, pod: Obj) -> None:
        if node_of(pod) in self.nodes:
            self.queue.add(self.informer.source.key(pod))

    def _on_delete(self, obj: Obj | DeletedFinalStateUnknown[Obj]) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        uid = (pod.get("metadata") or {}).get("uid", "")
        for ips in self._ips.values():
            for ip in [ip for ip, owner in ips.items() if owner == uid]:
                del ips[ip]
        self.queue.forget(self.informer.source.key(pod))

    # -- reconcile

    async def reconcile(self, key: str) -> None:
        pod = self.informer.indexer.get_by_key(key)
        if pod is None or node_of(pod) not in self.nodes:
            return
        try:
            if (pod.get("metadata") or {}).get("deletionTimestamp"):
                await self._finish_deletion(pod)
            else:
                await self._sync_status(key, pod)
        except Conflict:
            self.queue.add_after(key, 0.2)  # the informer brings the newer pod
        except NotFound:
            pass
        except ClientError as exc:
            log.warning("pod %s: %s; trying again", key, exc)
            self.queue.add_after(key, 1.0)

    async def _finish_deletion(self, pod: Obj) -> None:
        meta = pod["metadata"]
        await self.client.resource_for(PODS, meta["namespace"]).delete(
            meta["name"], grace_period_seconds=0, preconditions={"uid": meta["uid"]}, timeout=10)
        log.info("pod %s/%s deleted (its containers are gone)", meta["namespace"], meta["name"])

    async def _sync_status(self, key: str, pod: Obj) -> None:
        node = self.nodes[node_of(pod)]
        at = clock.now()
        want = podstatus.desired(pod, self._pod_ip(node, pod), node.internal_ip, at, self.timing)
        if want.status is not None:
            meta = pod["metadata"]
            await self.client.resource_for(PODS, meta["namespace"]).patch(
                meta["name"], {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": want.status},
                subresource="status", timeout=10)
            await self._report(pod, want.status, node)
        if want.recheck_at is not None:
            self.queue.add_after(key, (want.recheck_at - at).total_seconds())

    def _pod_ip(self, node: SimNode, pod: Obj) -> str:
        """The pod's IP: the stored one, else the lowest free address of the node's pod CIDR."""
        uid = pod["metadata"].get("uid", "")
        ips = self._ips[node.name]
        current = (pod.get("status") or {}).get("podIP")
        if current:
            ips.setdefault(current, uid)
            return str(current)
        for ip, owner in ips.items():
            if owner == uid:
                return ip
        for other in self.informer.indexer.list():  # addresses of pods we have not seen yet this run
            other_ip = (other.get("status") or {}).get("podIP")
            if other_ip and node_of(other) == node.name:
                ips.setdefault(other_ip, (other.get("metadata") or {}).get("uid", ""))
        for host in range(2, 255):
            ip = node.pod_ip(host)
            if ip not in ips:
                ips[ip] = uid
                return ip
        raise RuntimeError(f"node {node.name} has no free pod address")

    async def _report(self, pod: Obj, status: Obj, node: SimNode) -> None:
        """Events as the kubelet records them when an image cannot be pulled."""
        before = waiting_reasons(pod)
        for s in status.get("containerStatuses") or []:
            reason = ((s.get("state") or {}).get("waiting") or {}).get("reason", "")
            if reason == before.get(s["name"]) or reason not in ("ErrImagePull", "ImagePullBackOff"):
                continue
            if reason == "ErrImagePull":
                await self._event(pod, node, s["name"], "Warning", "Failed",
                                  f'Failed to pull image "{s["image"]}": not found (kubellm-nodesim failure pattern)')
            else:
                await self._event(pod, node, s["name"], "Normal", "BackOff", f'Back-off pulling image "{s["image"]}"')

    async def _event(self, pod: Obj, node: SimNode, container: str, type_: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        at = clock.rfc3339(clock.now())
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                               "uid": meta["uid"], "fieldPath": f"spec.containers{{{container}}}"},
            "type": type_, "reason": reason, "message": message, "count": 1, "firstTimestamp": at,
            "lastTimestamp": at, "source": {"component": "kubelet", "host": node.name},
            "reportingComponent": "kubelet", "reportingInstance": node.name,
        }
        try:
            await self.client.resource_for(EVENTS, meta["namespace"]).create(event, timeout=10)
        except ClientError as exc:
            log.info("event for %s/%s not recorded: %s", meta["namespace"], meta["name"], exc)
