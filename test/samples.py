"""Minimal valid objects of every served kind, and a spec change for each (used by the Store suite)."""

from __future__ import annotations

import copy
from typing import Any

from kubellm.apis.scheme import ResourceInfo

SPECS: dict[str, dict[str, Any]] = {
    "User": {"spec": {"email": "alice@example.com", "groups": ["dev"]}},
    "Role": {"rules": [{"verbs": ["get"], "apiGroups": ["model.kubellm.io"], "resources": ["llmservices"]}]},
    "ClusterRole": {"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]},
    "RoleBinding": {"roleRef": {"apiGroup": "iam.kubellm.io", "kind": "Role", "name": "viewer"},
                    "subjects": [{"kind": "User", "name": "alice"}]},
    "ClusterRoleBinding": {"roleRef": {"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": "admin"},
                           "subjects": [{"kind": "Group", "name": "ops"}]},
    "LoginRecord": {"spec": {"username": "alice", "success": True, "reason": "Succeeded"}},
    "Cluster": {"spec": {"apiEndpoint": "https://10.0.0.1:6443", "credentials": {"token": "abc.def"}}},
    "LLMService": {"spec": {"model": "Qwen/Qwen2.5-3B-Instruct"}},
    "RAGService": {"spec": {"llmServiceRef": {"name": "qwen"}, "embedding": {"model": "bge-small-zh"}}},
    "Namespace": {"spec": {}},
    "Event": {"involvedObject": {"kind": "LLMService", "name": "qwen"}, "reason": "Placed", "type": "Normal",
              "message": "placed"},
    "Lease": {"spec": {"holderIdentity": "kcm-0", "leaseDurationSeconds": 15}},
}

# A change to the part of the object that bumps metadata.generation.
SPEC_CHANGES: dict[str, tuple[str, Any]] = {
    "User": ("spec.displayName", "Alice A."),
    "Role": ("rules.0.verbs", ["get", "list"]),
    "ClusterRole": ("rules.0.verbs", ["get", "head"]),
    "RoleBinding": ("subjects.0.name", "bob"),
    "ClusterRoleBinding": ("subjects.0.name", "dev"),
    "LoginRecord": ("metadata.labels", {"reviewed": "true"}),  # its spec is immutable
    "Cluster": ("spec.region", "cn-east"),
    "LLMService": ("spec.replicas", 3),
    "RAGService": ("spec.replicas", 2),
    "Namespace": ("metadata.labels", {"team": "a"}),  # nothing of its own bumps generation
    "Event": ("message", "placed again"),
    "Lease": ("spec.holderIdentity", "kcm-1"),
}

IMMUTABLE_SPEC = {"LoginRecord", "Namespace"}

HELD_ON_DELETE = {"Namespace": "kubernetes"}
STATUS_ON_CREATE = {"Namespace": {"phase": "Active"}}
"""Kinds whose create sets a status of its own (a namespace starts Active); others clear it."""
"""Kinds a delete only marks until a finalizer of their own goes (a namespace, until it is emptied)."""

# A valid status for kinds with the status subresource.
STATUSES: dict[str, dict[str, Any]] = {
    "User": {"state": "Active"},
    "Cluster": {"kubernetesVersion": "v1.30.2", "nodeCount": 3},
    "LLMService": {"phase": "Serving", "replicas": 1, "readyReplicas": 1, "endpoint": "http://qwen.ns1:8000"},
    "RAGService": {"phase": "Pending"},
    "Namespace": {"phase": "Terminating"},
}


def make(info: ResourceInfo, name: str, namespace: str = "ns1", **meta: Any) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, **meta}
    if info.namespaced:
        md["namespace"] = namespace
    return {"apiVersion": info.api_version, "kind": info.kind, "metadata": md, **copy.deepcopy(SPECS[info.kind])}


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    node: Any = obj
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def get_path(obj: dict[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node.get(part)
    return node
