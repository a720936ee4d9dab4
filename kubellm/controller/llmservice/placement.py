"""Placement: how many replicas of an LLMService each member cluster runs, Karmada-style, as a pure function.

`place(service, clusters, current, serving=..., rebalance=...)` takes the JSON form of the objects (camelCase
keys, as the informers and the dynamic client give them; typed objects are dumped by alias first) and returns
a `Decision`. Which clusters qualify and what they hold is `candidates` (its docstring has the capacity
estimate); this module divides the replicas:

- **Duplicated**: every Eligible cluster runs min(replicas, its capacity); a KeepOnly cluster keeps
  min(replicas, what it runs). A cluster that cannot hold all is capped, not left out, and its shortfall is
  counted in `unschedulable` (with the reason in the message).
- **Divided, Weighted** with `staticWeightList` (or no weights: all weigh 1): each cluster gets the weight of
  the first entry whose `targetCluster` matches it, else 0 (if no cluster matches any entry, all weigh 1, as
  Karmada does). Replicas are split in proportion, rounded by largest remainders with ties to the cluster with
  the most room, then the first name (one-replica LLMServices of equal weights spread instead of piling up);
  a cluster whose share exceeds its capacity gets its capacity and the rest is split again among the others by
  weight. Clusters of weight 0 get nothing.
- **Divided, dynamicWeight AvailableReplicas**: the weights are the capacities (free GPUs / GPUs per replica).
- **Divided, Aggregated**: clusters are filled one after the other, most capacity first (ties by name).
- Replicas that fit nowhere are `unschedulable`.

**Stickiness.** `current` is the previous placement (cluster -> replicas, `current_placement` reads it from
status.clusters) and `serving` the clusters whose replicas serve (default: all of `current`). Replicas on a
serving cluster that is still Eligible or KeepOnly stay where they are (their GPUs count as capacity the
cluster holds), so new clusters and changing free GPUs move nothing. If more replicas are wanted, only the new
ones are placed: with static weights towards the clusters furthest below their share of the total, with
AvailableReplicas by the free capacity, Aggregated into the clusters already used first. If fewer, replicas are
removed: with static weights from the clusters furthest above their share, with AvailableReplicas in
proportion to what each runs (as Karmada), Aggregated from the clusters running fewest first. Replicas that are
not serving yet are placed again with the new ones (usually where they are, since their GPUs count for their
cluster). Evicted clusters (not Ready, NoExecute taint, affinity no longer matching) lose their replicas, which
are placed on the others. `rebalance=True` ignores the current placement and divides as from scratch: the
controller asks for it when the spec's placement changed (compare `placement_fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from kubellm.controller.llmservice.candidates import (
    AFFINITY_MISMATCH,
    ELIGIBLE,
    EVICTED,
    NO_GPU_FITS,
    NOT_READY,
    ClusterFit,
    Obj,
    affinity_mismatch,
    assess,
    describe_affinity,
    gpu_note,
    sub,
)

DUPLICATED, AGGREGATED, AVAILABLE_REPLICAS = "Duplicated", "Aggregated", "AvailableReplicas"
SCHEDULED, NO_CLUSTER_MATCHES, UNSCHEDULABLE = "Scheduled", "NoClusterMatches", "Unschedulable"


@dataclass(frozen=True)
class Excluded:
    """A cluster that gets no new replicas, and why."""

    cluster: str
    reason: str
    """NotReady, AffinityMismatch, TaintNotTolerated, Unschedulable or NoGPUFits."""
    message: str


@dataclass(frozen=True)
class Decision:
    replicas: dict[str, int]
    """Cluster name -> replicas, clusters with at least one only, by name."""
    unschedulable: int = 0
    """Divided: replicas that fit nowhere. Duplicated: the sum of the Eligible clusters' shortfalls."""
    reason: str = SCHEDULED
    """Scheduled, NoClusterMatches or Unschedulable: a condition reason."""
    message: str = ""
    """What was placed, or why replicas fit nowhere, for a person."""
    excluded: tuple[Excluded, ...] = ()
    capacity: dict[str, int] = field(default_factory=dict)
    """Cluster name -> most replicas it could run (those it keeps and those its free GPUs hold)."""

    @property
    def total(self) -> int:
        return sum(self.replicas.values())


def as_json(obj: Obj | BaseModel) -> Obj:
    """The JSON form of an API object, typed (dumped by alias) or already a mapping."""
    return obj.model_dump(by_alias=True, exclude_none=True, mode="json") if isinstance(obj, BaseModel) else obj


def current_placement(service: Obj | BaseModel) -> tuple[dict[str, int], frozenset[str]]:
    """The replicas per cluster in `status.clusters`, and the clusters where some are ready (serving)."""
    entries = [c for c in sub(as_json(service), "status").get("clusters") or [] if isinstance(c, Mapping)]
    placed = {str(c.get("name")): _count(c.get("replicas"), 0) for c in entries}
    serving = frozenset(str(c.get("name")) for c in entries if _count(c.get("readyReplicas"), 0) > 0)
    return {n: r for n, r in placed.items() if r > 0}, serving


