"""The default ClusterRoles and ClusterRoleBindings, as Kubernetes' bootstrap policy for KubeLLM's groups.

`admin`, `edit` and `view` are aggregated roles, like Kubernetes' user-facing roles: their rules are those
of every ClusterRole labelled `iam.kubellm.io/aggregate-to-admin|edit|view: "true"`, so an extension adds
permissions to them by labelling its own ClusterRole. `edit` aggregates into `admin` and `view` into
`edit`. The rules for KubeLLM's resources live in `system:aggregate-to-*`:

- view: read (get, list, watch) LLMServices and RAGServices (with status and scale) and Clusters (with
  status). Not Users, LoginRecords, Roles or bindings: as Kubernetes' view has no secrets or RBAC objects.
- edit: also write (create, update, patch, delete, deletecollection) LLMServices, their scale, and
  RAGServices. Not status, which is the controllers'.
- admin: also manage Roles and RoleBindings in the namespace. Like Kubernetes' admin it has no `escalate`
  or `bind`: an admin can only grant what it holds.

`system:kubellm:controller-manager`, bound to the user of that name (as kube's `system:kube-controller-manager`),
holds what the controllers need: the model resources (finalizers included) and their status, Clusters with their status
and their `credentials` (which no other default role reads), Events, Namespaces and the leader-election Leases.

`cluster-admin` (everything; bound to `system:masters` as in Kubernetes) and the discovery roles bound to
every authenticated user (`system:discovery`, `system:basic-user`, `system:public-info-viewer`) complete the
set, so non-admin users can run kubectl's discovery and `kubectl auth can-i`.
"""

from __future__ import annotations

import copy
from typing import Any

from kubellm.apis.iam.v1alpha1.types import GROUP as IAM_GROUP
from kubellm.apis.iam.v1alpha1.types import VERSION as IAM_VERSION
from kubellm.service.identity import ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, SYSTEM_MASTERS

MODEL_GROUP = "model.kubellm.io"
CLUSTER_GROUP = "cluster.kubellm.io"

BOOTSTRAPPING_LABEL = "kubernetes.io/bootstrapping"
BOOTSTRAPPING_VALUE = "rbac-defaults"
AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate"
AGGREGATE_TO_ADMIN = f"{IAM_GROUP}/aggregate-to-admin"
AGGREGATE_TO_EDIT = f"{IAM_GROUP}/aggregate-to-edit"
AGGREGATE_TO_VIEW = f"{IAM_GROUP}/aggregate-to-view"

CONTROLLER_MANAGER = "system:kubellm:controller-manager"
"""The controller manager's user name and its ClusterRole (and binding)."""

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]

_API_VERSION = f"{IAM_GROUP}/{IAM_VERSION}"
_PUBLIC_INFO = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def _rule(verbs: list[str], group: str, resources: list[str]) -> dict[str, Any]:
    return {"verbs": list(verbs), "apiGroups": [group], "resources": list(resources)}


def _urls(verbs: list[str], urls: list[str]) -> dict[str, Any]:
    return {"verbs": list(verbs), "nonResourceURLs": list(urls)}


def _cluster_role(
    name: str,
    rules: list[dict[str, Any]],
    labels: dict[str, str] | None = None,
    aggregate_from: str | None = None,
) -> dict[str, Any]:
    role: dict[str, Any] = {
        "apiVersion": _API_VERSION,
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {BOOTSTRAPPING_LABEL: BOOTSTRAPPING_VALUE, **(labels or {})},
            "annotations": {AUTOUPDATE_ANNOTATION: "true"},
        },
        "rules": rules,
    }
    if aggregate_from is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {aggregate_from: "true"}}]}
    return role


