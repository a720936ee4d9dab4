"""The member-cluster objects of an LLMService: the vLLM Deployment, Service and HPA of the operator KubeLLM
replaces, field by field; the division of the autoscaling bounds between clusters; names, labels, identities."""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubellm.apis.selectors import parse_label_selector
from kubellm.controller.llmservice import resources as r
from kubellm.nodesim.metrics import metric_values

NS, NAME, UID = "team-a", "qwen-3b", "0b7d3f1e-2c4a-4e5b-9f00-000000000001"
OWNER = {"kubellm.io/owner": f"{NS}/{NAME}", "kubellm.io/owner-kind": "LLMService", "kubellm.io/owner-uid": UID}
LABELS = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": NAME,
          "app.kubernetes.io/managed-by": "kubellm"}
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def llm(name: str = NAME, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
            "metadata": {"name": name, "namespace": NS, "uid": UID, "generation": 3, "resourceVersion": "42"},
            "spec": spec, "status": {"phase": "Serving"}}


FULL = llm(
    model="Qwen/Qwen2.5-3B-Instruct", quantization="awq", maxModelLen=4096, gpuMemoryUtilization="0.9",
    replicas=2, image="vllm/vllm-openai:v0.6.3", hfEndpoint="https://hf.example.com",
    resources={"gpu": 2, "cpu": "4", "memory": "16Gi"},
    autoscaling={"enabled": True, "minReplicas": 1, "maxReplicas": 4, "waitingThreshold": 7},
    placement={"clusterAffinity": {"clusterNames": ["a", "b"]}},
    extraArgs=["--enable-prefix-caching", "--dtype", "half"],
    env=[{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}, {"name": "A", "value": "1"}],
)

EXPECTED_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": NAME, "namespace": NS, "labels": LABELS, "annotations": OWNER},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": LABELS},
        "strategy": {"type": "Recreate"},
        "template": {
            "metadata": {"labels": {**LABELS, "deployment": NAME}},
            "spec": {
                "runtimeClassName": "nvidia",
                "containers": [{
                    "name": "vllm",
                    "image": "vllm/vllm-openai:v0.6.3",
                    "args": ["--model", "Qwen/Qwen2.5-3B-Instruct", "--host", "0.0.0.0", "--port", "8000",
                             "--gpu-memory-utilization", "0.9", "--max-model-len", "4096",
                             "--served-model-name", NAME, "--quantization", "awq",
                             "--enable-prefix-caching", "--dtype", "half"],
                    "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
                    "env": [{"name": "HF_ENDPOINT", "value": "https://hf.example.com"},
                            {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}, {"name": "A", "value": "1"}],
                    "resources": {"limits": {"nvidia.com/gpu": "2"}, "requests": {"cpu": "4", "memory": "16Gi"}},
                    "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 10,
                                       "timeoutSeconds": 5, "failureThreshold": 3},
                    "startupProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 10,
                                     "timeoutSeconds": 5, "failureThreshold": 180},
                    "volumeMounts": [{"name": "hf-cache", "mountPath": "/root/.cache/huggingface"},
                                     {"name": "dshm", "mountPath": "/dev/shm"}],
                }],
                "volumes": [
                    {"name": "hf-cache",
                     "hostPath": {"path": "/var/lib/kubellm/hf-cache", "type": "DirectoryOrCreate"}},
                    {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "4Gi"}},
                ],
            },
        },
    },
}

EXPECTED_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": NAME, "namespace": NS, "labels": LABELS, "annotations": OWNER},
    "spec": {"type": "ClusterIP", "selector": LABELS,
             "ports": [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]},
}


def expected_hpa(low: int, high: int, threshold: str = "7") -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": NAME, "namespace": NS, "labels": LABELS, "annotations": OWNER},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [{"type": "External", "external": {
                "metric": {"name": "vllm_num_requests_waiting", "selector": {"matchLabels": {"deployment": NAME}}},
                "target": {"type": "AverageValue", "averageValue": threshold}}}],
        },
    }


