"""A Cluster's status after a probe (pure functions of the old status, the probe's outcome and the time).

Conditions:
- `Reachable`: the last probe got an answer from the member's API server.
- `Ready`: the member can take replicas: probed recently, credentials accepted, its certificate trusted, and
  RuntimeClass `nvidia` present. A failing probe turns it False at once when the cause is configuration
  (credentials, trust); a cluster that merely stops answering keeps its last Ready until no probe has
  succeeded for `stale_after`, then it is False with reason `ProbeStale`.
- `GPURuntimeReady`: RuntimeClass `nvidia` exists (GPU clusters get it from NVIDIA's GPU operator).
- `CredentialsExpiringSoon`: the client certificate or token expires within `expiry_warning`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubellm.apis.timestamps import parse_rfc3339, rfc3339
from kubellm.controller.cluster.connection import Expiry
from kubellm.controller.cluster.inventory import gpu_inventory
from kubellm.controller.cluster.probe import GPU_RUNTIME_CLASS, Observation, ProbeFailure
from kubellm.controller.conditions import find, set_condition

READY, REACHABLE, GPU_RUNTIME, EXPIRING = "Ready", "Reachable", "GPURuntimeReady", "CredentialsExpiringSoon"


@dataclass(frozen=True)
class Timing:
    interval: float
    """Seconds between probes."""
    stale_after: float
    """Seconds without a successful probe after which Ready turns False (`ProbeStale`)."""
    expiry_warning: timedelta


def probed(old: dict[str, Any], obs: Observation, now: datetime, expiry: Expiry | None, timing: Timing,
           generation: int) -> dict[str, Any]:
    stamp = rfc3339(now.timestamp())
    conds = _expiry(old.get("conditions") or [], expiry, now, timing, stamp, generation)
    conds = set_condition(conds, REACHABLE, "True", "ProbeSucceeded", f"the API server answered ({obs.version})",
                          stamp, generation)
    if obs.runtime_class is False:
        runtime = ("False", "RuntimeClassMissing",
                   f'RuntimeClass "{GPU_RUNTIME_CLASS}" not found: pods that ask for it are rejected. Install the '
                   f"NVIDIA GPU operator, or create RuntimeClass {GPU_RUNTIME_CLASS} (handler: nvidia)")
    elif obs.runtime_class is None:
        runtime = ("Unknown", "RuntimeClassUnreadable",
                   "the credentials may not read RuntimeClasses: bind the ClusterRole kubellm:member to them")
    else:
        runtime = ("True", "RuntimeClassFound", f'RuntimeClass "{GPU_RUNTIME_CLASS}" exists')
    conds = set_condition(conds, GPU_RUNTIME, *runtime, stamp, generation)
    gpus = gpu_inventory(obs.nodes, obs.pods)
    if obs.runtime_class is False:
        ready = ("False", "RuntimeClassMissing", runtime[2])
    else:
        total = sum(g["count"] for g in gpus)
        ready = ("True", "ClusterReady", f"{len(obs.nodes)} nodes, {total} GPUs")
    conds = set_condition(conds, READY, *ready, stamp, generation)
    return {"conditions": conds, "kubernetesVersion": obs.version, "nodeCount": len(obs.nodes), "gpus": gpus,
            "lastProbeTime": stamp}


def failed(old: dict[str, Any], failure: ProbeFailure, now: datetime, expiry: Expiry | None, timing: Timing,
           generation: int) -> dict[str, Any]:
    """The old status with the failure recorded; the inventory stays as last seen."""
    stamp = rfc3339(now.timestamp())
    conds = _expiry(old.get("conditions") or [], expiry, now, timing, stamp, generation)
    conds = set_condition(conds, REACHABLE, "True" if failure.reachable else "False",
                          "ProbeSucceeded" if failure.reachable else failure.reason,
                          "the API server answered" if failure.reachable else failure.message, stamp, generation)
    last = parse_rfc3339(old.get("lastProbeTime"))
    if failure.definitive:
        conds = set_condition(conds, READY, "False", failure.reason, failure.message, stamp, generation)
    elif last is None or now.timestamp() - last >= timing.stale_after:
        since = f"since {old['lastProbeTime']}" if last is not None else "yet"
        conds = set_condition(conds, READY, "False", "ProbeStale",
                              f"no successful probe {since}: {failure.message}", stamp, generation)
    elif find(conds, READY) is None:
        conds = set_condition(conds, READY, "Unknown", "Probing", failure.message, stamp, generation)
    out = {k: v for k, v in old.items() if k in ("kubernetesVersion", "nodeCount", "gpus", "lastProbeTime")}
    out["conditions"] = conds
    return out


def _expiry(conds: list[dict[str, Any]], expiry: Expiry | None, now: datetime, timing: Timing, stamp: str,
            generation: int) -> list[dict[str, Any]]:
    if expiry is None:
        return set_condition(conds, EXPIRING, "False", "NoExpiry",
                             "the credentials carry no expiry date (a token without an exp claim)", stamp,
                             generation)
    when = rfc3339(expiry.not_after.timestamp())
    left = expiry.not_after - now
    if left <= timedelta(0):
        return set_condition(conds, EXPIRING, "True", "CredentialsExpired",
                             f"the {expiry.what} expired at {when}: write new credentials to spec.credentials",
                             stamp, generation)
    if left <= timing.expiry_warning:
        return set_condition(conds, EXPIRING, "True", "CredentialsExpireSoon",
                             f"the {expiry.what} expires at {when} (in {_days(left)}): rotate spec.credentials",
                             stamp, generation)
    return set_condition(conds, EXPIRING, "False", "CredentialsValid", f"the {expiry.what} is valid until {when}",
                         stamp, generation)


def _days(left: timedelta) -> str:
    if left >= timedelta(days=2):
        return f"{left.days} days"
    hours = int(left.total_seconds() // 3600)
    return f"{hours} hours" if hours >= 2 else f"{int(left.total_seconds() // 60)} minutes"
