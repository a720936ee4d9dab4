"""Role, ClusterRole, RoleBinding, ClusterRoleBinding: RBAC objects with no status."""

from __future__ import annotations

from kubellm.registry.strategy import Strategy


def _rbac_name(value: str) -> list[str]:
    """RBAC names are path segments (as in rbac.authorization.k8s.io): anything but '/', '%', '.', '..'."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


class RoleStrategy(Strategy):
    name_validator = staticmethod(_rbac_name)
    printer_columns = (("Created At", "date", ".metadata.creationTimestamp"),)


class BindingStrategy(Strategy):
    name_validator = staticmethod(_rbac_name)
    printer_columns = (
        ("Role", "string", ".roleRef.name"),
        ("Age", "date", ".metadata.creationTimestamp"),
    )