def by_kind(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [o["kind"] for o in objs]
    assert len(set(kinds)) == len(kinds)
    return {o["kind"]: o for o in objs}


def container(deploy: dict[str, Any]) -> dict[str, Any]:
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    c_: dict[str, Any] = c
    return c_


# --- the full spec, field by field -----------------------------------------------------------------


def test_full_spec_objects_match_the_operator() -> None:
    objs = r.llm_objects(FULL, 2, autoscaling_share=(1, 3))
    assert [o["kind"] for o in objs] == ["Namespace", "Deployment", "Service", "HorizontalPodAutoscaler"]
    got = by_kind(objs)
    assert got["Namespace"] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    assert got["Deployment"] == EXPECTED_DEPLOYMENT
    assert got["Service"] == EXPECTED_SERVICE
    assert got["HorizontalPodAutoscaler"] == expected_hpa(1, 3)


def test_only_owned_fields_and_no_status() -> None:
    for obj in r.llm_objects(FULL, 2, autoscaling_share=(1, 3)):
        assert "status" not in obj
        assert set(obj["metadata"]) <= {"name", "namespace", "labels", "annotations"}
        assert obj["metadata"].get("namespace", NS) == NS


def test_input_is_not_modified_and_outputs_do_not_share_state() -> None:
    before = copy.deepcopy(FULL)
    first = r.llm_objects(FULL, 2)
    first[1]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] = 99
    first[1]["spec"]["selector"]["matchLabels"]["x"] = "y"
    assert before == FULL
    assert r.llm_objects(FULL, 2)[1] == EXPECTED_DEPLOYMENT


def test_minimal_spec_takes_the_settings_defaults() -> None:
    d = r.deployment(llm(model="Qwen/Qwen2.5-0.5B"), 1)
    c = container(d)
    assert c["image"] == "docker.m.daocloud.io/vllm/vllm-openai:v0.6.5"
    assert c["args"] == ["--model", "Qwen/Qwen2.5-0.5B", "--host", "0.0.0.0", "--port", "8000",
                         "--gpu-memory-utilization", "0.85", "--max-model-len", "2048", "--served-model-name", NAME]
    assert c["env"] == [{"name": "HF_ENDPOINT", "value": "https://hf-mirror.com"}]
    assert c["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    settings = r.LLMSettings(image="registry.local/vllm:1", hf_endpoint="https://hf.local",
                             hf_cache=r.HFCache(claim_name="hf-cache"))
    d = r.deployment(llm(model="Qwen/Qwen2.5-0.5B", resources={"gpu": 4, "memory": "32Gi"}), 1, settings)
    c = container(d)
    assert c["image"] == "registry.local/vllm:1"
    assert c["env"] == [{"name": "HF_ENDPOINT", "value": "https://hf.local"}]
    assert c["resources"] == {"limits": {"nvidia.com/gpu": "4"}, "requests": {"memory": "32Gi"}}
    assert d["spec"]["template"]["spec"]["volumes"][0] == {"name": "hf-cache",
                                                          "persistentVolumeClaim": {"claimName": "hf-cache"}}


@pytest.mark.parametrize(("quantization", "tail"), [
    ("", []), ("awq", ["--quantization", "awq"]), ("gptq", ["--quantization", "gptq"]),
    ("fp8", ["--quantization", "fp8"]),
])
def test_quantization_only_when_set_and_before_extra_args(quantization: str, tail: list[str]) -> None:
    args = r.vllm_args(llm(model="m/abc", quantization=quantization, extraArgs=["--enforce-eager"]))
    assert args[:12] == ["--model", "m/abc", "--host", "0.0.0.0", "--port", "8000", "--gpu-memory-utilization",
                         "0.85", "--max-model-len", "2048", "--served-model-name", NAME]
    assert args[12:] == [*tail, "--enforce-eager"]


def test_env_hf_endpoint_first_then_spec_env_without_repeated_names() -> None:
    spec_env = [{"name": "B", "value": "1"}, {"name": "HF_ENDPOINT", "value": "https://override"},
                {"name": "B", "value": "2"}, {"name": "C", "value": ""}]
    env = r.vllm_env(llm(model="m/abc", hfEndpoint="https://hf.example.com", env=spec_env), r.LLMSettings())
    assert env == [{"name": "HF_ENDPOINT", "value": "https://override"}, {"name": "B", "value": "2"},
                   {"name": "C", "value": ""}]


def test_replicas_left_out_for_the_hpa() -> None:
    objs = r.llm_objects(FULL, 2, autoscaling_share=(1, 3), include_replicas=False)
    d = by_kind(objs)["Deployment"]
    assert "replicas" not in d["spec"]
    assert d["spec"] == {k: v for k, v in EXPECTED_DEPLOYMENT["spec"].items() if k != "replicas"}
    assert r.deployment(FULL, 0)["spec"]["replicas"] == 0


# --- HPA ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("auto", [None, {"enabled": False, "minReplicas": 1, "maxReplicas": 3}])
def test_no_hpa_without_autoscaling(auto: dict[str, Any] | None) -> None:
    obj = llm(model="m/abc") if auto is None else llm(model="m/abc", autoscaling=auto)
    objs = r.llm_objects(obj, 1, autoscaling_share=(1, 3))
    assert [o["kind"] for o in objs] == ["Namespace", "Deployment", "Service"]
    assert not r.autoscaled(obj)
    assert r.stale_identities(obj, objs) == [
        r.ObjectId("autoscaling/v2", "HorizontalPodAutoscaler", NS, NAME)]


