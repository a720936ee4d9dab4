"""An LLMService's status from what its member clusters run (pure functions of the placement decision and the
members' Deployments and pods as their informers saw them).

Per cluster (`status.clusters[]`):
- Failed: a pod cannot pull its image (ErrImagePull, ImagePullBackOff, InvalidImageName) or keeps crashing
  (CrashLoopBackOff): the message names the cluster and the reason;
- Pending: not reachable yet, no Deployment yet, or pods the scheduler cannot place (its message);
- Loading: pods started, none ready; Scaling: some ready, not as many as wanted (or more);
- Serving: as many ready as the Deployment wants.
Overall: Failed when nothing can be placed (the placement's message) or a cluster failed; Serving when every
placed replica is ready and every wanted replica placed; else Scaling when some are ready, Loading when pods
are starting, Pending otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubellm.controller.conditions import set_condition
from kubellm.controller.llmservice.placement import Decision
from kubellm.controller.pods import pod_problem as pods_problem

Obj = Mapping[str, Any]
PENDING, LOADING, SERVING, SCALING, FAILED, REMOVING = "Pending", "Loading", "Serving", "Scaling", "Failed", "Removing"
READY, PLACED = "Ready", "Placed"


@dataclass(frozen=True)
class ClusterView:
    """What the controller knows of one placed cluster."""

    name: str
    placed: int
    connected: bool
    """The member's caches are synced (its objects can be read)."""
    deployment: Obj | None
    pods: Sequence[Obj]
    note: str = ""
    """Why it is not connected (for the message)."""
    refused: str = ""
    """Why the member will not take the objects (a namesake of another owner, an invalid object): Failed."""


def _get(obj: Obj | None, *path: str) -> Any:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def pod_problem(pods: Sequence[Obj]) -> tuple[str, str] | None:
    return pods_problem(pods, "the vLLM container")


def cluster_status(view: ClusterView) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": view.name, "replicas": view.placed, "readyReplicas": 0}
    if view.refused:
        return {**entry, "phase": FAILED, "message": f"{view.refused} on {view.name}"}
    if view.placed == 0:
        return {**entry, "phase": REMOVING, "message": view.note or "removing the objects of this cluster"}
    if not view.connected:
        return {**entry, "phase": PENDING, "message": view.note or "waiting for the member cluster"}
    dep = view.deployment
    if dep is None:
        return {**entry, "phase": PENDING, "message": "creating the Deployment"}
    wanted = _int(_get(dep, "spec", "replicas")) if _get(dep, "spec", "replicas") is not None else view.placed
    ready = _int(_get(dep, "status", "readyReplicas"))
    entry.update(replicas=wanted, readyReplicas=ready)
    problem = pod_problem(view.pods)
    if problem is not None and problem[0] == FAILED:
        return {**entry, "phase": FAILED, "message": f"{problem[1]} on {view.name}"}
    current = _int(_get(dep, "status", "observedGeneration")) >= _int(_get(dep, "metadata", "generation"))
    if ready == wanted and wanted > 0 and current and _int(_get(dep, "status", "replicas")) == wanted:
        return {**entry, "phase": SERVING, "message": f"{ready}/{wanted} replicas ready"}
    if problem is not None:
        return {**entry, "phase": PENDING, "message": f"{problem[1]} on {view.name}"}
    if ready > 0:
        return {**entry, "phase": SCALING, "message": f"{ready}/{wanted} replicas ready"}
    if view.pods:
        return {**entry, "phase": LOADING, "message": f"0/{wanted} replicas ready: the model is loading"}
    return {**entry, "phase": PENDING, "message": "waiting for pods"}


def overall(llm: Obj, decision: Decision, entries: list[dict[str, Any]], endpoint: str, selector: str,
            stamp: str) -> dict[str, Any]:
    """The status to write: phase, message, replicas, endpoint, selector, clusters, conditions."""
    generation = _int(_get(llm, "metadata", "generation"))
    placed = [e for e in entries if e["phase"] != REMOVING]
    wanted = sum(e["replicas"] for e in placed)
    ready = sum(e["readyReplicas"] for e in placed)
    failed = [e for e in placed if e["phase"] == FAILED]
    if not placed and decision.unschedulable:
        phase, message = FAILED, decision.message
    elif failed:
        phase, message = FAILED, "; ".join(e["message"] for e in failed)
    elif placed and all(e["phase"] == SERVING for e in placed) and not decision.unschedulable:
        phase, message = SERVING, f"{ready}/{wanted} replicas ready on {', '.join(e['name'] for e in placed)}"
    else:
        if any(e["phase"] == SCALING for e in placed) or (ready and ready != wanted):
            phase = SCALING
        elif any(e["phase"] in (LOADING, SERVING) for e in placed):
            phase = LOADING
        else:
            phase = PENDING
        waiting = [f"{e['name']}: {e['message']}" for e in placed if e["phase"] != SERVING]
        if decision.unschedulable:
            waiting.append(decision.message)
        message = "; ".join(waiting) or "waiting for a placement"
    conditions = list(_get(llm, "status", "conditions") or [])
    if decision.total:
        reason = "Placed" if not decision.unschedulable else "PartiallyPlaced"
        conditions = set_condition(conditions, PLACED, "True" if not decision.unschedulable else "False", reason,
                                   decision.message, stamp, generation)
    else:
        conditions = set_condition(conditions, PLACED, "False", decision.reason, decision.message or
                                   "no replicas to place", stamp, generation)
    conditions = set_condition(conditions, READY, "True" if phase == SERVING else "False", phase, message, stamp,
                               generation)
    return {
        "phase": phase, "message": message, "endpoint": endpoint if ready else "", "replicas": wanted,
        "readyReplicas": ready, "selector": selector, "observedGeneration": generation,
        "clusters": sorted(entries, key=lambda e: e["name"]), "conditions": conditions,
    }
