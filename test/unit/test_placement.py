"""Placement of LLMService replicas on member clusters: candidates, capacity, division, stickiness, messages."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.apis.cluster.v1alpha1.types import Cluster
from kubellm.apis.model.v1alpha1.types import LLMService
from kubellm.controller.llmservice.candidates import (
    ELIGIBLE,
    EVICTED,
    KEEP_ONLY,
    assess,
    free_replicas,
    tolerates,
)
from kubellm.controller.llmservice.placement import (
    NO_CLUSTER_MATCHES,
    SCHEDULED,
    UNSCHEDULABLE,
    current_placement,
    divide,
    largest_remainder,
    place,
    placement_fingerprint,
)

Obj = dict[str, Any]


def cluster(name: str, *free: int, ready: bool = True, labels: dict[str, str] | None = None,
            taints: tuple[Obj, ...] = (), unschedulable: bool = False, region: str = "") -> Obj:
    """A Cluster whose GPU nodes (one model, 8 GPUs each) have `free` GPUs free."""
    gpus = [{"model": "NVIDIA-A100", "memoryMiB": 81920, "nodes": len(free), "count": 8 * len(free),
             "allocatable": 8 * len(free), "available": sum(free), "largestFree": max(free)}] if free else []
    return {"apiVersion": "cluster.kubellm.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"apiEndpoint": f"https://{name}:6443", "taints": list(taints), "unschedulable": unschedulable,
                     "region": region},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "reason": "Probed" if ready else "ProbeFailed"}], "gpus": gpus}}


def service(replicas: int = 1, gpu: int = 1, *, duplicated: bool = False, preference: str = "",
            static: list[tuple[list[str], int]] | None = None, dynamic: str = "", affinity: Obj | None = None,
            tolerations: list[Obj] | None = None) -> Obj:
    scheduling: Obj = {"replicaSchedulingType": "Duplicated" if duplicated else "Divided"}
    if preference:
        scheduling["replicaDivisionPreference"] = preference
    if static is not None or dynamic:
        scheduling["weightPreference"] = {
            "staticWeightList": [{"targetCluster": {"clusterNames": n}, "weight": w} for n, w in static or []],
            "dynamicWeight": dynamic}
    placement: Obj = {"replicaScheduling": scheduling, "clusterTolerations": tolerations or []}
    if affinity is not None:
        placement["clusterAffinity"] = affinity
    return {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
            "metadata": {"name": "chat", "namespace": "team-a"},
            "spec": {"model": "Qwen/Qwen2.5-3B-Instruct", "replicas": replicas, "resources": {"gpu": gpu},
                     "placement": placement}}


def taint(key: str, effect: str, value: str = "") -> Obj:
    return {"key": key, "value": value, "effect": effect}


# --- candidates ----------------------------------------------------------------------------------------------


def test_free_replicas_is_a_sure_lower_bound() -> None:
    def inv(*free: int) -> list[Obj]:
        return [{"available": sum(free), "largestFree": max(free), "nodes": len(free)}]

    assert free_replicas(inv(3, 1, 0), 1) == 4  # one GPU per replica: exact
    assert free_replicas(inv(5), 2) == 2  # one node: exact
    assert free_replicas(inv(4, 4), 2) == 4  # the others hold (4 - 1) // 2 at least
    assert free_replicas(inv(2, 1, 1, 1), 2) == 1  # fragmented: 5 free but one replica of 2 fits
    assert free_replicas(inv(1, 1), 2) == 0
    assert free_replicas(inv(4, 4) + inv(2), 2) == 5  # summed over GPU models
    assert free_replicas([{"available": 3, "largestFree": 9, "nodes": 0}], 1) == 3  # inconsistent: capped
    assert free_replicas([{}], 1) == 0


def test_tolerations_match_as_in_kubernetes() -> None:
    t = taint("gpu", "NoSchedule", "broken")
    assert tolerates({"key": "gpu", "operator": "Equal", "value": "broken"}, t)
    assert tolerates({"key": "gpu", "value": "broken"}, t)  # Equal is the default
    assert not tolerates({"key": "gpu", "value": "ok"}, t)
    assert tolerates({"key": "gpu", "operator": "Exists"}, t)
    assert tolerates({"operator": "Exists"}, t)  # empty key with Exists: every taint
    assert not tolerates({"key": "gpu", "operator": "Exists", "effect": "NoExecute"}, t)
    assert tolerates({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}, t)


@pytest.mark.parametrize(("obj", "placement", "state", "reason"), [
    (cluster("a", 4), {}, ELIGIBLE, ""),
    (cluster("a", 4, ready=False), {}, EVICTED, "NotReady"),
    (cluster("a", 4), {"clusterAffinity": {"clusterNames": ["b"]}}, EVICTED, "AffinityMismatch"),
    (cluster("a", 4, taints=(taint("x", "NoExecute"),)), {}, EVICTED, "TaintNotTolerated"),
    (cluster("a", 4, taints=(taint("x", "NoSchedule"),)), {}, KEEP_ONLY, "TaintNotTolerated"),
    (cluster("a", 4, taints=(taint("x", "PreferNoSchedule"),)), {}, ELIGIBLE, ""),
    (cluster("a", 4, unschedulable=True), {}, KEEP_ONLY, "Unschedulable"),
    (cluster("a", 4, taints=(taint("x", "NoExecute"),)), {"clusterTolerations": [{"key": "x", "operator": "Exists"}]},
     ELIGIBLE, ""),
])
def test_cluster_states(obj: Obj, placement: Obj, state: str, reason: str) -> None:
    fit = assess(obj, placement, 1)
    assert (fit.state, fit.reason) == (state, reason)
    assert fit.free == (4 if state == ELIGIBLE else 0)


def test_affinity_by_names_labels_and_region() -> None:
    clusters = [cluster("a", 8, labels={"tier": "gold"}, region="eu"), cluster("b", 8, labels={"tier": "silver"}),
                cluster("c", 8, labels={"tier": "gold"})]
    gold = {"labelSelector": {"matchLabels": {"tier": "gold"}}}
    assert place(service(2, affinity=gold), clusters).replicas == {"a": 1, "c": 1}
    both = {"clusterNames": ["a", "b"], "labelSelector": {"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["gold", "bronze"]}]}}
    assert place(service(2, affinity=both), clusters).replicas == {"a": 2}
    eu = {"labelSelector": {"matchLabels": {"topology.kubernetes.io/region": "eu"}}}
    assert place(service(2, affinity=eu), clusters).replicas == {"a": 2}
    invalid = {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": []}]}}
    assert place(service(2, affinity=invalid), clusters).replicas == {}


# --- division ------------------------------------------------------------------------------------------------


def test_largest_remainder_and_caps() -> None:
    assert largest_remainder(7, {"a": 1, "b": 1}) == {"a": 4, "b": 3}  # tie: the first name
    assert largest_remainder(10, {"a": 2, "b": 1}) == {"a": 7, "b": 3}
    assert largest_remainder(3, {"a": 1, "b": 1, "c": 1, "d": 1}) == {"a": 1, "b": 1, "c": 1, "d": 0}
    assert largest_remainder(5, {"a": 1, "b": 3}) == {"a": 1, "b": 4}  # remainders 1/4 and 3/4
    assert divide(10, {"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 9, "c": 9}) == {"a": 1, "b": 5, "c": 4}
    assert divide(10, {"a": 1, "b": 1}, {"a": 2, "b": 3}) == {"a": 2, "b": 3}  # not enough room
    assert divide(4, {"a": 0, "b": 1}, {"a": 9, "b": 9}) == {"b": 4}


def test_duplicated_runs_all_replicas_everywhere_and_caps() -> None:
    clusters = [cluster("a", 8), cluster("b", 2), cluster("c", 8, ready=False), cluster("d", 8, unschedulable=True)]
    d = place(service(3, duplicated=True), clusters)
    assert d.replicas == {"a": 3, "b": 2}
    assert d.unschedulable == 1
    assert d.reason == UNSCHEDULABLE
    assert "1 of 2 clusters cannot run all 3 replicas" in d.message and "b: room for 2" in d.message
    # an unschedulable cluster keeps what it runs, a new cluster gets its copies
    clusters = [cluster("a", 5), cluster("b", 0), cluster("d", 8, unschedulable=True), cluster("e", 8)]
    d = place(service(3, duplicated=True), clusters, {"a": 3, "b": 2, "d": 3})
    assert d.replicas == {"a": 3, "b": 2, "d": 3, "e": 3}


def test_static_weights() -> None:
    clusters = [cluster("a", 8), cluster("b", 8), cluster("c", 8)]
    d = place(service(7, static=[(["a"], 2), (["b"], 1)]), clusters)
    assert d.replicas == {"a": 5, "b": 2}  # c matches no entry: weight 0
    assert d.reason == SCHEDULED and d.message == "7 replicas placed: a 5, b 2"
    assert place(service(7, static=[(["x"], 1)]), clusters).replicas == {"a": 3, "b": 2, "c": 2}  # none matches
    assert place(service(6), clusters).replicas == {"a": 2, "b": 2, "c": 2}  # no weights: all weigh 1
    # a's share (8) is more than it holds: the rest goes to b by weight, c (weight 0) gets nothing
    d = place(service(12, static=[(["a"], 2), (["b"], 1)]), [cluster("a", 3), cluster("b", 6), cluster("c", 8)])
    assert (d.replicas, d.unschedulable) == ({"a": 3, "b": 6}, 3)
    assert d.message == ("3 of 12 replicas fit no cluster, each needing 1 GPU on one node "
                         "(a: room for 3; b: room for 6; c: weight 0)")


def test_dynamic_weight_by_available_replicas() -> None:
    clusters = [cluster("a", 8, 8), cluster("b", 4), cluster("c", 1, 1), cluster("d")]
    d = place(service(6, 2, dynamic="AvailableReplicas"), clusters)
    assert d.capacity == {"a": 8, "b": 2, "c": 0, "d": 0}
    assert d.replicas == {"a": 5, "b": 1}  # 6 * 8/10 = 4.8, 6 * 2/10 = 1.2
    assert [(e.cluster, e.reason, e.message) for e in d.excluded] == [
        ("c", "NoGPUFits", "largest free 1"), ("d", "NoGPUFits", "no GPUs")]


def test_aggregated_uses_as_few_clusters_as_possible() -> None:
    clusters = [cluster("a", 3), cluster("b", 5), cluster("c", 5), cluster("d", 1)]
    assert place(service(5, preference="Aggregated"), clusters).replicas == {"b": 5}
    assert place(service(8, preference="Aggregated"), clusters).replicas == {"b": 5, "c": 3}
    d = place(service(20, preference="Aggregated"), clusters)
    assert (d.replicas, d.unschedulable) == ({"a": 3, "b": 5, "c": 5, "d": 1}, 6)


# --- stickiness ----------------------------------------------------------------------------------------------


def test_a_new_cluster_or_more_free_gpus_move_nothing() -> None:
    svc = service(4, dynamic="AvailableReplicas")
    first = place(svc, [cluster("a", 4), cluster("b", 4)])
    assert first.replicas == {"a": 2, "b": 2}
    # the replicas now hold 2 GPUs in each; c joins with many free GPUs, b gets more
    later = [cluster("a", 2), cluster("b", 8), cluster("c", 8)]
    assert place(svc, later, first.replicas).replicas == first.replicas
    # unless the spec's placement changed and the controller asks for a rebalance
    assert place(svc, later, first.replicas, rebalance=True).replicas == {"a": 1, "b": 2, "c": 1}


def test_scaling_adds_and_removes_without_moving_the_others() -> None:
    clusters = [cluster("a", 8), cluster("b", 8), cluster("c", 8)]
    svc = service(7, static=[(["a"], 1), (["b"], 1), (["c"], 1)])
    assert place(svc, clusters, {"a": 3, "b": 3}).replicas == {"a": 3, "b": 3, "c": 1}  # the new one goes to c
    assert place(service(5), clusters, {"a": 3, "b": 3}).replicas == {"a": 3, "b": 2}
    assert place(service(4), clusters, {"a": 3, "b": 1, "c": 1}).replicas == {"a": 2, "b": 1, "c": 1}
    dyn = service(3, dynamic="AvailableReplicas")
    assert place(dyn, clusters, {"a": 4, "b": 2}).replicas == {"a": 2, "b": 1}  # proportionally to what runs
    agg = service(3, preference="Aggregated")
    assert place(agg, clusters, {"a": 1, "b": 4}).replicas == {"b": 3}  # from the clusters running fewest
    assert place(service(6, preference="Aggregated"), clusters, {"a": 1, "b": 4}).replicas == {"a": 2, "b": 4}


def test_clusters_that_stop_qualifying() -> None:
    placed = {"a": 2, "b": 2}
    no_exec = [cluster("a", 6, taints=(taint("maintenance", "NoExecute"),)), cluster("b", 6), cluster("c", 6)]
    d = place(service(4), no_exec, placed)
    assert d.replicas == {"b": 2, "c": 2}
    assert d.excluded[0].message == "taint maintenance:NoExecute not tolerated"
    no_sched = [cluster("a", 6, taints=(taint("maintenance", "NoSchedule", "soon"),)), cluster("b", 6),
                cluster("c", 6)]
    d = place(service(4), no_sched, placed)
    assert d.replicas == placed  # keeps its replicas
    assert d.excluded[0].message == "taint maintenance=soon:NoSchedule not tolerated (keeps 2)"
    assert place(service(6), no_sched, placed).replicas == {"a": 2, "b": 2, "c": 2}  # no new ones on a
    not_ready = [cluster("a", 6, ready=False), cluster("b", 6), cluster("c", 6)]
    assert place(service(4), not_ready, placed).replicas == {"b": 2, "c": 2}
    gone = [cluster("b", 6), cluster("c", 6)]
    assert place(service(4), gone, placed).replicas == {"b": 2, "c": 2}
    moved = service(4, affinity={"clusterNames": ["b", "c"]})
    assert place(moved, [cluster("a", 6), cluster("b", 6), cluster("c", 6)], placed).replicas == {"b": 2, "c": 2}


def test_only_serving_replicas_are_sticky() -> None:
    svc = service(4, static=[(["a"], 1), (["b"], 1)])
    clusters = [cluster("a", 8), cluster("b", 8)]
    current = {"a": 4}
    assert place(svc, clusters, current, serving={"a"}).replicas == {"a": 4}
    assert place(svc, clusters, current, serving=set()).replicas == {"a": 2, "b": 2}


def test_replicas_hold_their_gpus() -> None:
    # 2 replicas of 4 GPUs run in a; its node has nothing free any more, but they stay and fit
    d = place(service(2, 4), [cluster("a", 0), cluster("b", 0)], {"a": 2})
    assert (d.replicas, d.capacity) == ({"a": 2}, {"a": 2, "b": 0})
    d = place(service(3, 4), [cluster("a", 0), cluster("b", 0)], {"a": 2})
    assert (d.replicas, d.unschedulable) == ({"a": 2}, 1)
    assert d.message == ("1 of 3 replicas fit no cluster, each needing 4 GPUs on one node "
                         "(a: room for 2; b: largest free 0)")


# --- messages and inputs -------------------------------------------------------------------------------------


def test_messages_a_person_can_act_on() -> None:
    d = place(service(2, 2), [cluster("gpu-a", 1, 1), cluster("gpu-b", 8, ready=False)])
    assert (d.reason, d.unschedulable) == (UNSCHEDULABLE, 2)
    assert d.message == ("no Ready cluster has a node with 2 free GPUs "
                         "(gpu-a: largest free 1; gpu-b: not Ready (ProbeFailed))")
    affinity = {"clusterNames": ["x"], "labelSelector": {"matchLabels": {"gpu": "h100"}}}
    d = place(service(1, affinity=affinity), [cluster("gpu-a", 8)])
    assert d.reason == NO_CLUSTER_MATCHES
    assert d.message == "no cluster matches the placement (clusterNames [x]; labelSelector gpu=h100)"
    assert place(service(1), []).message == "no member cluster is registered"
    d = place(service(1), [cluster("a", 8, taints=(taint("team", "NoSchedule", "b"),)), cluster("b", 8, ready=False)])
    assert d.message == ("1 of 1 replica fit no cluster, each needing 1 GPU on one node "
                         "(a: taint team=b:NoSchedule not tolerated; b: not Ready (ProbeFailed))")
    assert place(service(0), [cluster("a", 8)]).message == "no replicas wanted"


def test_typed_objects_give_the_same_decision() -> None:
    svc = service(5, 2, static=[(["a"], 3), (["b"], 1)], tolerations=[{"key": "x", "operator": "Exists"}])
    clusters = [cluster("a", 8, 6, taints=(taint("x", "NoSchedule"),)), cluster("b", 4), cluster("c", 8)]
    typed = place(LLMService.model_validate(svc), [Cluster.model_validate(c) for c in clusters])
    assert typed == place(svc, clusters)
    assert typed.replicas == {"a": 4, "b": 1}


def test_current_placement_and_fingerprint() -> None:
    svc = service(4) | {"status": {"clusters": [{"name": "a", "replicas": 2, "readyReplicas": 1},
                                                {"name": "b", "replicas": 2, "readyReplicas": 0},
                                                {"name": "c", "replicas": 0}]}}
    assert current_placement(svc) == ({"a": 2, "b": 2}, frozenset({"a"}))
    assert current_placement(LLMService.model_validate(svc)) == ({"a": 2, "b": 2}, frozenset({"a"}))
    fp = placement_fingerprint(svc)
    assert placement_fingerprint(LLMService.model_validate(svc)) == fp  # defaults do not count
    assert placement_fingerprint(service(9)) == fp  # nor the replica count
    assert placement_fingerprint(service(4, static=[(["a"], 1)])) != fp
    assert placement_fingerprint(service(4, 2)) != fp


def test_equal_weights_send_a_lone_replica_where_there_is_most_room() -> None:
    # ties of the rounding go to the cluster with the most room, then by name: one-replica services spread
    clusters = [cluster("a", 1), cluster("b", 8), cluster("c", 3)]
    assert place(service(1), clusters).replicas == {"b": 1}
    assert place(service(2), clusters).replicas == {"b": 1, "c": 1}
    assert largest_remainder(1, {"a": 1, "b": 1}, {"a": 2, "b": 5}) == {"a": 0, "b": 1}
    assert largest_remainder(1, {"a": 1, "b": 1}, {"a": 5, "b": 5}) == {"a": 1, "b": 0}  # then by name


def test_a_cluster_whose_pods_found_no_node_takes_nothing_new() -> None:
    # the probe says b has room, but the service's pod there was not scheduled: its replica goes to a
    clusters = [cluster("a", 2), cluster("b", 8)]
    assert place(service(1), clusters, {}).replicas == {"b": 1}
    moved = place(service(1), clusters, {}, full={"b"})
    assert moved.replicas == {"a": 1} and not moved.unschedulable
    # what a full cluster holds stays
    assert place(service(2), clusters, {"b": 1}, full={"b"}).replicas == {"a": 1, "b": 1}
    nowhere = place(service(1), [cluster("b", 8)], {}, full={"b"})
    assert nowhere.replicas == {} and nowhere.unschedulable == 1