def test_hpa_defaults_to_the_spec_bounds_and_clamps() -> None:
    spec = llm(model="m/abc", autoscaling={"minReplicas": 2, "maxReplicas": 5})
    assert r.autoscaled(spec)
    assert by_kind(r.llm_objects(spec, 2))["HorizontalPodAutoscaler"] == expected_hpa(2, 5, "5")
    assert r.hpa(spec, (0, 0))["spec"]["minReplicas"] == 1
    assert r.hpa(spec, (3, 2))["spec"]["maxReplicas"] == 3
    assert r.autoscaling_bounds(llm(model="m/abc", autoscaling={"minReplicas": 3})) == (3, 3)


def test_hpa_metric_selector_matches_the_pods_in_the_simulated_metrics_server() -> None:
    template = r.deployment(FULL, 1)["spec"]["template"]
    hpa = r.hpa(FULL, (1, 3))
    metric = hpa["spec"]["metrics"][0]["external"]["metric"]
    selector = ",".join(f"{k}={v}" for k, v in metric["selector"]["matchLabels"].items())
    pod = {"metadata": {"name": "qwen-3b-abc", "namespace": NS, "labels": template["metadata"]["labels"],
                        "annotations": {"sim.kubellm.io/queue-length": "9"}},
           "spec": {"nodeName": "gpu-0"}, "status": {"phase": "Running"}}
    other = {**pod, "metadata": {**pod["metadata"], "name": "other",
                                 "labels": r.pod_labels(llm("qwen-7b", model="m/abc"))}}
    values = metric_values([pod, other], selector, 0, lambda _: True)
    assert [(v["metricName"], v["value"], v["metricLabels"]["pod"]) for v in values] == [
        ("vllm_num_requests_waiting", "9", "qwen-3b-abc")]


# --- dividing the bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize(("low", "high", "placement", "expected"), [
    (1, 3, {"a": 2}, {"a": (1, 3)}),
    (2, 6, {"a": 1, "b": 1}, {"a": (1, 3), "b": (1, 3)}),
    (1, 4, {"a": 1, "b": 1}, {"a": (1, 2), "b": (1, 2)}),  # each cluster with replicas keeps one
    (3, 9, {"a": 2, "b": 1}, {"a": (2, 6), "b": (1, 3)}),
    (4, 10, {"a": 3, "b": 1}, {"a": (3, 8), "b": (1, 2)}),
    (2, 10, {"a": 3, "b": 1}, {"a": (1, 7), "b": (1, 3)}),
    (1, 5, {"a": 1, "b": 1, "c": 1}, {"a": (1, 2), "b": (1, 2), "c": (1, 1)}),  # ties: names in order
    (1, 1, {"a": 1, "b": 1}, {"a": (1, 1), "b": (1, 1)}),  # more clusters than replicas allowed
    (10, 10, {"a": 9, "b": 1}, {"a": (9, 9), "b": (1, 1)}),
    (10, 20, {"a": 98, "b": 1, "c": 1}, {"a": (8, 18), "b": (1, 1), "c": (1, 1)}),
    (2, 4, {"a": 2, "z": 0}, {"a": (2, 4)}),  # no replicas: no bounds (no Deployment there)
    (2, 4, {}, {}),
])
def test_hpa_bounds_examples(low: int, high: int, placement: dict[str, int],
                             expected: dict[str, tuple[int, int]]) -> None:
    assert r.hpa_bounds(low, high, placement) == expected


@given(low=st.integers(1, 50), extra=st.integers(0, 50),
       placement=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 40), max_size=8))
def test_hpa_bounds_properties(low: int, extra: int, placement: dict[str, int]) -> None:
    high = low + extra
    bounds = r.hpa_bounds(low, high, placement)
    placed = {c for c, n in placement.items() if n > 0}
    assert set(bounds) == placed
    if not placed:
        return
    mins = [b[0] for b in bounds.values()]
    maxes = [b[1] for b in bounds.values()]
    assert all(1 <= lo <= hi for lo, hi in bounds.values())
    assert sum(mins) == max(low, len(placed))
    assert sum(maxes) == max(high, sum(mins))
    # more replicas placed never means smaller bounds
    ordered = sorted(placed, key=lambda c: placement[c])
    for small, big in itertools.pairwise(ordered):
        if placement[small] < placement[big]:
            assert bounds[small][0] <= bounds[big][0] and bounds[small][1] <= bounds[big][1]
    assert r.hpa_bounds(low, high, dict(reversed(list(placement.items())))) == bounds  # order-independent


# --- names, labels, identities --------------------------------------------------------------------------


