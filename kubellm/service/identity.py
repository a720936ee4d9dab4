"""Who a request is made by, as k8s.io/apiserver/pkg/authentication/user.Info, shared by authentication and RBAC."""

from __future__ import annotations

from dataclasses import dataclass, field

SYSTEM_MASTERS = "system:masters"
"""Members are allowed everything, whatever RBAC says (kube's `user.SystemPrivilegedGroup`)."""
ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated (or anonymous) user: name, groups and extra attributes such as scopes."""

    name: str
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    uid: str = ""

    def in_group(self, group: str) -> bool:
        return group in self.groups

    def to_json(self) -> dict[str, object]:
        """authentication.k8s.io/v1 UserInfo (TokenReview, SelfSubjectReview, audit events)."""
        out: dict[str, object] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


def service_account_username(namespace: str, name: str) -> str:
    """The user name a service account authenticates as: `system:serviceaccount:<namespace>:<name>`."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def split_service_account_username(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a service-account user name, or None when it is not one."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name
