"""Policy every KubeLLM has from its first start: the default ClusterRoles and ClusterRoleBindings
(cluster-admin for system:masters, admin/edit/view, discovery and self-reviews for everyone
authenticated). Created when missing, never overwritten, so an administrator's edits stay."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

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


ADMIN_USER = "admin"


async def ensure_admin_user(stores: dict[str, Store], state_dir: Path) -> None:
    """On first start, an `admin` user in `system:masters` with a random password, written once (mode
    0600) to `<state>/admin-credentials`. Later starts leave the user and the file alone."""
    users = next(s for s in stores.values() if s.info.kind == "User")
    password = secrets.token_urlsafe(24)
    body = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "User", "metadata": {"name": ADMIN_USER},
            "spec": {"email": "admin@kubellm.local", "displayName": "KubeLLM administrator",
                     "groups": ["system:masters"], "password": password}}
    try:
        await users.create(body)
    except errors.StatusError as exc:
        if exc.reason != "AlreadyExists":
            raise
        return
    path = state_dir / "admin-credentials"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"username: {ADMIN_USER}\npassword: {password}\n")
    log.info("created the admin user", credentials=str(path))