def test_selector_labels_and_status_selector() -> None:
    assert r.selector_labels(FULL) == LABELS
    assert r.status_selector(FULL) == ("app.kubernetes.io/instance=qwen-3b,app.kubernetes.io/managed-by=kubellm,"
                                       "app.kubernetes.io/name=vllm")
    selector = parse_label_selector(r.status_selector(FULL))
    assert selector.matches(r.pod_labels(FULL))
    assert not selector.matches(r.pod_labels(llm("qwen-7b")))


def test_endpoint() -> None:
    assert r.llm_endpoint(FULL) == "http://qwen-3b.team-a.svc.cluster.local:8000/v1"


def test_owner_annotations_without_uid() -> None:
    obj = {"metadata": {"name": "x", "namespace": "ns"}}
    assert r.owner_annotations(obj, "LLMService") == {"kubellm.io/owner": "ns/x", "kubellm.io/owner-kind": "LLMService"}


def test_owned_and_stale_identities() -> None:
    owned = r.owned_identities(FULL)
    assert owned == [r.ObjectId("autoscaling/v2", "HorizontalPodAutoscaler", NS, NAME),
                     r.ObjectId("v1", "Service", NS, NAME), r.ObjectId("apps/v1", "Deployment", NS, NAME)]
    objs = r.llm_objects(FULL, 1)
    assert {r.identity(o) for o in objs if o["kind"] != "Namespace"} == set(owned)
    assert r.stale_identities(FULL, objs) == []


def test_longest_name_stays_valid() -> None:
    name = "q" + "x" * 61 + "b"
    objs = r.llm_objects(llm(name, model="m/abc", autoscaling={"maxReplicas": 2}), 1)
    for obj in objs[1:]:
        assert obj["metadata"]["name"] == name
        assert all(len(v) <= 63 for v in obj["metadata"]["labels"].values())


def test_child_name() -> None:
    assert r.child_name("chat", "rag") == "chat-rag"
    assert r.child_name("chat") == "chat"
    long = "a" + "b" * 62
    cut = r.child_name(long, "rag")
    assert len(cut) == 63 and DNS_LABEL.match(cut) and cut.endswith("-rag-" + cut[-8:])
    assert cut == r.child_name(long, "rag")
    assert cut != r.child_name("a" + "b" * 61 + "c", "rag")
    assert len(r.child_name("a" * 60 + "-" * 2 + "b", "rag")) <= 63
    assert DNS_LABEL.match(r.child_name("a" * 52 + "-" * 10 + "b", "rag"))  # no "--" left dangling at the cut
    assert r.child_name("a" * 59, "rag") == "a" * 59 + "-rag"
    assert r.child_name("a" * 60, "rag").startswith("a" * 50 + "-rag-")


@given(base=st.from_regex(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True),
       suffix=st.sampled_from(["", "rag", "rag-chroma", "x" * 70]))
def test_child_name_is_a_dns_label(base: str, suffix: str) -> None:
    name = r.child_name(base, suffix)
    assert len(name) <= 63 and DNS_LABEL.match(name)
    full = f"{base}-{suffix}" if suffix else base
    assert name == full or len(full) > 63


Entry = tuple[str, str | None, dict[str, Any]]


def managed(*entries: Entry) -> dict[str, Any]:
    return {"metadata": {"name": NAME, "namespace": NS, "managedFields": [
        {"manager": m, "operation": "Update" if sub else "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
         **({"subresource": sub} if sub else {}), "fieldsV1": f} for m, sub, f in entries]}}


def test_replicas_are_applied_until_the_hpa_owns_them() -> None:
    ours: Entry = ("kubellm-controller", None, {"f:spec": {"f:replicas": {}, "f:strategy": {}}})
    ours_without: Entry = ("kubellm-controller", None, {"f:spec": {"f:strategy": {}}})
    # as a real kube-apiserver records the HPA controller's update of the scale subresource
    hpa: Entry = ("kube-controller-manager", "scale", {"f:spec": {"f:replicas": {}}})
    other: Entry = ("kubectl-label", None, {"f:metadata": {"f:labels": {}}})
    plain = llm(model="m/abc")
    scaled = llm(model="m/abc", autoscaling={"minReplicas": 1, "maxReplicas": 3})
    assert not r.replicas_managed_elsewhere(None)
    assert not r.replicas_managed_elsewhere(managed(ours, other))
    assert r.replicas_managed_elsewhere(managed(ours_without, hpa))
    assert r.apply_replicas(scaled, None)  # creation: the placed count
    assert r.apply_replicas(scaled, managed(ours, other))  # the HPA has not scaled yet: keep handing it over
    assert not r.apply_replicas(scaled, managed(ours_without, hpa))
    assert r.apply_replicas(plain, managed(ours_without, hpa))  # no autoscaling: the controller takes it back
