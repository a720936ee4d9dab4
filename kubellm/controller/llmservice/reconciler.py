"""The LLMService controller's reconcile: place the replicas, make each chosen member run them, remove them
where they no longer belong, and report what runs.

1. A deleted LLMService: its objects are removed from every member in `status.clusters`; the finalizer goes
   once all are gone (an unreachable member keeps it, with the reason in the `Ready` condition).
2. The finalizer and the placement fingerprint (an annotation) are applied under the controller's field manager.
3. `placement.place` divides the replicas among the Clusters (sticky: `status.clusters` is the current
   placement; a changed `spec.placement` rebalances).
4. On each chosen member, the Namespace, Deployment, Service and HPA (`resources.llm_objects`) are applied
   with server-side apply when the member's cached copy differs from them (hand edits are put back); an HPA
   no longer wanted is deleted. The replica count is left to the HPA once it owns it.
5. Members that lost their replicas have their objects deleted (`Removing` while they cannot be reached).
6. The status (`status.overall`) is applied to `/status` when it changed; Events tell placements, failovers,
   failures and readiness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from kubellm.apis.timestamps import rfc3339
from kubellm.client import errors
from kubellm.client.informers import ClusterScopedLister, NamespacedLister
from kubellm.client.resource import ResourceOps
from kubellm.controller import applier, ownership
from kubellm.controller.applier import Refused
from kubellm.controller.conditions import set_condition
from kubellm.controller.llmservice import resources, status
from kubellm.controller.llmservice.placement import Decision, as_json, current_placement, place, placement_fingerprint
from kubellm.controller.members import DEPLOYMENTS, HPAS, NAMESPACES, PODS, SERVICES, Member, Members
from kubellm.controller.pods import unschedulable
from kubellm.controller.runtime.events import NORMAL, WARNING, EventRecorder, EventType
from kubellm.controller.runtime.objects import split_key
from kubellm.controller.runtime.reconciler import Result

log = structlog.get_logger(__name__)

FINALIZER = "model.kubellm.io/member-cleanup"
PLACEMENT_ANNOTATION = "model.kubellm.io/placement-fingerprint"
API_VERSION = "model.kubellm.io/v1alpha1"
KIND = "LLMService"
REFS = {"Namespace": NAMESPACES, "Deployment": DEPLOYMENTS, "Service": SERVICES, "HorizontalPodAutoscaler": HPAS}
Obj = Mapping[str, Any]


@dataclass
class LLMServiceReconciler:
    llms: NamespacedLister[Any]
    clusters: ClusterScopedLister[Any]
    ops: ResourceOps[Any]
    """The LLMService verbs of KubeLLM's API (finalizer and status writes)."""
    members: Members
    recorder: EventRecorder
    settings: resources.LLMSettings = field(default_factory=resources.LLMSettings)
    requeue_pending: float = 10.0
    requeue_serving: float = 600.0
    """A Serving LLMService is looked at again this often besides the changes that enqueue it (a resync)."""
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _written: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The status last written per key."""

    async def close(self) -> None:
        await self.members.close()

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        typed = self.llms.namespace(namespace).get(name)
        if typed is None:
            self._written.pop(key, None)
            return None
        llm = as_json(typed)
        clusters = {c["metadata"]["name"]: c for c in map(as_json, self.clusters.list())}
        if llm["metadata"].get("deletionTimestamp"):
            return await self._finalize(llm, clusters)
        written = self._written.get(key)
        # every placed replica is sticky, serving or still loading: dividing again by the free GPUs of the moment
        # would move loading replicas back and forth as their own pods take GPUs
        current, _ = current_placement({"status": written} if written is not None else llm)
        fingerprint = placement_fingerprint(llm)
        stored = (llm["metadata"].get("annotations") or {}).get(PLACEMENT_ANNOTATION)
        rebalance = stored is not None and stored != fingerprint
        # replicas whose pods no node of their cluster takes are not held there (the GPUs a probe saw free were
        # taken meanwhile): they go where there is room, and wait where they are only if there is none
        held = self._held(llm, current)
        decision = place(llm, clusters.values(), held, serving=set(held), rebalance=rebalance,
                         full={c for c in current if held.get(c, 0) < current[c]})
        if held != current and decision.unschedulable:
            decision = place(llm, clusters.values(), current, serving=set(current), rebalance=rebalance)
        # the finalizer and the record of the clusters are both in place before anything is made on a member;
        # they are different subresources, written together
        recorded = {c.get("name") for c in self._status(llm).get("clusters") or []}
        await asyncio.gather(
            *([self._apply_metadata(llm, [FINALIZER], fingerprint)]
              if FINALIZER not in (llm["metadata"].get("finalizers") or []) or stored != fingerprint else []),
            *([self._record(llm, decision)] if set(decision.replicas) - recorded else []))
        views = await self._sync(llm, decision, clusters)
        previous = [c.get("name") for c in (written or llm.get("status") or {}).get("clusters") or []]
        for gone in sorted({str(n) for n in previous if n} - set(decision.replicas)):
            removed, note = await self._remove(llm, gone, clusters.get(gone))
            if not removed:
                views.append(status.ClusterView(gone, 0, False, None, [], note))
        return await self._report(llm, decision, views, current)

    # --- members --------------------------------------------------------------------------------------------

    async def _sync(self, llm: Obj, decision: Decision, clusters: Mapping[str, Obj]) -> list[status.ClusterView]:
        bounds: dict[str, tuple[int, int]] = {}
        if resources.autoscaled(llm):
            low, high = resources.autoscaling_bounds(llm)
            duplicated = ((llm["spec"].get("placement") or {}).get("replicaScheduling") or {}).get(
                "replicaSchedulingType") == "Duplicated"
            bounds = ({n: (low, high) for n in decision.replicas} if duplicated
                      else resources.hpa_bounds(low, high, decision.replicas))
        return list(await asyncio.gather(*(self._sync_one(llm, cluster, replicas, bounds.get(cluster),
                                                          clusters.get(cluster))
                                           for cluster, replicas in decision.replicas.items())))

    async def _sync_one(self, llm: Obj, cluster: str, replicas: int, bounds: tuple[int, int] | None,
                        obj: Obj | None) -> status.ClusterView:
        member, note = await self.members.usable(cluster, obj)
        if member is None:
            return status.ClusterView(cluster, replicas, False, None, [], note)
        ns, name = llm["metadata"]["namespace"], llm["metadata"]["name"]
        try:
            deployment = await self._apply(member, llm, replicas, bounds)
        except Refused as exc:
            return status.ClusterView(cluster, replicas, True, None, [], refused=str(exc))
        except errors.ClientError as exc:
            log.info("applying to a member failed", cluster=cluster, llmservice=f"{ns}/{name}", error=str(exc))
            return status.ClusterView(cluster, replicas, False, None, [], f"{cluster}: {exc}")
        return status.ClusterView(cluster, replicas, True, deployment, self._pods(member, ns, name))

    def _held(self, llm: Obj, current: Mapping[str, int]) -> dict[str, int]:
        """`current` less the replicas whose pods cannot be scheduled (as the members' caches show)."""
        ns, name = llm["metadata"]["namespace"], llm["metadata"]["name"]
        held = {}
        for cluster, replicas in current.items():
            member = self.members.get(cluster)
            stuck = unschedulable(self._pods(member, ns, name)) if member is not None else 0
            if replicas - stuck > 0:
                held[cluster] = replicas - stuck
        return held

    @staticmethod
    def _pods(member: Member, ns: str, name: str) -> list[dict[str, Any]]:
        return member.instance_objects(PODS, ns, resources.APP_NAME, name)

    async def _apply(self, member: Member, llm: Obj, replicas: int,
                     bounds: tuple[int, int] | None) -> dict[str, Any] | None:
        """The namespace first, then the Deployment, Service and HPA together; the Deployment as applied."""
        ns, name = llm["metadata"]["namespace"], llm["metadata"]["name"]
        live = member.cached(DEPLOYMENTS, ns, name)
        namespace, *desired = resources.llm_objects(llm, replicas, settings=self.settings, autoscaling_share=bounds,
                                                    include_replicas=resources.apply_replicas(llm, live))
        await applier.ensure_namespace(member, namespace, resources.FIELD_MANAGER)
        applied = await asyncio.gather(*(applier.apply_owned(member, REFS[obj["kind"]], obj, resources.FIELD_MANAGER,
                                                             lambda have: self._owns(have, llm))
                                         for obj in desired), return_exceptions=True)
        deployment = live
        for obj, result in zip(desired, applied, strict=True):  # every apply ran to its end; the first failure
            if isinstance(result, BaseException):                # is the one told
                raise result
            if obj["kind"] == "Deployment":
                deployment = result
        for stale in resources.stale_identities(llm, [namespace, *desired]):
            await self._delete(member, llm, stale, trust_cache=True)
        return deployment

    @staticmethod
    def _owns(obj: Obj, llm: Obj) -> bool:
        return ownership.owned_by(obj, llm, KIND, resources.selector_labels(llm))

    async def _delete(self, member: Member, llm: Obj, ident: resources.ObjectId, *, trust_cache: bool = False) -> None:
        await ownership.delete_owned(member, REFS[ident.kind], ident.namespace, ident.name, llm, KIND,
                                     resources.selector_labels(llm), trust_cache=trust_cache)

    async def _remove(self, llm: Obj, cluster: str, obj: Obj | None) -> tuple[bool, str]:
        """Delete the LLMService's objects on `cluster`: whether they are gone, and if not why."""
        if obj is None:
            return True, ""  # the Cluster is gone: nothing can be reached any more
        member, note = await self.members.usable(cluster, obj)
        if member is None:
            return False, f"waiting to remove the objects on {cluster}: {note}"
        try:
            for ident in resources.owned_identities(llm):
                await self._delete(member, llm, ident)
        except errors.ClientError as exc:
            return False, f"removing the objects on {cluster} failed: {exc}"
        return True, ""

    # --- deletion ---------------------------------------------------------------------------------------------

    async def _finalize(self, llm: Obj, clusters: Mapping[str, Obj]) -> Result | None:
        if FINALIZER not in (llm["metadata"].get("finalizers") or []):
            return None
        placed = {str(c.get("name")) for c in self._status(llm).get("clusters") or [] if c.get("name")}
        waiting = []
        for cluster in sorted(placed):
            removed, note = await self._remove(llm, cluster, clusters.get(cluster))
            if not removed:
                waiting.append(note)
        if waiting:
            message = "being deleted: " + "; ".join(waiting)
            old = dict(self._status(llm))
            conditions = set_condition(old.get("conditions") or [], status.READY, "False", "CleanupPending", message,
                                       rfc3339(self.now().timestamp()), int(llm["metadata"].get("generation") or 0))
            if await self._write_status(llm, {**old, "message": message, "conditions": conditions}):
                self.recorder.event(llm, WARNING, "CleanupPending", message, api_version=API_VERSION, kind=KIND)
            return Result(requeue_after=self.requeue_pending)
        await self._apply_metadata(llm, [], None)
        self.recorder.event(llm, NORMAL, "CleanedUp", f"removed from {', '.join(sorted(placed)) or 'no cluster'}",
                            api_version=API_VERSION, kind="LLMService")
        return None

    async def _apply_metadata(self, llm: Obj, finalizers: list[str], fingerprint: str | None) -> None:
        meta: dict[str, Any] = {"name": llm["metadata"]["name"], "namespace": llm["metadata"]["namespace"],
                     "finalizers": finalizers}
        if fingerprint is not None:
            meta["annotations"] = {PLACEMENT_ANNOTATION: fingerprint}
        with contextlib.suppress(errors.NotFound):
            await self.ops.apply({"apiVersion": API_VERSION, "kind": "LLMService", "metadata": meta},
                                 field_manager=resources.FIELD_MANAGER, force=True)

    # --- status -----------------------------------------------------------------------------------------------

    async def _report(self, llm: Obj, decision: Decision, views: list[status.ClusterView],
                      current: Mapping[str, int]) -> Result:
        entries = [status.cluster_status(v) for v in views]
        stamp = rfc3339(self.now().timestamp())
        new = status.overall(llm, decision, entries, resources.llm_endpoint(llm), resources.status_selector(llm),
                             stamp)
        old = self._status(llm)
        if await self._write_status(llm, new) is None:
            return Result()
        if new != {k: old.get(k) for k in new}:
            self._tell(llm, old, new, decision, current)
        return Result(requeue_after=self.requeue_serving if new["phase"] == status.SERVING else self.requeue_pending)

    def _status(self, llm: Obj) -> Obj:
        """The status as last written (the lister may not show our last write yet), else as read."""
        return self._written.get(_key(llm)) or llm.get("status") or {}

    async def _write_status(self, llm: Obj, new: dict[str, Any]) -> bool | None:
        """Apply `new` to /status unless it is what was last written or read: whether it was written, None when
        the LLMService is gone."""
        key = _key(llm)
        if new in ({k: self._status(llm).get(k) for k in new}, {k: (llm.get("status") or {}).get(k) for k in new}):
            return False
        try:
            await self.ops.apply({"apiVersion": API_VERSION, "kind": KIND,
                                  "metadata": {"name": llm["metadata"]["name"],
                                               "namespace": llm["metadata"]["namespace"]},
                                  "status": new}, field_manager=resources.FIELD_MANAGER, force=True,
                                 subresource="status")
        except errors.NotFound:
            self._written.pop(key, None)
            return None
        self._written[key] = new
        return True

    async def _record(self, llm: Obj, decision: Decision) -> None:
        """List the clusters about to get objects in status.clusters first: what is recorded is found again
        by a later reconcile (or another manager) however this one ends."""
        old = dict(self._status(llm))
        entries = list(old.get("clusters") or [])
        known = {e.get("name") for e in entries}
        entries += [{"name": c, "replicas": r, "readyReplicas": 0, "phase": status.PENDING,
                     "message": "creating the objects"} for c, r in decision.replicas.items() if c not in known]
        await self._write_status(llm, {**old, "clusters": sorted(entries, key=lambda e: str(e.get("name")))})

    def _tell(self, llm: Obj, old: Obj, new: Obj, decision: Decision, current: Mapping[str, int]) -> None:
        def event(kind: EventType, reason: str, message: str) -> None:
            self.recorder.event(llm, kind, reason, message, api_version=API_VERSION, kind="LLMService")

        if dict(current) != decision.replicas and decision.replicas:
            lost = sorted(set(current) - set(decision.replicas))
            if lost:
                why = {e.cluster: e.message for e in decision.excluded}
                event(WARNING, "Failover", "; ".join(f"{c}: {why.get(c, 'no longer chosen')}" for c in lost)
                      + f"; replicas now on {_describe(decision.replicas)}")
            else:
                event(NORMAL, "Scheduled", f"replicas on {_describe(decision.replicas)}")
        if new["phase"] != old.get("phase"):
            if new["phase"] == status.FAILED:
                event(WARNING, "Failed", new["message"])
            elif new["phase"] == status.SERVING:
                event(NORMAL, "Serving", new["message"])


def _key(llm: Obj) -> str:
    return f"{llm['metadata']['namespace']}/{llm['metadata']['name']}"


def _describe(replicas: Mapping[str, int]) -> str:
    return ", ".join(f"{n} ({r})" for n, r in sorted(replicas.items()))
