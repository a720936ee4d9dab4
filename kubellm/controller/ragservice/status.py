"""A RAGService's status from its LLMService and what its member clusters run (pure functions).

Where it runs: in the clusters where its LLMService has replicas (`target_clusters`: `status.clusters` entries
with replicas, not `Removing`); the chat app there calls that cluster's LLMService Service.

Whether the LLMService can answer (`llm_readiness`, condition `LLMServiceReady`): it exists, is not being
deleted, and is `Serving`, or `Scaling` with ready replicas (it answers while it scales).

Per cluster (`cluster_phase`):
- Failed: the member refused an object (invalid, forbidden, or the name taken by an object that is not this
  RAGService's), a pod cannot pull its image or keeps crashing, or the vector store's volume is lost;
- Pending: the member cannot be read yet, no Deployment yet, no pods yet, or pods the scheduler cannot place
  (with the claim's state when it is not bound);
- Indexing: pods started, not all ready (the app indexes its sources before it is ready);
- Serving: as many ready as the Deployment wants, on its latest spec.

Overall (`overall`): Failed when a cluster failed; else Pending while the LLMService cannot answer (`waiting for
LLMService <name>: ...`), runs nowhere, or `spec.replicas` is 0; Serving when every cluster is; Indexing when
pods are starting somewhere; Pending otherwise. Conditions `Ready` (True when Serving, the phase as reason) and
`LLMServiceReady`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubellm.controller.conditions import set_condition
from kubellm.controller.pods import pod_problem as pods_problem

Obj = Mapping[str, Any]
PENDING, INDEXING, SERVING, FAILED = "Pending", "Indexing", "Serving", "Failed"
READY, LLM_READY = "Ready", "LLMServiceReady"
CLEANUP_PENDING = "CleanupPending"
LLM_SERVING, LLM_SCALING, LLM_REMOVING = "Serving", "Scaling", "Removing"


def _get(obj: Obj | None, *path: str) -> Any:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- the LLMService ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LLMReadiness:
    """Whether the referenced LLMService can answer, and if not why (the `LLMServiceReady` condition)."""

    name: str
    ready: bool
    reason: str
    message: str

    @property
    def waiting(self) -> str:
        """The RAGService's message while it waits for the LLMService."""
        return f"waiting for LLMService {self.name}: {self.message}"


def llm_readiness(name: str, llm: Obj | None) -> LLMReadiness:
    if not name:
        return LLMReadiness(name, False, "LLMServiceNotFound", "spec.llmServiceRef.name is empty")
    if llm is None:
        return LLMReadiness(name, False, "LLMServiceNotFound", "it does not exist in this namespace")
    if _get(llm, "metadata", "deletionTimestamp"):
        return LLMReadiness(name, False, "LLMServiceDeleting", "it is being deleted")
    st = _get(llm, "status") or {}
    phase, message = str(st.get("phase") or ""), str(st.get("message") or "")
    ready = _int(st.get("readyReplicas"))
    if phase == LLM_SERVING or (phase == LLM_SCALING and ready > 0):
        where = str(st.get("endpoint") or "")
        return LLMReadiness(name, True, f"LLMService{phase}",
                            f"LLMService {name} is {phase}" + (f" at {where}" if where else "")
                            + (f": {message}" if message else ""))
    if not phase:
        return LLMReadiness(name, False, "LLMServiceNotServing", "it has no status yet")
    return LLMReadiness(name, False, "LLMServiceNotServing", f"{phase}" + (f": {message}" if message else ""))


def target_clusters(llm: Obj | None) -> list[str]:
    """The clusters where the LLMService has replicas (not those it is leaving), sorted."""
    if llm is None:
        return []
    out = set()
    for entry in _get(llm, "status", "clusters") or []:
        if (isinstance(entry, Mapping) and entry.get("name") and _int(entry.get("replicas")) > 0
                and entry.get("phase") != LLM_REMOVING):
            out.add(str(entry["name"]))
    return sorted(out)


# --- one cluster ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberView:
    """What the controller knows of the RAGService's objects in one cluster."""

    name: str
    connected: bool
    """The member's caches are synced (its objects can be read)."""
    deployment: Obj | None = None
    pods: Sequence[Obj] = ()
    claim: Obj | None = None
    """The vector store's PersistentVolumeClaim (None: none wanted, or not created yet)."""
    note: str = ""
    """Why it is not connected, or a transient failure to apply (for the message)."""
    refused: str = ""
    """The member refused an object (a definitive failure, until the spec or the member changes)."""


@dataclass(frozen=True)
class ClusterPhase:
    name: str
    phase: str
    message: str
    wanted: int = 0
    ready: int = 0


def pod_problem(pods: Sequence[Obj]) -> tuple[str, str] | None:
    """As the LLMService's, naming the chat app."""
    return pods_problem(pods, "the chat app")


def _claim_note(claim: Obj | None) -> str:
    phase = _get(claim, "status", "phase")
    if claim is None or phase in (None, "Bound"):
        return ""
    return f" (the vector store's claim {_get(claim, 'metadata', 'name')} is {phase}: not bound to a volume)"


