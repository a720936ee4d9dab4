"""Properties of placement (hypothesis): replicas are never lost or double-counted, no cluster gets more than it
can hold, static weights are honoured within one replica, decisions are deterministic, and serving replicas
stay where they are unless they must move."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubellm.controller.llmservice.candidates import ELIGIBLE, EVICTED, KEEP_ONLY, assess, free_replicas
from kubellm.controller.llmservice.placement import Decision, largest_remainder, place

Obj = dict[str, Any]
Nodes = list[list[int]]
"""Free GPUs per node, per GPU model."""

NAMES = ("a", "b", "c", "d", "e", "f")
TAINTS = ({"key": "x", "effect": "NoSchedule"}, {"key": "y", "value": "1", "effect": "NoExecute"},
          {"key": "z", "effect": "PreferNoSchedule"})
TOLERATIONS = ({"key": "x", "operator": "Exists"}, {"operator": "Exists"},
               {"key": "y", "value": "1", "effect": "NoExecute"}, {"key": "y", "value": "2"})

many = settings(max_examples=100, deadline=None)

nodes_st = st.lists(st.lists(st.integers(0, 8), min_size=1, max_size=4), max_size=2)


def cluster(name: str, nodes: Nodes, *, ready: bool = True, taints: list[Obj] | None = None,
            unschedulable: bool = False, labels: dict[str, str] | None = None) -> Obj:
    gpus = [{"model": f"m{i}", "nodes": len(free), "count": 8 * len(free), "allocatable": 8 * len(free),
             "available": sum(free), "largestFree": max(free)} for i, free in enumerate(nodes)]
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}], "gpus": gpus}}


def true_fit(nodes: Nodes, gpu: int) -> int:
    """Replicas that really fit: per node, free // gpu."""
    return sum(free // gpu for model in nodes for free in model)


@st.composite
def members(draw: st.DrawFn, names: tuple[str, ...] = NAMES) -> tuple[list[Obj], dict[str, Nodes]]:
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    clusters, inventory = [], {}
    for name in chosen:
        nodes = draw(nodes_st)
        inventory[name] = nodes
        clusters.append(cluster(name, nodes, ready=draw(st.sampled_from((True, True, True, False))),
                                taints=draw(st.lists(st.sampled_from(TAINTS), unique_by=str, max_size=2)),
                                unschedulable=draw(st.sampled_from((False, False, False, True))),
                                labels=draw(st.sampled_from(({}, {"tier": "gold"}, {"tier": "silver"})))))
    return clusters, inventory


@st.composite
def services(draw: st.DrawFn, kinds: tuple[str, ...] = ("Duplicated", "Static", "Equal", "Dynamic", "Aggregated"),
             replicas: st.SearchStrategy[int] = st.integers(0, 30)) -> Obj:
    kind = draw(st.sampled_from(kinds))
    scheduling: Obj = {"replicaSchedulingType": "Duplicated" if kind == "Duplicated" else "Divided"}
    if kind == "Aggregated":
        scheduling["replicaDivisionPreference"] = "Aggregated"
    elif kind == "Dynamic":
        scheduling["weightPreference"] = {"dynamicWeight": "AvailableReplicas"}
    elif kind == "Static":
        entries = draw(st.lists(st.tuples(st.lists(st.sampled_from(NAMES), unique=True, min_size=1),
                                          st.integers(1, 5)), min_size=1, max_size=3))
        scheduling["weightPreference"] = {
            "staticWeightList": [{"targetCluster": {"clusterNames": n}, "weight": w} for n, w in entries]}
    affinity = draw(st.sampled_from((None, {"clusterNames": ["a", "b", "c", "e"]},
                                     {"labelSelector": {"matchLabels": {"tier": "gold"}}},
                                     {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}})))
    placement: Obj = {"replicaScheduling": scheduling,
                      "clusterTolerations": draw(st.lists(st.sampled_from(TOLERATIONS), unique_by=str, max_size=2))}
    if affinity is not None:
        placement["clusterAffinity"] = affinity
    return {"spec": {"replicas": draw(replicas), "resources": {"gpu": draw(st.integers(1, 4))},
                     "placement": placement}}


def duplicated(svc: Obj) -> bool:
    return bool(svc["spec"]["placement"]["replicaScheduling"]["replicaSchedulingType"] == "Duplicated")


def gpu_of(svc: Obj) -> int:
    return int(svc["spec"]["resources"]["gpu"])


currents = st.dictionaries(st.sampled_from(NAMES), st.integers(0, 6), max_size=4)


@many
@given(members(), services(), currents, st.none() | st.frozensets(st.sampled_from(NAMES)), st.booleans())
def test_replicas_are_conserved_and_fit(members: tuple[list[Obj], dict[str, Nodes]], svc: Obj,
                                        current: dict[str, int], serving: frozenset[str] | None,
                                        rebalance: bool) -> None:
    clusters, inventory = members
    wanted, gpu = svc["spec"]["replicas"], gpu_of(svc)
    d = place(svc, clusters, current, serving=serving, rebalance=rebalance)
    assert all(r > 0 for r in d.replicas.values()) and list(d.replicas) == sorted(d.replicas)
    fits = {c["metadata"]["name"]: assess(c, svc["spec"]["placement"], gpu) for c in clusters}
    for name, r in d.replicas.items():
        held = current.get(name, 0) if fits[name].state != EVICTED else 0
        assert r <= d.capacity[name] <= held + true_fit(inventory[name], gpu)  # never more than it holds
        assert fits[name].state != EVICTED
        if fits[name].state == KEEP_ONLY:
            assert r <= current.get(name, 0)  # no new replicas there
    if duplicated(svc):
        for name, fit in fits.items():
            expected = {ELIGIBLE: min(wanted, d.capacity[name]), KEEP_ONLY: min(wanted, current.get(name, 0))}
            assert d.replicas.get(name, 0) == expected.get(fit.state, 0)
    else:
        assert d.total + d.unschedulable == wanted  # never lost nor double-counted
        if d.unschedulable:
            assert d.message and d.reason != "Scheduled"


