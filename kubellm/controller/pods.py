"""What a member's pods say about a workload a controller runs there (shared by the LLMService and RAGService
controllers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FAILED, PENDING = "Failed", "Pending"
IMAGE_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CRASHING = ("CrashLoopBackOff", "CreateContainerConfigError", "RunContainerError")


def _get(obj: Any, *path: str) -> Any:
    node = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def pod_problem(pods: Sequence[Mapping[str, Any]], app: str = "the container") -> tuple[str, str] | None:
    """(phase, message) for the first pod (by name) that cannot run, pods being deleted aside: Failed when its
    image cannot be pulled or `app` keeps failing, Pending when the scheduler cannot place it; None when every
    pod can run."""
    unschedulable = None
    for pod in sorted(pods, key=lambda p: str(_get(p, "metadata", "name"))):
        if _get(pod, "metadata", "deletionTimestamp"):
            continue
        for status in _get(pod, "status", "containerStatuses") or []:
            waiting = _get(status, "state", "waiting") or {}
            reason = waiting.get("reason") if isinstance(waiting, Mapping) else None
            if reason in IMAGE_FAILURES:
                detail = waiting.get("message") or _get(status, "image") or ""
                return FAILED, f"image pull failed: {reason}" + (f" ({detail})" if detail else "")
            if reason in CRASHING:
                return FAILED, f"{app} cannot run: {reason}: {waiting.get('message') or ''}".rstrip(": ")
        for cond in _get(pod, "status", "conditions") or []:
            if (isinstance(cond, Mapping) and cond.get("type") == "PodScheduled" and cond.get("status") == "False"
                    and unschedulable is None):
                unschedulable = (PENDING, f"pods cannot be scheduled: {cond.get('message') or cond.get('reason')}")
    return unschedulable


def unschedulable(pods: Sequence[Mapping[str, Any]]) -> int:
    """How many pods (being deleted aside) the scheduler found no node for."""
    return sum(1 for pod in pods if not _get(pod, "metadata", "deletionTimestamp")
               and any(isinstance(c, Mapping) and c.get("type") == "PodScheduled" and c.get("status") == "False"
                       and c.get("reason") == "Unschedulable" for c in _get(pod, "status", "conditions") or []))