def cluster_phase(view: MemberView) -> ClusterPhase:
    name = view.name
    if view.refused:
        return ClusterPhase(name, FAILED, view.refused)
    if not view.connected:
        return ClusterPhase(name, PENDING, view.note or "waiting for the member cluster")
    dep = view.deployment
    if dep is None:
        return ClusterPhase(name, PENDING, view.note or "creating the Deployment")
    wanted = _int(_get(dep, "spec", "replicas")) if _get(dep, "spec", "replicas") is not None else 1
    ready = _int(_get(dep, "status", "readyReplicas"))
    if _get(view.claim, "status", "phase") == "Lost":
        return ClusterPhase(name, FAILED, f"the volume of the vector store's claim "
                                          f"{_get(view.claim, 'metadata', 'name')} is lost", wanted, ready)
    problem = pod_problem(view.pods)
    if problem is not None and problem[0] == FAILED:
        return ClusterPhase(name, FAILED, problem[1], wanted, ready)
    current = _int(_get(dep, "status", "observedGeneration")) >= _int(_get(dep, "metadata", "generation"))
    if ready == wanted and wanted > 0 and current and _int(_get(dep, "status", "replicas")) == wanted:
        return ClusterPhase(name, SERVING, f"{ready}/{wanted} replicas ready", wanted, ready)
    if problem is not None:
        return ClusterPhase(name, PENDING, problem[1] + _claim_note(view.claim), wanted, ready)
    if view.note:
        return ClusterPhase(name, PENDING, view.note, wanted, ready)
    if [p for p in view.pods if not _get(p, "metadata", "deletionTimestamp")]:
        return ClusterPhase(name, INDEXING, f"{ready}/{wanted} replicas ready: the chat app is starting and "
                                            "indexing its sources", wanted, ready)
    return ClusterPhase(name, PENDING, "waiting for pods" + _claim_note(view.claim), wanted, ready)


# --- the RAGService ---------------------------------------------------------------------------------------------


def _conditions(rag: Obj, base: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    conditions = base if base is not None else _get(rag, "status", "conditions") or []
    return [dict(c) for c in conditions if isinstance(c, Mapping)]


def overall(rag: Obj, llm: LLMReadiness, clusters: Sequence[ClusterPhase], endpoint: str, stamp: str, *,
            leftovers: Sequence[str] = (), base_conditions: Sequence[Mapping[str, Any]] | None = None
            ) -> dict[str, Any]:
    """The status to write: phase, message, endpoint, readyReplicas, observedGeneration and conditions.

    `clusters`: the phase in every cluster where the app should run; `leftovers`: notes on clusters it left
    whose objects could not be removed yet; `base_conditions`: the conditions last written (default: the
    object's), whose transition times are kept."""
    generation = _int(_get(rag, "metadata", "generation"))
    replicas = _get(rag, "spec", "replicas")
    wanted_each = 1 if replicas is None else _int(replicas)
    ready = sum(c.ready for c in clusters)
    failed = [c for c in clusters if c.phase == FAILED]
    if failed:
        phase, message = FAILED, "; ".join(f"{c.name}: {c.message}" for c in failed)
    elif not llm.ready:
        phase, message = PENDING, llm.waiting
    elif not clusters:
        phase, message = PENDING, f"LLMService {llm.name} runs in no member cluster"
    elif wanted_each == 0:
        phase, message = PENDING, "spec.replicas is 0: the chat app is scaled to zero"
    elif all(c.phase == SERVING for c in clusters):
        phase = SERVING
        wanted = sum(c.wanted for c in clusters)
        message = f"{ready}/{wanted} replicas ready on {', '.join(c.name for c in clusters)}"
    else:
        phase = INDEXING if any(c.phase in (INDEXING, SERVING) for c in clusters) else PENDING
        message = "; ".join(f"{c.name}: {c.message}" for c in clusters if c.phase != SERVING)
    if leftovers:
        message = "; ".join([message, *leftovers])
    conditions = set_condition(_conditions(rag, base_conditions), LLM_READY, "True" if llm.ready else "False",
                               llm.reason, llm.message if llm.ready else llm.waiting, stamp, generation)
    conditions = set_condition(conditions, READY, "True" if phase == SERVING else "False", phase, message, stamp,
                               generation)
    return {"phase": phase, "message": message, "endpoint": endpoint if ready else "", "readyReplicas": ready,
            "observedGeneration": generation, "conditions": conditions}


def cleanup_pending(rag: Obj, waiting: Sequence[str], stamp: str, *,
                    base_conditions: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The status of a deleted RAGService whose objects cannot all be removed yet: Pending, `Ready` False with
    reason `CleanupPending` and what it waits for."""
    generation = _int(_get(rag, "metadata", "generation"))
    message = "being deleted: " + "; ".join(waiting)
    conditions = set_condition(_conditions(rag, base_conditions), READY, "False", CLEANUP_PENDING, message, stamp,
                               generation)
    return {"phase": PENDING, "message": message, "endpoint": "", "readyReplicas": 0,
            "observedGeneration": generation, "conditions": conditions}
