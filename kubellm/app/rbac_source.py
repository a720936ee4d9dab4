"""RBAC's view of Roles and bindings: the watch cache's in-memory objects, read without copying."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubellm.registry.storage.cacher import CachedStorage
from kubellm.registry.storage.cacher.cacher import Cacher

Obj = dict[str, Any]
GROUP = "iam.kubellm.io"


class CacheRuleSource:
    def __init__(self, cached: CachedStorage) -> None:
        def cacher(plural: str) -> Cacher:
            return cached.cachers[f"/{GROUP}/{plural}/"]

        self._crb = cacher("clusterrolebindings")
        self._rb = cacher("rolebindings")
        self._cr = cacher("clusterroles")
        self._r = cacher("roles")

    def cluster_role_bindings(self) -> Sequence[Obj]:
        return list(self._crb.objects.values())

    def role_bindings(self, namespace: str) -> Sequence[Obj]:
        prefix = f"{namespace}/"
        return [o for k, o in self._rb.objects.items() if k.startswith(prefix)]

    def cluster_role(self, name: str) -> Obj | None:
        return self._cr.objects.get(name)

    def role(self, namespace: str, name: str) -> Obj | None:
        return self._r.objects.get(f"{namespace}/{name}")

    def cluster_roles(self) -> Sequence[Obj]:
        return list(self._cr.objects.values())

    def role_binding_namespaces(self) -> Sequence[str]:
        return sorted({k.split("/", 1)[0] for k in self._rb.objects})
