"""Complete valid objects of every served kind: every optional struct and list present, with one item or two.

Shared by the tests that break them field by field (unit/test_declared.py) and the fuzzer that repairs what it
generates with them (e2e/test_schema_fuzz.py). `FULL[kind]` names its object x1 (in namespace default).
"""

from __future__ import annotations

from typing import Any

from kubellm.apis.scheme import ResourceInfo
from kubellm.registry.registry import ALL_RESOURCES

NOW = "2025-01-02T03:04:05Z"
B64 = "Zm9vYmFy"
CONDITION = {"type": "Ready", "status": "True", "observedGeneration": 1, "reason": "AllGood", "message": "ok",
             "lastTransitionTime": NOW}
SELECTOR = {"matchLabels": {"tier": "gold"}, "matchExpressions": [{"key": "gpu", "operator": "In", "values": ["a"]}]}


def _obj(kind: str, namespaced: bool, **body: Any) -> dict[str, Any]:
    info = KINDS[kind]
    meta = {"name": "x1", **({"namespace": "default"} if namespaced else {})}
    return {"apiVersion": info.api_version, "kind": kind, "metadata": meta, **body}


KINDS: dict[str, ResourceInfo] = {info.kind: info for info in ALL_RESOURCES}

FULL: dict[str, dict[str, Any]] = {
    "User": _obj("User", False, spec={"email": "a@example.com", "displayName": "A", "groups": ["dev"],
                                      "state": "Active"},
                 status={"state": "Active", "lockedUntil": NOW, "failedLoginCount": 1, "lastLoginTime": NOW}),
    "LoginRecord": _obj("LoginRecord", False, spec={"username": "a", "success": True, "reason": "Succeeded",
                                                    "sourceIP": "10.0.0.1", "userAgent": "kubectl", "time": NOW}),
    "Role": _obj("Role", True, rules=[{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]),
    "ClusterRole": _obj("ClusterRole", False, rules=[{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
                        aggregationRule={"clusterRoleSelectors": [SELECTOR]}),
    "RoleBinding": _obj("RoleBinding", True, subjects=[{"kind": "User", "name": "a"}],
                        roleRef={"apiGroup": "iam.kubellm.io", "kind": "Role", "name": "r"}),
    "ClusterRoleBinding": _obj("ClusterRoleBinding", False, subjects=[{"kind": "Group", "name": "g"}],
                               roleRef={"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": "r"}),
    "Cluster": _obj(
        "Cluster", False,
        spec={"apiEndpoint": "https://10.0.0.1:6443", "caBundle": B64, "region": "r", "zone": "z", "provider": "p",
              "credentials": {"token": "abc.def", "clientCertificate": B64, "clientKey": B64},
              "taints": [{"key": "gpu", "value": "a100", "effect": "NoSchedule"}], "unschedulable": False},
        status={"conditions": [CONDITION], "kubernetesVersion": "v1.30.0", "nodeCount": 3,
                "gpus": [{"model": "A100", "memoryMiB": 81920, "nodes": 2, "count": 8,
                          "allocatable": 4, "available": 3, "largestFree": 2}], "lastProbeTime": NOW},
    ),
    "LLMService": _obj(
        "LLMService", True,
        spec={"model": "Qwen/Qwen2.5-3B-Instruct", "quantization": "awq", "maxModelLen": 4096,
              "gpuMemoryUtilization": "0.9", "replicas": 1, "image": "vllm/vllm-openai:v0.6.0",
              "hfEndpoint": "https://hf-mirror.com", "resources": {"gpu": 1, "cpu": "4", "memory": "16Gi"},
              "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3, "waitingThreshold": 5},
              "placement": {
                  "clusterAffinity": {"clusterNames": ["a"], "labelSelector": SELECTOR},
                  "clusterTolerations": [{"key": "gpu", "operator": "Equal", "value": "a100", "effect": "NoSchedule"}],
                  "replicaScheduling": {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted",
                                        "weightPreference": {"staticWeightList": [
                                            {"targetCluster": {"clusterNames": ["a"]}, "weight": 2}]}}},
              "extraArgs": ["--enable-prefix-caching"], "env": [{"name": "A", "value": "1"}]},
        status={"phase": "Serving", "endpoint": "http://x", "replicas": 2, "readyReplicas": 1, "selector": "app=x",
                "message": "m", "observedGeneration": 1, "conditions": [CONDITION],
                "clusters": [{"name": "a", "replicas": 2, "readyReplicas": 1, "phase": "Serving", "message": "m"}]},
    ),
    "RAGService": _obj(
        "RAGService", True,
        spec={"llmServiceRef": {"name": "qwen"}, "embedding": {"model": "bge", "dimension": 512},
              "vectorStore": {"type": "chromadb", "endpoint": "", "collection": "docs", "storage": "5Gi",
                              "storageClassName": "longhorn"},
              "sources": [{"name": "docs", "type": "git", "uri": "http://git/x.git", "refreshInterval": "5m"},
                          {"name": "faq", "type": "configMap", "configMapRef": {"name": "faq"}}],
              "chunking": {"chunkSize": 512, "chunkOverlap": 64}, "retrieval": {"topK": 4}, "replicas": 1},
        status={"phase": "Serving", "endpoint": "http://x", "readyReplicas": 1, "indexedDocuments": 3, "message": "m",
                "observedGeneration": 1, "conditions": [CONDITION]},
    ),
    "Namespace": _obj("Namespace", False, spec={"finalizers": ["kubernetes"]}, status={"phase": "Active"}),
    "Event": _obj(
        "Event", True,
        involvedObject={"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService", "namespace": "default",
                        "name": "qwen", "uid": "u-1", "resourceVersion": "7", "fieldPath": "spec"},
        reason="Placed", message="placed on gpu-a", source={"component": "kubellm-controller", "host": "n1"},
        firstTimestamp=NOW, lastTimestamp=NOW, count=2, type="Normal", eventTime="2025-01-02T03:04:05.123456Z",
        series={"count": 2, "lastObservedTime": "2025-01-02T03:04:05.123456Z"}, action="Place",
        related={"kind": "Cluster", "name": "gpu-a"}, reportingComponent="kubellm-controller",
        reportingInstance="kcm-0",
    ),
    "Lease": _obj("Lease", True, spec={"holderIdentity": "kcm-0", "leaseDurationSeconds": 15,
                                       "acquireTime": "2025-01-02T03:04:05.000000Z",
                                       "renewTime": "2025-01-02T03:04:05.000000Z", "leaseTransitions": 1}),
}
