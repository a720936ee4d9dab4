"""The permissions the node simulator needs on its cluster, as objects to apply (the dev clusters bind
them to the simulator's user): a kubelet's nodes, leases, pods and events, the metrics API's Service and
APIService, reading the front-proxy settings and asking SubjectAccessReviews (system:auth-delegator)."""

from __future__ import annotations

from typing import Any

CLUSTER_ROLE = "kubellm:nodesim"
RBAC = "rbac.authorization.k8s.io"


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def cluster_role() -> dict[str, Any]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": CLUSTER_ROLE},
            "rules": [
                _rule([""], ["nodes"], ["get", "list", "watch", "create", "patch", "update"]),
                _rule([""], ["nodes/status"], ["get", "patch", "update"]),
                _rule(["coordination.k8s.io"], ["leases"], ["get", "create", "patch", "update"]),
                _rule([""], ["pods"], ["get", "list", "watch", "delete"]),
                _rule([""], ["pods/status"], ["get", "patch", "update"]),
                _rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"]),
                _rule([""], ["services"], ["get", "create", "patch", "update"]),
                _rule(["apiregistration.k8s.io"], ["apiservices"], ["get", "create", "patch", "update"]),
            ]}


def objects(user: str) -> list[dict[str, Any]]:
    """The ClusterRole and the bindings that give `user` what the simulator needs."""
    subject = [{"apiGroup": RBAC, "kind": "User", "name": user}]

    def binding(kind: str, name: str, role_kind: str, role: str, namespace: str = "") -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
        return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": meta,
                "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role}, "subjects": subject}
    return [cluster_role(),
            binding("ClusterRoleBinding", CLUSTER_ROLE, "ClusterRole", CLUSTER_ROLE),
            binding("ClusterRoleBinding", f"{CLUSTER_ROLE}:auth-delegator", "ClusterRole", "system:auth-delegator"),
            binding("RoleBinding", f"{CLUSTER_ROLE}:authentication-reader", "Role",
                    "extension-apiserver-authentication-reader", "kube-system")]
