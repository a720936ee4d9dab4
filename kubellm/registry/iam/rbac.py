"""Role, ClusterRole, RoleBinding, ClusterRoleBinding: RBAC objects with no status."""

from __future__ import annotations

from kubellm.registry.strategy import Strategy


class RoleStrategy(Strategy):
    printer_columns = (("Created At", "date", ".metadata.creationTimestamp"),)


class BindingStrategy(Strategy):
    printer_columns = (
        ("Role", "string", ".roleRef.name"),
        ("Age", "date", ".metadata.creationTimestamp"),
    )