def placement_fingerprint(service: Obj | BaseModel) -> str:
    """A digest of what placement reads from the spec besides the replica count (spec.placement, GPUs per
    replica): when it changes, the spec asks for a rebalance."""
    spec = sub(as_json(service), "spec")
    data = {"placement": _prune(spec.get("placement")), "gpu": _count(sub(spec, "resources").get("gpu"), 1)}
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def place(service: Obj | BaseModel, clusters: Iterable[Obj | BaseModel], current: Mapping[str, int] | None = None,
          *, serving: Collection[str] | None = None, replicas: int | None = None, rebalance: bool = False,
          full: Collection[str] = ()) -> Decision:
    """Replicas per cluster for `service` (`replicas` overrides spec.replicas, e.g. for an autoscaler). `full`:
    clusters whose free GPUs are not to be believed for this service (its pods found no node there): they keep
    what `current` says and take nothing new."""
    spec = sub(as_json(service), "spec")
    wanted = max(0, replicas if replicas is not None else _count(spec.get("replicas"), 1))
    gpu = max(1, _count(sub(spec, "resources").get("gpu"), 1))
    placement = sub(spec, "placement")
    scheduling = sub(placement, "replicaScheduling")
    objs = {str(sub(o, "metadata").get("name") or ""): o for o in map(as_json, clusters)}
    objs.pop("", None)
    fits = {name: assess(objs[name], placement, gpu) for name in sorted(objs)}
    now = {n: r for n, r in (current or {}).items() if r > 0 and n in fits and fits[n].state != EVICTED}
    capacity = {n: 0 if f.state == EVICTED else now.get(n, 0) + (0 if n in full else f.free) for n, f in fits.items()}
    weights = _weights(scheduling, fits, objs)
    if scheduling.get("replicaSchedulingType") == DUPLICATED:
        placed = {n: min(wanted, capacity[n]) for n in fits}
        short = sum(wanted - placed[n] for n, f in fits.items() if f.state == ELIGIBLE)
        short = max(short, wanted if not any(placed.values()) else 0)
    else:
        sticky = set(now) if serving is None else set(serving)
        kept = {} if rebalance else {n: r for n, r in now.items() if n in sticky}
        room = {n: capacity[n] - kept.get(n, 0) if f.state == ELIGIBLE else 0 for n, f in fits.items()}
        usable = {n: kept.get(n, 0) + room[n] for n in fits}
        mode = _mode(scheduling)
        if sum(kept.values()) > wanted:
            placed = _shrink(mode, kept, wanted, weights, usable)
        else:
            placed = _grow(mode, kept, wanted, weights, room, usable)
        short = wanted - sum(placed.values())
    result = {n: placed[n] for n in sorted(placed) if placed[n] > 0}
    return _explain(Decision(result, short, capacity=capacity), fits, wanted, gpu, placement, weights)


