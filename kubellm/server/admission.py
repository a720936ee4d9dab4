"""Admission that depends on who asks: RBAC escalation prevention for Roles, bindings and Users.

As Kubernetes' policy-based role storage: nobody creates or updates a Role/ClusterRole with rules they
do not hold unless they may `escalate` it, nor binds a role whose rules they do not hold unless they
may `bind` it (system:masters may do both). A User's groups and password hand out permissions too, so
User writes are checked the same way (`service.rbac.identities`).
"""

from __future__ import annotations

from kubellm.apis import errors
from kubellm.apis.scheme import ResourceInfo
from kubellm.registry.store import Admit
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
