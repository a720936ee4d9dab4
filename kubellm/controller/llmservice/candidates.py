"""Which member clusters may run an LLMService's replicas, and how many new ones each can hold.

Pure functions over the JSON form of the objects (camelCase keys). For one service, each Cluster is in one of
three states:

- **Eligible**: Ready, matched by `spec.placement.clusterAffinity`, not `spec.unschedulable`, and every
  NoSchedule and NoExecute taint tolerated by `clusterTolerations`: it keeps its replicas and may get new ones.
- **KeepOnly**: as Eligible, but `spec.unschedulable` or a NoSchedule taint not tolerated: it keeps the
  replicas it runs and gets no new ones (Kubernetes' NoSchedule).
- **Evicted**: not Ready, not matched by the affinity (any more), or a NoExecute taint not tolerated: it loses
  its replicas, which are placed elsewhere.

PreferNoSchedule taints are soft and ignored. Tolerations match taints as in Kubernetes: an empty effect
matches every effect, an empty key with `Exists` every taint, `Equal` (the default) compares the values.

The affinity's `clusterNames` and `labelSelector` must both match when both are set; an unset affinity matches
every cluster. Labels are the Cluster's `metadata.labels`, plus `spec.region`, `spec.zone` and `spec.provider`
under the well-known keys below (labels set on the Cluster win).

**Capacity.** A replica needs `gpu` GPUs on one node. The inventory gives, per GPU model, `available` (free
GPUs in total), `largestFree` (free GPUs on the node with most) and `nodes`. The exact number of replicas that
fit, the sum over nodes of free // gpu, is unknown; the estimate is the largest number that surely fits: the
node with most holds largestFree // gpu, and the other nodes - with available - largestFree GPUs over at most
nodes - 1 nodes, each wasting at most gpu - 1 - hold at least ceil((available - largestFree - (nodes - 1) *
(gpu - 1)) / gpu). It is exact for one GPU per replica or one node, never more than available // gpu, and at
least 1 whenever largestFree >= gpu. Replicas of the service already running on a cluster hold GPUs that
`available` no longer counts: placement adds them back as capacity the cluster already holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubellm.apis.selectors import LabelSelector, Requirement
from kubellm.controller.conditions import find

Obj = Mapping[str, Any]

ELIGIBLE, KEEP_ONLY, EVICTED = "Eligible", "KeepOnly", "Evicted"
NOT_READY, AFFINITY_MISMATCH, TAINT_NOT_TOLERATED, UNSCHEDULABLE, NO_GPU_FITS = (
    "NotReady", "AffinityMismatch", "TaintNotTolerated", "Unschedulable", "NoGPUFits",
)
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
PROVIDER_LABEL = "cluster.kubellm.io/provider"

_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


@dataclass(frozen=True)
class ClusterFit:
    """What one Cluster offers one service."""

    name: str
    state: str
    """ELIGIBLE, KEEP_ONLY or EVICTED."""
    reason: str = ""
    """Why it is not ELIGIBLE: NotReady, AffinityMismatch, TaintNotTolerated or Unschedulable."""
    note: str = ""
    """The reason for a person, e.g. "taint gpu=broken:NoExecute not tolerated"."""
    free: int = 0
    """New replicas its free GPUs surely hold (the estimate above); 0 unless ELIGIBLE."""
    largest_free: int = 0
    """Most free GPUs on one node, over all GPU models."""
    gpus: int = 0
    """GPUs of the cluster (allocatable), over all GPU models."""


def sub(obj: Obj | None, *keys: str) -> Obj:
    """`obj[k1][k2]...`, an empty mapping where anything along the way is missing or null."""
    out: Any = obj or {}
    for key in keys:
        out = out.get(key) if isinstance(out, Mapping) else None
        out = out or {}
    return out if isinstance(out, Mapping) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def free_replicas(gpus: Iterable[Obj], gpu: int) -> int:
    """Replicas of `gpu` GPUs each that surely fit in the free GPUs of an inventory (`status.gpus`)."""
    gpu = max(1, gpu)
    total = 0
    for model in gpus:
        available, nodes = _int(model.get("available")), max(1, _int(model.get("nodes")))
        largest = min(_int(model.get("largestFree")), available)
        rest = max(0, available - largest - (nodes - 1) * (gpu - 1))
        total += min(largest // gpu + -(-rest // gpu), available // gpu)
    return total


def selector_from_json(selector: Obj | None) -> LabelSelector | None:
    """A metav1.LabelSelector as a `LabelSelector`; None when it is invalid (and so matches nothing)."""
    reqs = [Requirement(str(k), "=", (str(v),)) for k, v in sorted(sub(selector, "matchLabels").items())]
    for expr in (selector or {}).get("matchExpressions") or []:
        op = _OPERATORS.get(str(expr.get("operator", "")))
        values = tuple(str(v) for v in expr.get("values") or ())
        if op is None or (op in ("in", "notin")) != bool(values):
            return None
        reqs.append(Requirement(str(expr.get("key", "")), op, values))
    return LabelSelector(tuple(reqs))


def labels_of(cluster: Obj) -> dict[str, str]:
    spec = sub(cluster, "spec")
    out = {key: str(spec[field]) for key, field in ((REGION_LABEL, "region"), (ZONE_LABEL, "zone"),
                                                    (PROVIDER_LABEL, "provider")) if spec.get(field)}
    out.update({str(k): str(v) for k, v in sub(cluster, "metadata", "labels").items()})
    return out


def affinity_mismatch(affinity: Obj | None, cluster: Obj) -> str:
    """Why `affinity` (a ClusterAffinity, or None for every cluster) does not match `cluster`; "" if it does."""
    if affinity is None:
        return ""
    names = affinity.get("clusterNames") or []
    if names and sub(cluster, "metadata").get("name") not in names:
        return "not in clusterNames"
    if affinity.get("labelSelector") is not None:
        selector = selector_from_json(affinity["labelSelector"])
        if selector is None:
            return "invalid labelSelector"
        if not selector.matches(labels_of(cluster)):
            return f"labels do not match {describe_selector(affinity['labelSelector'])}"
    return ""


def describe_selector(selector: Obj | None) -> str:
    parsed = selector_from_json(selector)
    return "invalid selector" if parsed is None else str(parsed) or "everything"


def describe_affinity(affinity: Obj | None) -> str:
    """The affinity for a person: `clusterNames [a, b]; labelSelector gpu=a100`."""
    if affinity is None:
        return "any cluster"
    parts = []
    if affinity.get("clusterNames"):
        parts.append(f"clusterNames [{', '.join(str(n) for n in affinity['clusterNames'])}]")
    if affinity.get("labelSelector") is not None:
        parts.append(f"labelSelector {describe_selector(affinity['labelSelector'])}")
    return "; ".join(parts) or "any cluster"


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Whether a toleration matches a taint, as Kubernetes' `Toleration.ToleratesTaint`."""
    effect, key = toleration.get("effect") or "", toleration.get("key") or ""
    if (effect and effect != taint.get("effect")) or (key and key != taint.get("key")):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def describe_taint(taint: Obj) -> str:
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint.get('key', '')}{value}:{taint.get('effect', '')}"