def _count(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _prune(value: Any) -> Any:
    """`value` without empty members, so that defaulted and omitted fields give the same fingerprint."""
    if isinstance(value, Mapping):
        out = {str(k): _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _mode(scheduling: Obj) -> str:
    if scheduling.get("replicaDivisionPreference") == AGGREGATED:
        return AGGREGATED
    if sub(scheduling, "weightPreference").get("dynamicWeight") == AVAILABLE_REPLICAS:
        return AVAILABLE_REPLICAS
    return "Static"


def _weights(scheduling: Obj, fits: Mapping[str, ClusterFit], objs: Mapping[str, Obj]) -> dict[str, int]:
    """Static weights of the clusters that can run replicas (all 1 without a list or when none matches)."""
    entries = [e for e in sub(scheduling, "weightPreference").get("staticWeightList") or [] if isinstance(e, Mapping)]
    names = [n for n, f in fits.items() if f.state != EVICTED]
    weights = {n: next((_count(e.get("weight"), 1) for e in entries
                        if not affinity_mismatch(sub(e, "targetCluster"), objs[n])), 0) for n in names}
    return weights if any(weights.values()) else dict.fromkeys(names, 1)


def largest_remainder(n: int, weights: Mapping[str, int], room: Mapping[str, int] | None = None) -> dict[str, int]:
    """`n` split in proportion to positive `weights`: floors, then one more to the largest remainders (ties: the
    most `room` first, then by name). Each share is within one of the exact share."""
    total = sum(weights.values())
    shares = {c: w * n // total for c, w in weights.items()}
    room = room or {}
    order = sorted(weights, key=lambda c: (-(weights[c] * n % total), -room.get(c, 0), c))
    for c in order[:n - sum(shares.values())]:
        shares[c] += 1
    return shares


def divide(n: int, weights: Mapping[str, int], caps: Mapping[str, int]) -> dict[str, int]:
    """`n` split by `weights` with at most `caps[c]` each: a cluster whose share exceeds its cap gets the cap and
    the rest is split again among the others. Fewer than `n` when the caps (of weighted clusters) do not hold
    them."""
    out: dict[str, int] = {}
    active = sorted(c for c, w in weights.items() if w > 0 and caps.get(c, 0) > 0)
    while n > 0 and active:
        shares = largest_remainder(n, {c: weights[c] for c in active}, caps)
        full = [c for c in active if shares[c] > caps[c]]
        if not full:
            out.update(shares)
            break
        for c in full:
            out[c] = caps[c]
            n -= caps[c]
        active = [c for c in active if c not in full]
    return out


def _shrink(mode: str, kept: Mapping[str, int], wanted: int, weights: Mapping[str, int],
            usable: Mapping[str, int]) -> dict[str, int]:
    if mode == AVAILABLE_REPLICAS:
        return divide(wanted, kept, kept)
    out, excess = dict(kept), sum(kept.values()) - wanted
    if mode == AGGREGATED:
        for c in sorted(sorted(out, reverse=True), key=lambda c: out[c]):
            take = min(out[c], excess)
            out[c], excess = out[c] - take, excess - take
        return out
    target = divide(wanted, weights, usable)
    for _ in range(excess):
        c = max(out, key=lambda c: (out[c] - target.get(c, 0), c))  # ties: the last name, as rounding does
        out[c] -= 1
    return out


def _grow(mode: str, kept: Mapping[str, int], wanted: int, weights: Mapping[str, int], room: Mapping[str, int],
          usable: Mapping[str, int]) -> dict[str, int]:
    out, extra = dict(kept), wanted - sum(kept.values())
    if mode == AVAILABLE_REPLICAS:
        for c, r in divide(extra, room, room).items():
            out[c] = out.get(c, 0) + r
    elif mode == AGGREGATED:
        for c in sorted((c for c in room if room[c] > 0), key=lambda c: (not kept.get(c), -room[c], c)):
            take = min(room[c], extra)
            out[c], extra = out.get(c, 0) + take, extra - take
    else:
        target = divide(wanted, weights, usable)
        for _ in range(extra):
            c = min(target, key=lambda c: (out.get(c, 0) - target[c], -room.get(c, 0), c), default="")
            if not c or out.get(c, 0) >= target[c]:
                break
            out[c] = out.get(c, 0) + 1
    return out


def _explain(decision: Decision, fits: Mapping[str, ClusterFit], wanted: int, gpu: int, placement: Obj,
             weights: Mapping[str, int]) -> Decision:
    placed, capacity = decision.replicas, decision.capacity
    duplicated = sub(placement, "replicaScheduling").get("replicaSchedulingType") == DUPLICATED
    excluded = []
    for n, f in fits.items():
        keeps = f" (keeps {placed[n]})" if placed.get(n) else ""
        if f.state != ELIGIBLE:
            excluded.append(Excluded(n, f.reason, f.note + keeps))
        elif not f.free:
            excluded.append(Excluded(n, NO_GPU_FITS, gpu_note(f, gpu) + keeps))
    reason, s = SCHEDULED, "" if wanted == 1 else "s"
    if not wanted:
        message = "no replicas wanted"
    elif not decision.unschedulable:
        where = ", ".join(f"{n} {r}" for n, r in placed.items())
        message = (f"{wanted} replica{s} in each of {', '.join(placed)}" if duplicated
                   else f"{wanted} replica{s} placed: {where}")
    elif not fits or all(f.reason == AFFINITY_MISMATCH for f in fits.values()):
        reason = NO_CLUSTER_MATCHES
        message = (f"no cluster matches the placement ({describe_affinity(placement.get('clusterAffinity'))})"
                   if fits else "no member cluster is registered")
    else:
        reason = UNSCHEDULABLE
        matched = [f for f in fits.values() if f.reason != AFFINITY_MISMATCH]
        notes = []
        for f in matched:
            if f.state != ELIGIBLE or not capacity[f.name]:
                notes.append(f"{f.name}: {f.note or gpu_note(f, gpu)}")
            elif placed.get(f.name, 0) < wanted and (duplicated or placed.get(f.name, 0) >= capacity[f.name]):
                notes.append(f"{f.name}: room for {capacity[f.name]}")
            elif not duplicated and not weights.get(f.name):
                notes.append(f"{f.name}: weight 0")
        if len(matched) < len(fits):
            notes.append(f"{len(fits) - len(matched)} not matching the placement")
        gpus = f"{gpu} GPU{'' if gpu == 1 else 's'}"
        if not placed and all(f.reason == NOT_READY or (f.state == ELIGIBLE and not capacity[f.name])
                              for f in matched):
            message = f"no Ready cluster has a node with {gpu} free GPU{'' if gpu == 1 else 's'} ({'; '.join(notes)})"
        elif duplicated:
            short = sum(1 for f in matched if f.state == ELIGIBLE and placed.get(f.name, 0) < wanted)
            message = (f"{short} of {sum(1 for f in matched if f.state == ELIGIBLE)} clusters cannot run all {wanted} "
                       f"replica{s}, each needing {gpus} on one node ({'; '.join(notes)})")
            if not any(f.state == ELIGIBLE for f in matched):
                message = f"no cluster can take new replicas ({'; '.join(notes)})"
        else:
            message = (f"{decision.unschedulable} of {wanted} replica{s} fit no cluster, each needing {gpus} on one "
                       f"node ({'; '.join(notes)})")
    return Decision(placed, decision.unschedulable, reason, message, tuple(excluded), capacity)

