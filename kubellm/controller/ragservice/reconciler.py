"""The RAGService controller's reconcile: run the chat app next to the LLMService it references, remove it
where that LLMService no longer runs, and report.

1. A deleted RAGService: its objects are deleted from every cluster it recorded; the finalizer goes once all
   deletions are accepted. An unreachable member keeps the finalizer, with the reason in the `Ready` condition
   (`CleanupPending`) and a Warning Event; a deleted Cluster counts as cleaned up (nothing can reach it any more).
2. Where: the clusters where the LLMService has replicas (`status.target_clusters`). While the LLMService is
   missing, being deleted or placed nowhere, the app stays where it runs (its vector store is not thrown away
   because the LLMService is re-created) and nothing new is created. The app starts as soon as the LLMService
   is placed (it indexes its sources while the model loads); the RAGService is Pending until the LLMService
   can answer.
3. The clusters that may hold objects are recorded *before* anything is created there, in the annotation
   `model.kubellm.io/member-clusters` (a RAGService's status has no per-cluster list), together with the
   finalizer, both by server-side apply under the controller's field manager; a cluster leaves the record only
   once its objects are deleted. So no object is lost track of, whatever crashes in between.
4. On each cluster, the Namespace, the vector store's claim, the Deployment (`VLLM_URL` is the LLMService's
   in-cluster OpenAI base URL; `spec.replicas` replicas in each cluster) and the Service (`resources.rag_objects`)
   are applied when the member's cached copy differs (hand edits are put back). An object of the same name that
   is not this RAGService's is left alone (Failed, naming its owner). Objects no longer wanted (the claim once
   the store has an endpoint) are deleted.
5. The status (`status.overall`) is applied to `/status` when it changed; Events tell what a user should see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
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
from kubellm.controller.llmservice.placement import as_json
from kubellm.controller.llmservice.resources import (
    FIELD_MANAGER,
    ObjectId,
    name_of,
    namespace_of,
)
from kubellm.controller.members import DEPLOYMENTS, NAMESPACES, PODS, PVCS, SERVICES, Member, Members
from kubellm.controller.ragservice import resources, status
from kubellm.controller.runtime.events import NORMAL, WARNING, EventRecorder, EventType
from kubellm.controller.runtime.objects import split_key
from kubellm.controller.runtime.reconciler import Result

log = structlog.get_logger(__name__)

FINALIZER = "model.kubellm.io/member-cleanup"
CLUSTERS_ANNOTATION = "model.kubellm.io/member-clusters"
"""The member clusters that may hold the RAGService's objects (comma-separated, sorted): the cleanup's record."""
API_VERSION = "model.kubellm.io/v1alpha1"
KIND = "RAGService"
REFS = {"Namespace": NAMESPACES, "Deployment": DEPLOYMENTS, "Service": SERVICES, "PersistentVolumeClaim": PVCS}
"""What a member answers to an object it will not take as it is (retrying the same object cannot help)."""
Obj = Mapping[str, Any]


def recorded_clusters(rag: Obj) -> list[str]:
    """The clusters in the RAGService's record annotation."""
    value = ((rag.get("metadata") or {}).get("annotations") or {}).get(CLUSTERS_ANNOTATION) or ""
    return sorted({c.strip() for c in str(value).split(",") if c.strip()})


def owned_by(obj: Obj, rag: Obj) -> bool:
    """Whether a member object is this RAGService's (see `ownership.owned_by`)."""
    return ownership.owned_by(obj, rag, KIND, resources.selector_labels(rag))


owner_of = ownership.owner_of