def untolerated(taints: Iterable[Obj], tolerations: list[Obj], effect: str) -> Obj | None:
    """The first taint of `effect` that no toleration matches, if any."""
    return next((t for t in taints if t.get("effect") == effect and not any(tolerates(x, t) for x in tolerations)),
                None)


def assess(cluster: Obj, placement: Obj, gpu: int) -> ClusterFit:
    """What `cluster` offers a service with this `spec.placement` and `gpu` GPUs per replica."""
    name = str(sub(cluster, "metadata").get("name") or "")
    status, spec = sub(cluster, "status"), sub(cluster, "spec")
    inventory = [m for m in status.get("gpus") or [] if isinstance(m, Mapping)]
    largest = max((_int(m.get("largestFree")) for m in inventory), default=0)
    gpus = sum(_int(m.get("allocatable")) for m in inventory)

    def fit(state: str, reason: str = "", note: str = "", free: int = 0) -> ClusterFit:
        return ClusterFit(name, state, reason, note, free, largest, gpus)

    ready = find(status.get("conditions") or [], "Ready")
    if ready is None or ready.get("status") != "True":
        why = (ready or {}).get("reason")
        return fit(EVICTED, NOT_READY, f"not Ready ({why})" if why else "not Ready")
    mismatch = affinity_mismatch(placement.get("clusterAffinity"), cluster)
    if mismatch:
        return fit(EVICTED, AFFINITY_MISMATCH, mismatch)
    taints = [t for t in spec.get("taints") or [] if isinstance(t, Mapping)]
    tolerations = [t for t in placement.get("clusterTolerations") or [] if isinstance(t, Mapping)]
    taint = untolerated(taints, tolerations, "NoExecute")
    if taint is not None:
        return fit(EVICTED, TAINT_NOT_TOLERATED, f"taint {describe_taint(taint)} not tolerated")
    if spec.get("unschedulable"):
        return fit(KEEP_ONLY, UNSCHEDULABLE, "unschedulable")
    taint = untolerated(taints, tolerations, "NoSchedule")
    if taint is not None:
        return fit(KEEP_ONLY, TAINT_NOT_TOLERATED, f"taint {describe_taint(taint)} not tolerated")
    return fit(ELIGIBLE, free=free_replicas(inventory, gpu))


def gpu_note(fit: ClusterFit, gpu: int) -> str:
    """Why an ELIGIBLE cluster takes no new replica, for a person."""
    if not fit.gpus:
        return "no GPUs"
    return f"largest free {fit.largest_free}" if fit.largest_free < gpu else "no free GPUs"