@many
@given(members(), services())
def test_a_fresh_placement_fills_what_it_can(members: tuple[list[Obj], dict[str, Nodes]], svc: Obj) -> None:
    clusters, _ = members
    d = place(svc, clusters)
    if not duplicated(svc) and d.unschedulable:
        # replicas are left out only when every cluster that may take some is full
        assert all(d.replicas[n] == d.capacity[n] for n in d.replicas)
        if "staticWeightList" not in str(svc):
            eligible = [c["metadata"]["name"] for c in clusters
                        if assess(c, svc["spec"]["placement"], gpu_of(svc)).state == ELIGIBLE]
            assert all(d.replicas.get(n, 0) == d.capacity[n] for n in eligible)


@many
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 3)), min_size=1, max_size=6), st.integers(0, 40),
       st.integers(1, 4))
def test_static_weights_are_honoured_within_one_replica(spec: list[tuple[int, int]], wanted: int, gpu: int) -> None:
    names = NAMES[:len(spec)]
    clusters = [cluster(n, [[8] * (wanted + 1)]) for n in names]  # room for all: capacity does not bind
    entries = [{"targetCluster": {"clusterNames": [n]}, "weight": w} for n, (w, _) in zip(names, spec, strict=True)]
    svc = {"spec": {"replicas": wanted, "resources": {"gpu": gpu}, "placement": {"replicaScheduling": {
        "replicaSchedulingType": "Divided", "weightPreference": {"staticWeightList": entries}}}}}
    d = place(svc, clusters)
    total = sum(w for w, _ in spec)
    for n, (w, _) in zip(names, spec, strict=True):
        assert abs(d.replicas.get(n, 0) - Fraction(wanted * w, total)) < 1
    assert d.total == wanted


@many
@given(st.integers(0, 200), st.dictionaries(st.sampled_from(NAMES), st.integers(1, 9), min_size=1))
def test_largest_remainder(n: int, weights: dict[str, int]) -> None:
    shares = largest_remainder(n, weights)
    assert sum(shares.values()) == n
    total = sum(weights.values())
    assert all(abs(shares[c] - Fraction(n * w, total)) < 1 for c, w in weights.items())


@many
@given(nodes_st, st.integers(1, 4))
def test_the_capacity_estimate_never_promises_too_much(nodes: Nodes, gpu: int) -> None:
    inventory = cluster("a", nodes)["status"]["gpus"]
    estimate = free_replicas(inventory, gpu)
    assert estimate <= true_fit(nodes, gpu) <= sum(sum(m) // gpu for m in nodes)
    assert (estimate > 0) == any(max(m) >= gpu for m in nodes)
    if gpu == 1 or all(len(m) == 1 for m in nodes):
        assert estimate == true_fit(nodes, gpu)


@many
@given(members(), services(), currents, st.randoms(use_true_random=False))
def test_decisions_are_deterministic(members: tuple[list[Obj], dict[str, Nodes]], svc: Obj,
                                     current: dict[str, int], rnd: Any) -> None:
    clusters, _ = members
    shuffled = list(clusters)
    rnd.shuffle(shuffled)
    current_shuffled = dict(sorted(current.items(), key=lambda _: rnd.random()))
    assert place(svc, shuffled, current_shuffled) == place(svc, clusters, current)


def assert_nothing_moved(before: Decision, after: Decision) -> None:
    assert all(after.replicas.get(n, 0) >= r for n, r in before.replicas.items())


@many
@given(members(NAMES[:-1]), services(), nodes_st)
def test_a_new_cluster_moves_no_replica(members: tuple[list[Obj], dict[str, Nodes]], svc: Obj,
                                        nodes: Nodes) -> None:
    clusters, _ = members
    before = place(svc, clusters)
    after = place(svc, [*clusters, cluster(NAMES[-1], nodes)], before.replicas)
    assert_nothing_moved(before, after)
    if not duplicated(svc) and not before.unschedulable:
        assert after.replicas == before.replicas


@many
@given(members(), services(), st.data())
def test_changing_free_gpus_moves_no_replica(members: tuple[list[Obj], dict[str, Nodes]], svc: Obj,
                                             data: st.DataObject) -> None:
    clusters, _ = members
    before = place(svc, clusters)
    later = [c | {"status": cluster("", data.draw(nodes_st))["status"] | {"conditions": c["status"]["conditions"]}}
             for c in clusters]
    after = place(svc, later, before.replicas)
    assert_nothing_moved(before, after)
    if not duplicated(svc):
        assert after.total + after.unschedulable == svc["spec"]["replicas"]
        if not before.unschedulable:
            assert after.replicas == before.replicas


@many
@given(members(), services(kinds=("Static", "Equal", "Dynamic", "Aggregated")), st.integers(0, 30))
def test_scaling_moves_no_replica(members: tuple[list[Obj], dict[str, Nodes]], svc: Obj, wanted: int) -> None:
    clusters, _ = members
    before = place(svc, clusters)
    scaled = {"spec": svc["spec"] | {"replicas": wanted}}
    after = place(scaled, clusters, before.replicas)
    assert after.total + after.unschedulable == wanted
    if before.total <= wanted:
        assert all(after.replicas.get(n, 0) >= r for n, r in before.replicas.items())
    else:
        assert after.total == wanted
        assert all(after.replicas.get(n, 0) <= before.replicas[n] for n in after.replicas)
