"""What a kubelet would report for a pod on a simulated node, as a pure function of the pod, the time and
the simulator's settings (so a restarted simulator carries on from the stored status).

A pod becomes Running at once (startTime, containers running, a pod IP), then Ready
(`ContainersReady`, `Ready`) `ready_delay` seconds after its start: the model loads. A readiness probe's
`initialDelaySeconds` (times `probe_delay_scale`) lengthens that delay; containers never run. A pod whose
image matches the failure pattern stays Pending with `ErrImagePull`, then `ImagePullBackOff`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubellm.nodesim import clock
from kubellm.nodesim.options import READY_DELAY_ANNOTATION

OWN_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Timing:
    ready_delay: float = 2.0
    probe_delay_scale: float = 1.0
    image_backoff: float = 2.0
    failing_image: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Desired:
    """The status to write (None: the stored one is right) and when to look at the pod again."""

    status: dict[str, Any] | None
    recheck_at: datetime | None


def ready_delay(pod: dict[str, Any], timing: Timing) -> float:
    """Seconds from start to Ready: the annotation, else the larger of the setting and the probes' delay."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(READY_DELAY_ANNOTATION)
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    probes = [int(((c.get("readinessProbe") or {}).get("initialDelaySeconds")) or 0)
              for c in (pod.get("spec") or {}).get("containers") or []]
    return max([timing.ready_delay, *(p * timing.probe_delay_scale for p in probes)])


def container_id(pod_uid: str, name: str) -> str:
    return "containerd://" + hashlib.sha256(f"{pod_uid}/{name}".encode()).hexdigest()


def image_id(image: str) -> str:
    return f"{image.split('@')[0]}@sha256:" + hashlib.sha256(image.encode()).hexdigest()


def _condition(old: dict[str, dict[str, Any]], type_: str, ok: bool, at: datetime, reason: str = "",
               message: str = "") -> dict[str, Any]:
    status = "True" if ok else "False"
    prev = old.get(type_)
    since = prev.get("lastTransitionTime") if prev and prev.get("status") == status else None
    c: dict[str, Any] = {"type": type_, "status": status, "lastProbeTime": None,
                         "lastTransitionTime": since or clock.rfc3339(at)}
    if not ok and reason:
        c["reason"], c["message"] = reason, message
    return c


def desired(pod: dict[str, Any], pod_ip: str, host_ip: str, at: datetime, timing: Timing) -> Desired:
    """The status a kubelet would write for `pod` at `at`."""
    spec = pod.get("spec") or {}
    cur = pod.get("status") or {}
    if cur.get("phase") in TERMINAL or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return Desired(None, None)
    uid = (pod.get("metadata") or {}).get("uid", "")
    started = clock.parse(cur.get("startTime")) or at
    start_text = cur.get("startTime") or clock.rfc3339(at)
    containers = spec.get("containers") or []
    failing = {c["name"] for c in containers
               if timing.failing_image is not None and timing.failing_image.search(c.get("image", ""))}
    ready_at = started + timedelta(seconds=ready_delay(pod, timing))
    backoff_at = started + timedelta(seconds=timing.image_backoff)
    ready = not failing and at >= ready_at
    old_statuses = {s.get("name"): s for s in cur.get("containerStatuses") or []}

    statuses = []
    for c in containers:
        name, image = c["name"], c.get("image", "")
        s: dict[str, Any] = {"name": name, "image": image, "restartCount": 0, "ready": ready and name not in failing}
        if name in failing:
            reason = "ErrImagePull" if at < backoff_at else "ImagePullBackOff"
            message = (f'failed to pull and unpack image "{image}": not found (kubellm-nodesim failure pattern)'
                       if reason == "ErrImagePull" else f'Back-off pulling image "{image}"')
            s.update(imageID="", started=False, state={"waiting": {"reason": reason, "message": message}})
        else:
            running_since = ((old_statuses.get(name) or {}).get("state") or {}).get("running", {}).get("startedAt")
            s.update(imageID=image_id(image), containerID=container_id(uid, name), started=True,
                     state={"running": {"startedAt": running_since or start_text}})
        statuses.append(s)

    old = {c.get("type", ""): c for c in cur.get("conditions") or []}
    unready = sorted(n for n in (c["name"] for c in containers) if not ready or n in failing)
    why = f"containers with unready status: [{' '.join(unready)}]"
    mine = [_condition(old, "PodReadyToStartContainers", True, at), _condition(old, "Initialized", True, at),
            _condition(old, "ContainersReady", ready, at, "ContainersNotReady", why),
            _condition(old, "Ready", ready, at, "ContainersNotReady", why)]
    conditions = [*mine, *(c for t, c in old.items() if t not in OWN_CONDITIONS)]
    init = [{"name": c["name"], "image": c.get("image", ""), "imageID": image_id(c.get("image", "")),
             "containerID": container_id(uid, c["name"]), "ready": True, "restartCount": 0, "started": False,
             "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": start_text,
                                      "finishedAt": start_text}}}
            for c in spec.get("initContainers") or []]
    status: dict[str, Any] = {
        "phase": "Pending" if failing else "Running", "conditions": conditions, "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}], "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": start_text,
        "containerStatuses": statuses,
    }
    if init:
        status["initContainerStatuses"] = init
    recheck = None
    if failing and at < backoff_at:
        recheck = backoff_at
    elif not failing and not ready:
        recheck = ready_at
    return Desired(None if _same(cur, status) else status, recheck)


def _same(cur: dict[str, Any], want: dict[str, Any]) -> bool:
    """Whether the stored status already says what `want` says (ignoring fields nobody else writes)."""
    def norm(s: dict[str, Any]) -> Any:
        return {k: v for k, v in s.items() if k in want}
    def conds(s: dict[str, Any]) -> Any:
        return sorted((c.get("type"), c.get("status"), c.get("reason")) for c in s.get("conditions") or [])
    def containers(s: dict[str, Any]) -> Any:
        return [(c.get("name"), c.get("ready"), c.get("started"), sorted((c.get("state") or {}).keys()),
                 ((c.get("state") or {}).get("waiting") or {}).get("reason"))
                for c in s.get("containerStatuses") or []]
    if conds(cur) != conds(want) or containers(cur) != containers(want):
        return False
    skip = ("conditions", "containerStatuses", "initContainerStatuses")
    return all(norm(cur).get(k) == v for k, v in want.items() if k not in skip)