_CLUSTER_ROLES: list[dict[str, Any]] = [
    _cluster_role("cluster-admin", [_rule(["*"], "*", ["*"]), _urls(["*"], ["*"])]),
    _cluster_role("admin", [], aggregate_from=AGGREGATE_TO_ADMIN),
    _cluster_role("edit", [], labels={AGGREGATE_TO_ADMIN: "true"}, aggregate_from=AGGREGATE_TO_EDIT),
    _cluster_role("view", [], labels={AGGREGATE_TO_EDIT: "true"}, aggregate_from=AGGREGATE_TO_VIEW),
    _cluster_role(
        "system:aggregate-to-admin",
        [_rule(READ + WRITE, IAM_GROUP, ["rolebindings", "roles"])],
        labels={AGGREGATE_TO_ADMIN: "true"},
    ),
    _cluster_role(
        "system:aggregate-to-edit",
        [_rule(WRITE, MODEL_GROUP, ["llmservices", "llmservices/scale", "ragservices"])],
        labels={AGGREGATE_TO_EDIT: "true"},
    ),
    _cluster_role(
        "system:aggregate-to-view",
        [
            _rule(
                READ,
                MODEL_GROUP,
                ["llmservices", "llmservices/scale", "llmservices/status", "ragservices", "ragservices/status"],
            ),
            _rule(READ, CLUSTER_GROUP, ["clusters", "clusters/status"]),
            _rule(READ, "", ["namespaces", "namespaces/status", "events"]),
        ],
        labels={AGGREGATE_TO_VIEW: "true"},
    ),
    _cluster_role(
        CONTROLLER_MANAGER,
        [
            _rule([*READ, "patch", "update"], MODEL_GROUP, ["llmservices", "ragservices"]),
            _rule(["get", "patch", "update"], MODEL_GROUP, ["llmservices/status", "ragservices/status"]),
            _rule(READ, CLUSTER_GROUP, ["clusters"]),
            _rule(["get", "patch", "update"], CLUSTER_GROUP, ["clusters/status"]),
            _rule(["get"], CLUSTER_GROUP, ["clusters/credentials"]),
            _rule(["create", "patch", "update"], "", ["events"]),
            _rule(READ, "", ["namespaces"]),
            _rule([*READ, "create", "patch", "update"], "coordination.k8s.io", ["leases"]),
        ],
    ),
    _cluster_role(
        "system:discovery",
        [
            _urls(["get"], ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", *_PUBLIC_INFO]),
        ],
    ),
    _cluster_role(
        "system:basic-user",
        [
            _rule(["create"], "authorization.k8s.io", ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
            _rule(["create"], "authentication.k8s.io", ["selfsubjectreviews"]),
        ],
    ),
    _cluster_role(
        "system:public-info-viewer",
        [_urls(["get"], _PUBLIC_INFO)],
    ),
]


def _binding(role: str, groups: list[str], users: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "apiVersion": _API_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": role,
            "labels": {BOOTSTRAPPING_LABEL: BOOTSTRAPPING_VALUE},
            "annotations": {AUTOUPDATE_ANNOTATION: "true"},
        },
        "subjects": [{"kind": "Group", "apiGroup": IAM_GROUP, "name": g} for g in groups]
        + [{"kind": "User", "apiGroup": IAM_GROUP, "name": u} for u in users],
        "roleRef": {"apiGroup": IAM_GROUP, "kind": "ClusterRole", "name": role},
    }


_CLUSTER_ROLE_BINDINGS: list[dict[str, Any]] = [
    _binding("cluster-admin", [SYSTEM_MASTERS]),
    _binding(CONTROLLER_MANAGER, [], (CONTROLLER_MANAGER,)),
    _binding("system:discovery", [ALL_AUTHENTICATED]),
    _binding("system:basic-user", [ALL_AUTHENTICATED]),
    _binding("system:public-info-viewer", [ALL_AUTHENTICATED, ALL_UNAUTHENTICATED]),
]


def default_cluster_roles() -> list[dict[str, Any]]:
    """The default ClusterRoles as JSON objects (fresh copies: callers may change them)."""
    return copy.deepcopy(_CLUSTER_ROLES)


def default_cluster_role_bindings() -> list[dict[str, Any]]:
    """The default ClusterRoleBindings as JSON objects (fresh copies: callers may change them)."""
    return copy.deepcopy(_CLUSTER_ROLE_BINDINGS)
