"""Escalation through Users: giving an account groups, or a password, hands out permissions.

A User's groups are RBAC subjects and its password lets someone log in as it, so a User write is
checked like a binding write (kube has no such kind; this applies the same rule to it):

- adding groups to a User needs the writer to hold every rule those groups hold (in every namespace
  where a RoleBinding names them, and cluster-wide), unless the writer may `escalate` that user;
- creating a User with a password, or setting a new password, makes an identity someone can log in as:
  the writer must hold every rule that identity will hold (its user-name bindings and all its groups),
  unless it may `escalate` that user;
- `system:masters` (which bypasses RBAC entirely) can only be given by one of its members: no rule
  covers it and `escalate` does not either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubellm.apis.iam.v1alpha1.types import GROUP
from kubellm.service.identity import ALL_AUTHENTICATED, SYSTEM_MASTERS, UserInfo
from kubellm.service.rbac.attributes import Attributes
from kubellm.service.rbac.escalation import ALLOWED, EscalationCheck, covers, escalation_message
from kubellm.service.rbac.rules import Rule
from kubellm.service.rbac.source import RuleSource

GROUP_PROBE = "\x00group"
"""The user name of an identity that is only its groups (no binding can name it)."""


def _spec(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _groups(obj: Mapping[str, Any] | None) -> list[str]:
    groups = _spec(obj).get("groups")
    return [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []


@dataclass(frozen=True)
class UserWrite:
    """What a User write grants: the groups it adds and whether it sets a password."""

    name: str
    added_groups: tuple[str, ...]
    all_groups: tuple[str, ...]
    sets_password: bool

    @classmethod
    def of(cls, new: Mapping[str, Any], old: Mapping[str, Any] | None) -> UserWrite:
        meta = new.get("metadata")
        name = str(meta.get("name") or "") if isinstance(meta, Mapping) else ""
        groups = _groups(new)
        before = set(_groups(old))
        new_hash = _spec(new).get("passwordHash")
        return cls(name, tuple(g for g in groups if g not in before), tuple(groups),
                   bool(new_hash) and new_hash != _spec(old).get("passwordHash"))


class IdentityChecks:
    """The checks above, over the Authorizer's view of RBAC (`resolve`, `authorize`)."""

    def __init__(self, source: RuleSource, resolve: Any, authorize: Any) -> None:
        self.source = source
        self._resolve = resolve
        self._authorize = authorize

    def _namespaces(self) -> list[str]:
        return ["", *self.source.role_binding_namespaces()]

    def _uncovered(self, writer: UserInfo, subject: UserInfo) -> tuple[list[Rule], tuple[str, ...]]:
        """Rules `subject` holds somewhere that `writer` does not hold there."""
        missing: list[Rule] = []
        errors: tuple[str, ...] = ()
        for namespace in self._namespaces():
            wanted = self._resolve(subject, namespace).rules
            if not wanted:
                continue
            held = self._resolve(writer, namespace)
            errors += held.errors
            ok, lacking = covers(held.rules, wanted)
            if not ok:
                missing.extend(lacking)
        return list(dict.fromkeys(missing)), errors

    def may_escalate(self, writer: UserInfo, name: str) -> bool:
        return bool(self._authorize(Attributes(writer, "escalate", GROUP, "v1alpha1", "users", name=name)).allowed)

    def check_user_write(self, writer: UserInfo, new: Mapping[str, Any],
                         old: Mapping[str, Any] | None = None) -> EscalationCheck:
        write = UserWrite.of(new, old)
        if SYSTEM_MASTERS in writer.groups:
            return ALLOWED
        granting_masters = SYSTEM_MASTERS in write.added_groups or (
            write.sets_password and SYSTEM_MASTERS in write.all_groups)
        if granting_masters:
            return EscalationCheck(False, f"only members of {SYSTEM_MASTERS} may make a user a member of it")
        if not write.added_groups and not write.sets_password:
            return ALLOWED
        if self.may_escalate(writer, write.name):
            return ALLOWED
        subjects: Iterable[UserInfo]
        if write.sets_password:
            subjects = [UserInfo(write.name, (*write.all_groups, ALL_AUTHENTICATED))]
        else:
            subjects = [UserInfo(GROUP_PROBE, write.added_groups)]
        for subject in subjects:
            missing, errors = self._uncovered(writer, subject)
            if missing:
                return EscalationCheck(False, escalation_message(writer, missing, errors))
        return ALLOWED
