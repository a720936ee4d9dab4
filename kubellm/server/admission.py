"""Admission that depends on who asks: RBAC escalation prevention for Roles, bindings and Users.

As Kubernetes' policy-based role storage: nobody creates or updates a Role/ClusterRole with rules they
do not hold unless they may `escalate` it, nor binds a role whose rules they do not hold unless they
may `bind` it (system:masters may do both). A User's groups and password hand out permissions too, so
User writes are checked the same way (`service.rbac.identities`).
"""

from __future__ import annotations

from typing import Any, Protocol

from kubellm.apis import errors
from kubellm.apis.scheme import ResourceInfo
from kubellm.apis.validation.names import dns1123_label
from kubellm.registry.store import Admit, Store
from kubellm.service.identity import UserInfo
from kubellm.service.rbac import Authorizer

ROLE_KINDS = ("Role", "ClusterRole")
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")
CHECKED_KINDS = (*ROLE_KINDS, *BINDING_KINDS, "User")


class Admission:
    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    def for_request(self, info: ResourceInfo, user: UserInfo | None) -> Admit | None:
        if user is None or info.group != "iam.kubellm.io" or info.kind not in CHECKED_KINDS:
            return None
        authorizer = self.authorizer

        def admit(new: dict[str, object], old: dict[str, object] | None) -> None:
            if info.kind in ROLE_KINDS:
                check = authorizer.check_role_write(user, new, old)
            elif info.kind == "User":
                check = authorizer.check_user_write(user, new, old)
            else:
                check = authorizer.check_binding_write(user, new, old)
            if check.allowed:
                return
            meta = new.get("metadata")
            name = str(meta.get("name", "")) if isinstance(meta, dict) else ""
            if check.role_missing:
                raise errors.StatusError(404, "NotFound", check.message)
            raise errors.StatusError(403, "Forbidden", f'{info.group_resource} "{name}" is forbidden: {check.message}',
                                     {"name": name, "group": info.group, "kind": info.plural})

        return admit


class NamespaceSource(Protocol):
    provision: bool
    """Whether a namespace that does not exist is created with its first object."""

    async def lookup(self, name: str) -> dict[str, Any] | None: ...


class LocalNamespaces:
    """The namespaces this server serves (standalone), created with their first object."""

    provision = True

    def __init__(self, store: Store) -> None:
        self.store = store

    async def lookup(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.store.get(None, name, "0")
        except errors.StatusError as exc:
            if exc.reason != "NotFound":
                raise
            return None

    async def create(self, name: str) -> dict[str, Any]:
        try:
            return (await self.store.create({"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": name}})).object
        except errors.StatusError as exc:
            if exc.reason != "AlreadyExists":
                raise
            return await self.store.get(None, name)  # made meanwhile: read it as it is


class NamespaceLifecycle:
    """kube's NamespaceLifecycle admission: nothing new is created in a namespace being deleted (403), nor in
    one that does not exist (404), unless the source provisions namespaces (a standalone server, as kube's
    NamespaceAutoProvision: kubectl users expect `-n new` to work)."""

    def __init__(self, source: NamespaceSource | None) -> None:
        self.source = source

    async def admit_create(self, info: ResourceInfo, namespace: str | None) -> None:
        source = self.source
        if source is None or not info.namespaced or not namespace or dns1123_label(namespace):
            return  # an invalid namespace name is the object's own validation error
        ns = await source.lookup(namespace)
        if ns is None:
            if not isinstance(source, LocalNamespaces):
                raise errors.not_found("namespaces", "", namespace)
            ns = await source.create(namespace)
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.StatusError(
                403, "Forbidden", f"{info.group_resource} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                {"name": "", "group": info.group, "kind": info.plural,
                 "causes": [{"reason": "NamespaceTerminating", "message": f"namespace {namespace} is being "
                             "terminated", "field": "metadata.namespace"}]})
