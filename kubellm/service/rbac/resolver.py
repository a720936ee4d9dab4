"""Which rules apply to a user, binding by binding, as kube's DefaultRuleResolver.VisitRulesFor.

ClusterRoleBindings apply everywhere; RoleBindings only to requests in their own namespace, and a
RoleBinding to a ClusterRole grants that role's rules within the binding's namespace only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubellm.apis.iam.v1alpha1.types import GROUP, GROUP_KIND, SERVICE_ACCOUNT_KIND, USER_KIND
from kubellm.service.identity import UserInfo, service_account_username
from kubellm.service.rbac.aggregation import cluster_role_rules
from kubellm.service.rbac.rules import Rule, as_rules, go_quote
from kubellm.service.rbac.source import Obj, RuleSource


def _str(obj: Mapping[str, Any], key: str) -> str:
    return str(obj.get(key) or "")


def subject_applies(user: UserInfo, subject: Mapping[str, Any], namespace: str) -> bool:
    """Whether a binding subject is this user; `namespace` defaults a ServiceAccount's (RoleBindings only)."""
    kind, name = _str(subject, "kind"), _str(subject, "name")
    if kind == USER_KIND:
        return user.name == name
    if kind == GROUP_KIND:
        return name in user.groups
    if kind == SERVICE_ACCOUNT_KIND:
        sa_namespace = _str(subject, "namespace") or namespace
        return bool(sa_namespace) and user.name == service_account_username(sa_namespace, name)
    return False


def applies_to(user: UserInfo, subjects: Sequence[Mapping[str, Any]] | None, namespace: str) -> int | None:
    """Index of the first subject that is this user, or None."""
    for i, subject in enumerate(subjects or ()):
        if subject_applies(user, subject, namespace):
            return i
    return None


def describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    kind, name = _str(subject, "kind"), _str(subject, "name")
    if kind == SERVICE_ACCOUNT_KIND:
        return f"{kind} {go_quote(name + '/' + (_str(subject, 'namespace') or binding_namespace))}"
    return f"{kind} {go_quote(name)}"


@dataclass(frozen=True)
class BindingSource:
    """The binding (and its matching subject) a rule came from; str() is kube's description of it."""

    kind: str
    name: str
    namespace: str
    role_kind: str
    role_name: str
    subject: str

    def __str__(self) -> str:
        name = f"{self.name}/{self.namespace}" if self.namespace else self.name
        return f"{self.kind} {go_quote(name)} of {self.role_kind} {go_quote(self.role_name)} to {self.subject}"


@dataclass(frozen=True)
class Grant:
    source: BindingSource
    rule: Rule


def not_found(kind: str, name: str) -> str:
    return f"{kind.lower()}.{GROUP} {go_quote(name)} not found"


def role_ref_rules(source: RuleSource, role_ref: Mapping[str, Any], namespace: str) -> tuple[list[Rule], str | None]:
    """The rules a roleRef names (a Role in `namespace`, or a ClusterRole), or an error message."""
    kind, name = _str(role_ref, "kind"), _str(role_ref, "name")
    if kind == "Role":
        role = source.role(namespace, name)
        return (as_rules(role.get("rules")), None) if role is not None else ([], not_found(kind, name))
    if kind == "ClusterRole":
        cluster_role = source.cluster_role(name)
        if cluster_role is None:
            return [], not_found(kind, name)
        errors: list[str] = []
        rules = cluster_role_rules(source, cluster_role, errors)
        return rules, (errors[0] if errors else None)
    return [], f"unsupported role reference kind: {go_quote(kind)}"


def _binding_grants(
    source: RuleSource, user: UserInfo, binding: Obj, namespace: str, errors: list[str]
) -> Iterator[Grant]:
    subjects = binding.get("subjects") or []
    index = applies_to(user, subjects, namespace)
    if index is None:
        return
    role_ref = binding.get("roleRef") or {}
    rules, error = role_ref_rules(source, role_ref, namespace)
    if error is not None:
        errors.append(error)
    if not rules:
        return
    meta = binding.get("metadata") or {}
    described = BindingSource(
        kind=_str(binding, "kind") or ("RoleBinding" if namespace else "ClusterRoleBinding"),
        name=_str(meta, "name"),
        namespace=namespace,
        role_kind=_str(role_ref, "kind"),
        role_name=_str(role_ref, "name"),
        subject=describe_subject(subjects[index], namespace),
    )
    for rule in rules:
        yield Grant(described, rule)


def visit_rules(source: RuleSource, user: UserInfo, namespace: str, errors: list[str]) -> Iterator[Grant]:
    """Every rule granted to `user` for a request in `namespace` ("" for cluster-scoped and non-resource
    requests), lazily: ClusterRoleBindings first, then the namespace's RoleBindings. Bindings whose role
    cannot be resolved add a message to `errors`."""
    for binding in source.cluster_role_bindings():
        yield from _binding_grants(source, user, binding, "", errors)
    if namespace:
        for binding in source.role_bindings(namespace):
            yield from _binding_grants(source, user, binding, namespace, errors)
