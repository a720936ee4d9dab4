"""Policy every KubeLLM has from its first start: the default ClusterRoles and ClusterRoleBindings
(cluster-admin for system:masters, admin/edit/view, discovery and self-reviews for everyone
authenticated). Created when missing, never overwritten, so an administrator's edits stay."""

from __future__ import annotations

import structlog

from kubellm.apis import errors
from kubellm.registry.store import Store
from kubellm.service.rbac import default_cluster_role_bindings, default_cluster_roles

log = structlog.get_logger(__name__)


async def ensure_default_policy(stores: dict[str, Store]) -> None:
    by_kind = {s.info.kind: s for s in stores.values()}
    for obj in [*default_cluster_roles(), *default_cluster_role_bindings()]:
        try:
            await by_kind[obj["kind"]].create(obj)
            log.info("created default policy", kind=obj["kind"], name=obj["metadata"]["name"])
        except errors.StatusError as exc:
            if exc.reason != "AlreadyExists":
                raise
