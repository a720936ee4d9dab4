"""Where the evaluator reads RBAC objects from: the JSON dicts of Roles, ClusterRoles and their bindings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

Obj = Mapping[str, Any]


class RuleSource(Protocol):
    """Read access to RBAC objects as stored (plain JSON dicts). Lookups of missing objects return None."""

    def cluster_role_bindings(self) -> Sequence[Obj]: ...

    def role_bindings(self, namespace: str) -> Sequence[Obj]: ...

    def cluster_role(self, name: str) -> Obj | None: ...

    def role(self, namespace: str, name: str) -> Obj | None: ...

    def cluster_roles(self) -> Sequence[Obj]: ...

    def role_binding_namespaces(self) -> Sequence[str]:
        """Namespaces that hold at least one RoleBinding."""
        ...


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class StaticRuleSource:
    """An immutable in-memory snapshot, indexed once; lists come back sorted by name.

    The server builds one from its watch cache whenever RBAC objects change; tests build one directly.
    """

    def __init__(
        self,
        roles: Iterable[Obj] = (),
        cluster_roles: Iterable[Obj] = (),
        role_bindings: Iterable[Obj] = (),
        cluster_role_bindings: Iterable[Obj] = (),
    ) -> None:
        self._roles: dict[tuple[str, str], Obj] = {_meta(r): r for r in roles}
        self._cluster_roles: dict[str, Obj] = {_meta(r)[1]: r for r in cluster_roles}
        by_ns: dict[str, list[Obj]] = {}
        for rb in sorted(role_bindings, key=_meta):
            by_ns.setdefault(_meta(rb)[0], []).append(rb)
        self._role_bindings: dict[str, tuple[Obj, ...]] = {ns: tuple(items) for ns, items in by_ns.items()}
        self._cluster_role_bindings = tuple(sorted(cluster_role_bindings, key=lambda o: _meta(o)[1]))
        self._cluster_role_list = tuple(self._cluster_roles[n] for n in sorted(self._cluster_roles))

    @classmethod
    def from_objects(cls, objects: Iterable[Obj]) -> StaticRuleSource:
        """Sort a mixed list of Role, ClusterRole, RoleBinding and ClusterRoleBinding objects by `kind`."""
        by_kind: dict[str, list[Obj]] = {}
        for obj in objects:
            by_kind.setdefault(str(obj.get("kind", "")), []).append(obj)
        return cls(
            roles=by_kind.get("Role", ()),
            cluster_roles=by_kind.get("ClusterRole", ()),
            role_bindings=by_kind.get("RoleBinding", ()),
            cluster_role_bindings=by_kind.get("ClusterRoleBinding", ()),
        )

    def cluster_role_bindings(self) -> Sequence[Obj]:
        return self._cluster_role_bindings

    def role_bindings(self, namespace: str) -> Sequence[Obj]:
        return self._role_bindings.get(namespace, ())

    def cluster_role(self, name: str) -> Obj | None:
        return self._cluster_roles.get(name)

    def role(self, namespace: str, name: str) -> Obj | None:
        return self._roles.get((namespace, name))

    def cluster_roles(self) -> Sequence[Obj]:
        return self._cluster_role_list

    def role_binding_namespaces(self) -> Sequence[str]:
        return sorted(self._role_bindings)
