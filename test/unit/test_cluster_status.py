"""The Cluster controller's pure parts: GPU inventory from nodes and pods, conditions after a probe, and the
expiry of stored credentials."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from kubellm.controller.cluster import connection, status
from kubellm.controller.cluster.inventory import gpu_inventory, pod_gpus
from kubellm.controller.cluster.probe import Observation, ProbeFailure

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
TIMING = status.Timing(interval=10, stale_after=20, expiry_warning=timedelta(days=30))


def node(name: str, gpus: int, product: str = "NVIDIA-A100-SXM4-80GB", *, ready: bool = True,
         allocatable: int | None = None, unschedulable: bool = False, memory: str = "81920") -> dict[str, Any]:
    labels = {"nvidia.com/gpu.product": product, "nvidia.com/gpu.memory": memory}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"unschedulable": unschedulable},
            "status": {"capacity": {"nvidia.com/gpu": str(gpus), "cpu": "64"},
                       "allocatable": {"nvidia.com/gpu": str(gpus if allocatable is None else allocatable)},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pod(node_name: str, gpus: int, phase: str = "Running", *, limit_only: bool = False,
        init: int = 0) -> dict[str, Any]:
    res = {"limits": {"nvidia.com/gpu": str(gpus)}} if limit_only else {"requests": {"nvidia.com/gpu": str(gpus)}}
    spec: dict[str, Any] = {"nodeName": node_name, "containers": [{"name": "vllm", "resources": res}]}
    if init:
        spec["initContainers"] = [{"name": "fetch", "resources": {"requests": {"nvidia.com/gpu": str(init)}}}]
    return {"spec": spec, "status": {"phase": phase}}


def test_inventory_by_model_counts_what_pods_hold() -> None:
    nodes = [node("a1", 8), node("a2", 8), node("l1", 4, "NVIDIA-L4", memory="23034"), node("cpu", 0)]
    pods = [pod("a1", 2), pod("a1", 1, limit_only=True), pod("a2", 8, "Pending"), pod("a2", 4, "Succeeded"),
            pod("l1", 1, "Failed")]
    assert gpu_inventory(nodes, pods) == [
        {"model": "NVIDIA-A100-SXM4-80GB", "memoryMiB": 81920, "nodes": 2, "count": 16, "allocatable": 16,
         "available": 5, "largestFree": 5},
        {"model": "NVIDIA-L4", "memoryMiB": 23034, "nodes": 1, "count": 4, "allocatable": 4, "available": 4,
         "largestFree": 4},
    ]


def test_inventory_leaves_out_nodes_that_cannot_take_pods() -> None:
    nodes = [node("a1", 8, ready=False), node("a2", 8, unschedulable=True), node("a3", 8, allocatable=6),
             node("x", 2, product="")]
    inv = {g["model"]: g for g in gpu_inventory(nodes, [pod("a3", 7), pod("gone", 1)])}
    a100 = inv["NVIDIA-A100-SXM4-80GB"]
    assert (a100["count"], a100["nodes"], a100["allocatable"], a100["available"]) == (24, 1, 6, 0)
    assert inv["unknown"]["count"] == 2


def test_pod_gpus_as_the_scheduler_counts() -> None:
    assert pod_gpus(pod("n", 2, init=3)) == 3
    assert pod_gpus(pod("n", 2, init=1)) == 2
    assert pod_gpus({"spec": {"containers": [{"resources": {"requests": {"nvidia.com/gpu": "2.5"}}}]}}) == 0
    assert pod_gpus({"spec": {"containers": [{}, {"resources": {"limits": {"nvidia.com/gpu": 1}}}]}}) == 1


def observation(runtime_class: bool | None = True) -> Observation:
    return Observation("v1.36.2", [node("a1", 4)], [pod("a1", 1)], runtime_class)


def cond(st: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in st["conditions"] if c["type"] == type_)


def test_a_good_probe_makes_the_cluster_ready() -> None:
    st = status.probed({}, observation(), NOW, None, TIMING, 3)
    assert (st["kubernetesVersion"], st["nodeCount"]) == ("v1.36.2", 1)
    assert st["lastProbeTime"] == "2026-11-29T12:00:00Z"
    assert st["gpus"][0]["available"] == 3
    ready = cond(st, "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "ClusterReady", 3)
    assert cond(st, "Reachable")["status"] == "True" and cond(st, "GPURuntimeReady")["status"] == "True"
    # the transition time stays while the status does
    later = status.probed(st, observation(), NOW + timedelta(seconds=10), None, TIMING, 3)
    assert cond(later, "Ready")["lastTransitionTime"] == "2026-11-29T12:00:00Z"
    assert later["lastProbeTime"] == "2026-11-29T12:00:10Z"


def test_missing_runtime_class_is_not_ready_with_what_to_do() -> None:
    st = status.probed({}, observation(runtime_class=False), NOW, None, TIMING, 1)
    ready = cond(st, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "RuntimeClassMissing"
    assert 'RuntimeClass "nvidia" not found' in ready["message"] and "GPU operator" in ready["message"]
    assert cond(st, "GPURuntimeReady")["status"] == "False"
    unknown = status.probed({}, observation(runtime_class=None), NOW, None, TIMING, 1)
    assert cond(unknown, "GPURuntimeReady")["status"] == "Unknown" and cond(unknown, "Ready")["status"] == "True"


def test_an_unreachable_cluster_turns_stale_after_stale_after() -> None:
    ok = status.probed({}, observation(), NOW, None, TIMING, 1)
    down = ProbeFailure("Unreachable", "cannot connect to https://x: Connection refused", reachable=False)
    first = status.failed(ok, down, NOW + timedelta(seconds=10), None, TIMING, 1)
    assert cond(first, "Reachable")["status"] == "False" and cond(first, "Reachable")["reason"] == "Unreachable"
    assert cond(first, "Ready")["status"] == "True"  # one missed probe is not yet stale
    assert first["gpus"] == ok["gpus"] and first["lastProbeTime"] == ok["lastProbeTime"]
    stale = status.failed(first, down, NOW + timedelta(seconds=20), None, TIMING, 1)
    ready = cond(stale, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ProbeStale")
    assert ready["message"] == ("no successful probe since 2026-11-29T12:00:00Z: cannot connect to https://x: "
                                "Connection refused")
    back = status.probed(stale, observation(), NOW + timedelta(seconds=30), None, TIMING, 1)
    assert cond(back, "Ready")["status"] == "True" and cond(back, "Reachable")["status"] == "True"
    never = status.failed({}, down, NOW, None, TIMING, 1)
    assert cond(never, "Ready")["reason"] == "ProbeStale"
    assert "no successful probe yet" in cond(never, "Ready")["message"]


def test_wrong_credentials_are_not_ready_at_once() -> None:
    ok = status.probed({}, observation(), NOW, None, TIMING, 1)
    refused = ProbeFailure("Unauthorized", "the member cluster rejected the credentials", reachable=True,
                           definitive=True)
    st = status.failed(ok, refused, NOW + timedelta(seconds=1), None, TIMING, 1)
    assert cond(st, "Ready")["reason"] == "Unauthorized" and cond(st, "Reachable")["status"] == "True"


def certificate(not_after: datetime) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubellm")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(not_after - timedelta(days=365)).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(Encoding.PEM)).decode()


def test_credentials_expiry_from_certificate_and_jwt() -> None:
    soon = {"spec": {"credentials": {"clientCertificate": certificate(NOW + timedelta(days=3))}}}
    exp = connection.expiry(soon)
    assert exp is not None and exp.what == "client certificate" and exp.not_after == NOW + timedelta(days=3)
    st = status.probed({}, observation(), NOW, exp, TIMING, 1)
    expiring = cond(st, "CredentialsExpiringSoon")
    assert (expiring["status"], expiring["reason"]) == ("True", "CredentialsExpireSoon")
    assert "expires at 2026-12-02T12:00:00Z (in 3 days)" in expiring["message"]
    payload = base64.urlsafe_b64encode(json.dumps({"exp": int((NOW - timedelta(hours=1)).timestamp())}).encode())
    token = {"spec": {"credentials": {"token": f"eyJhbGciOiJSUzI1NiJ9.{payload.decode().rstrip('=')}.c2ln"}}}
    expired = connection.expiry(token)
    assert expired is not None and expired.what == "token"
    assert cond(status.probed({}, observation(), NOW, expired, TIMING, 1),
                "CredentialsExpiringSoon")["reason"] == "CredentialsExpired"
    far = connection.expiry({"spec": {"credentials": {"clientCertificate": certificate(NOW + timedelta(days=99))}}})
    valid = cond(status.probed({}, observation(), NOW, far, TIMING, 1), "CredentialsExpiringSoon")
    assert (valid["status"], valid["reason"]) == ("False", "CredentialsValid")
    assert connection.expiry({"spec": {"credentials": {"token": "opaque-token"}}}) is None
    assert connection.expiry({"spec": {"credentials": {"token": "a.!!!.c"}}}) is None


def test_client_config_from_a_cluster() -> None:
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    cfg = connection.client_config({"spec": {"apiEndpoint": "https://10.0.0.1:6443", "caBundle": ca,
                                             "credentials": {"token": "t0ken"}}}, timeout=5)
    assert (cfg.host, cfg.ca_data, cfg.token, cfg.cert_data, cfg.timeout) == (
        "https://10.0.0.1:6443", b"-----BEGIN CERTIFICATE-----\n", "t0ken", None, 5)
    with pytest.raises(connection.CredentialsError, match="neither a token nor a client certificate"):
        connection.client_config({"spec": {"apiEndpoint": "https://x", "credentials": {}}}, timeout=5)
    a = {"spec": {"apiEndpoint": "https://x", "credentials": {"token": "1"}}}
    b = {"spec": {"apiEndpoint": "https://x", "credentials": {"token": "2"}}}
    assert connection.fingerprint(a) != connection.fingerprint(b)
    assert connection.fingerprint(a) == connection.fingerprint(dict(a))