@dataclass
class RAGServiceReconciler:
    rags: NamespacedLister[Any]
    llms: NamespacedLister[Any]
    clusters: ClusterScopedLister[Any]
    ops: ResourceOps[Any]
    """The RAGService verbs of KubeLLM's API (finalizer, record and status writes)."""
    members: Members
    recorder: EventRecorder
    settings: resources.RAGSettings = field(default_factory=resources.RAGSettings)
    requeue_pending: float = 10.0
    requeue_serving: float = 60.0
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _written: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The status last written per key (the lister may not show it yet)."""
    _recorded: dict[str, list[str]] = field(default_factory=dict)
    """The record annotation last written per key."""

    async def close(self) -> None:
        await self.members.close()

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        typed = self.rags.namespace(namespace).get(name)
        if typed is None:
            self._written.pop(key, None)
            self._recorded.pop(key, None)
            return None
        rag = as_json(typed)
        clusters = {c["metadata"]["name"]: c for c in map(as_json, self.clusters.list())}
        recorded = self._recorded.get(key)
        if recorded is None:
            recorded = recorded_clusters(rag)
        if rag["metadata"].get("deletionTimestamp"):
            return await self._finalize(key, rag, recorded, clusters)

        llm_name = resources.llm_name(rag)
        typed_llm = self.llms.namespace(namespace).get(llm_name) if llm_name else None
        llm = as_json(typed_llm) if typed_llm is not None else None
        readiness = status.llm_readiness(llm_name, llm)
        placed = status.target_clusters(llm) if llm is not None and not llm["metadata"].get("deletionTimestamp") \
            else []
        # placed nowhere (the LLMService is missing, being deleted, or not placed yet): keep what runs
        targets = placed or recorded
        record = sorted(set(recorded) | set(targets))
        if (FINALIZER not in (rag["metadata"].get("finalizers") or []) or record != recorded) and \
                not await self._apply_metadata(key, rag, [FINALIZER], record):
            return None  # gone meanwhile: nothing may be created for it
        for added in sorted(set(targets) - set(recorded)):
            self._event(rag, NORMAL, "Deployed", f"running the chat app on {added}, next to LLMService {llm_name}")

        views = [await self._sync(rag, cluster, clusters.get(cluster)) for cluster in targets]

        leftovers: list[str] = []
        remaining = list(targets)
        for gone in sorted(set(record) - set(targets)):
            removed, note = await self._remove(rag, gone, clusters.get(gone))
            if removed:
                self._event(rag, NORMAL, "Removed", f"removed the chat app from {gone}: LLMService {llm_name} "
                                                    "no longer runs there")
            else:
                remaining.append(gone)
                leftovers.append(note)
        if sorted(remaining) != record:
            await self._apply_metadata(key, rag, [FINALIZER], sorted(remaining))

        phases = [status.cluster_phase(v) for v in views]
        written = self._written.get(key)
        new = status.overall(rag, readiness, phases, resources.rag_endpoint(rag), self._stamp(), leftovers=leftovers,
                             base_conditions=written.get("conditions") if written is not None else None)
        await self._report(key, rag, new)
        return Result(requeue_after=self.requeue_serving if new["phase"] == status.SERVING else self.requeue_pending)

    # --- members --------------------------------------------------------------------------------------------

    async def _sync(self, rag: Obj, cluster: str, obj: Obj | None) -> status.MemberView:
        member, note = await self.members.usable(cluster, obj)
        if member is None:
            return status.MemberView(cluster, False, note=note)
        ns = namespace_of(rag)
        try:
            await self._apply(member, rag)
        except Refused as exc:
            return status.MemberView(cluster, True, refused=str(exc))
        except errors.ClientError as exc:
            log.info("applying to a member failed", cluster=cluster, ragservice=f"{ns}/{name_of(rag)}",
                     error=str(exc))
            note = f"applying the objects failed: {exc}"
        else:
            note = ""
        deployment = member.cached(DEPLOYMENTS, ns, resources.app_name(rag))
        claim = member.cached(PVCS, ns, resources.claim_name(rag)) if resources.provisioned(rag) else None
        pods = member.instance_objects(PODS, ns, resources.APP_NAME, name_of(rag))
        return status.MemberView(cluster, True, deployment if deployment is not None and owned_by(deployment, rag)
                                 else None, pods, claim, note=note)

    async def _apply(self, member: Member, rag: Obj) -> None:
        """Apply what differs from the member's cache (`applier`): the namespace first, then the claim, the
        Deployment and the Service together; `Refused` when the member will not take an object."""
        namespace, *desired = resources.rag_objects(rag, settings=self.settings)
        await applier.ensure_namespace(member, namespace, FIELD_MANAGER)
        results = await asyncio.gather(*(applier.apply_owned(member, REFS[obj["kind"]], obj, FIELD_MANAGER,
                                                             lambda have: owned_by(have, rag))
                                         for obj in desired), return_exceptions=True)
        for result in results:  # every apply ran to its end; the first failure is the one told
            if isinstance(result, BaseException):
                raise result
        for stale in resources.stale_identities(rag, [namespace, *desired]):
            await self._delete(member, rag, stale, trust_cache=True)

    async def _delete(self, member: Member, rag: Obj, ident: ObjectId, *, trust_cache: bool = False) -> None:
        """Delete one of the RAGService's objects, if it is there and is its own (never another's of that name).
        Not in the synced cache, it is looked up on the member, unless `trust_cache` (an object no longer wanted
        was cached long ago; one just created may not be yet, which matters when cleaning up)."""
        await ownership.delete_owned(member, REFS[ident.kind], ident.namespace, ident.name, rag, KIND,
                                     resources.selector_labels(rag), trust_cache=trust_cache)

    async def _remove(self, rag: Obj, cluster: str, obj: Obj | None) -> tuple[bool, str]:
        """Delete the RAGService's objects on `cluster`: whether that is done, and if not why."""
        if obj is None:
            return True, ""  # the Cluster is gone: nothing can reach its objects any more
        member, note = await self.members.usable(cluster, obj, synced=False)
        if member is None:
            return False, f"waiting to remove the objects on {cluster}: {note}"
        try:
            for ident in resources.owned_identities(rag):
                await self._delete(member, rag, ident)
        except errors.ClientError as exc:
            return False, f"waiting to remove the objects on {cluster}: {exc}"
        return True, ""

    # --- deletion ---------------------------------------------------------------------------------------------

    async def _finalize(self, key: str, rag: Obj, recorded: Iterable[str], clusters: Mapping[str, Obj]
                        ) -> Result | None:
        if FINALIZER not in (rag["metadata"].get("finalizers") or []):
            return None
        recorded = sorted(recorded)
        waiting, remaining = [], []
        for cluster in recorded:
            removed, note = await self._remove(rag, cluster, clusters.get(cluster))
            if not removed:
                waiting.append(note)
                remaining.append(cluster)
        if waiting:
            if remaining != recorded:
                await self._apply_metadata(key, rag, [FINALIZER], remaining)
            written = self._written.get(key)
            new = status.cleanup_pending(rag, waiting, self._stamp(),
                                         base_conditions=written.get("conditions") if written is not None else None)
            await self._report(key, rag, new)
            self._event(rag, WARNING, status.CLEANUP_PENDING, new["message"])
            return Result(requeue_after=self.requeue_pending)
        await self._apply_metadata(key, rag, [], [])
        self._event(rag, NORMAL, "CleanedUp", f"removed the chat app from {', '.join(recorded) or 'no cluster'}")
        return None

    async def _apply_metadata(self, key: str, rag: Obj, finalizers: list[str], record: list[str]) -> bool:
        """The finalizer and the record of clusters, under the controller's field manager (an empty record drops
        the annotation); False when the RAGService is gone."""
        meta: dict[str, Any] = {"name": rag["metadata"]["name"], "namespace": rag["metadata"]["namespace"],
                                "finalizers": finalizers}
        if record:
            meta["annotations"] = {CLUSTERS_ANNOTATION: ",".join(record)}
        try:
            await self.ops.apply({"apiVersion": API_VERSION, "kind": KIND, "metadata": meta},
                                 field_manager=FIELD_MANAGER, force=True)
        except errors.NotFound:
            self._recorded.pop(key, None)
            return False
        self._recorded[key] = list(record)
        return True

    # --- status -----------------------------------------------------------------------------------------------

    def _stamp(self) -> str:
        return rfc3339(self.now().timestamp())

    async def _report(self, key: str, rag: Obj, new: dict[str, Any]) -> None:
        """Write `new` to /status unless it is what was last written (or what the object has), then tell."""
        stored = rag.get("status") or {}
        old = self._written.get(key) or stored
        if new == {k: old.get(k) for k in new} or new == {k: stored.get(k) for k in new}:
            return
        try:
            await self.ops.apply({"apiVersion": API_VERSION, "kind": KIND,
                                  "metadata": {"name": rag["metadata"]["name"],
                                               "namespace": rag["metadata"]["namespace"]},
                                  "status": new}, field_manager=FIELD_MANAGER, force=True, subresource="status")
        except errors.NotFound:
            self._written.pop(key, None)
            return
        self._written[key] = new
        self._tell(rag, old, new)

    def _tell(self, rag: Obj, old: Obj, new: Obj) -> None:
        def condition(st: Obj, kind: str) -> Obj:
            return next((c for c in st.get("conditions") or [] if c.get("type") == kind), {})

        waited, waits = condition(old, status.LLM_READY), condition(new, status.LLM_READY)
        if waits.get("status") == "False" and (waited.get("status") != "False"
                                               or waited.get("reason") != waits.get("reason")):
            self._event(rag, NORMAL, "WaitingForLLMService", str(waits.get("message") or ""))
        if new["phase"] != old.get("phase"):
            if new["phase"] == status.FAILED:
                self._event(rag, WARNING, "Failed", new["message"])
            elif new["phase"] == status.SERVING:
                self._event(rag, NORMAL, "Serving", f"{new['message']}; the chat app is at {new['endpoint']}")

    def _event(self, rag: Obj, kind: EventType, reason: str, message: str) -> None:
        self.recorder.event(rag, kind, reason, message, api_version=API_VERSION, kind=KIND)
