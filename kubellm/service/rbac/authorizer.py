"""The RBAC authorizer, as kube's plugin/pkg/auth/authorizer/rbac: allow if any bound rule matches.

Members of `system:masters` are allowed everything (kube's privileged-group authorizer). Otherwise the
rules of every ClusterRoleBinding, and of the RoleBindings in the request's namespace, that name the user
(User), one of its groups (Group) or its service account (ServiceAccount) are tried in order; the first
match allows, with a reason naming the binding. Nothing matching is a deny with an empty reason, or
`RBAC: <errors>` when some binding's role could not be resolved (a missing role, as kube reports it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from kubellm.apis.iam.v1alpha1.types import GROUP, RoleRef
from kubellm.service.identity import SYSTEM_MASTERS, UserInfo
from kubellm.service.rbac.aggregation import cluster_role_rules
from kubellm.service.rbac.attributes import Attributes, Decision
from kubellm.service.rbac.escalation import ALLOWED, EscalationCheck, covers, escalation_message
from kubellm.service.rbac.identities import IdentityChecks
from kubellm.service.rbac.resolver import not_found, role_ref_rules, visit_rules
from kubellm.service.rbac.rules import ALL, Rule, RuleLike, aggregate_errors, as_rules, rule_allows
from kubellm.service.rbac.source import Obj, RuleSource

FULL_AUTHORITY = (Rule((ALL,), (ALL,), (ALL,)), Rule((ALL,), non_resource_urls=(ALL,)))
"""What cluster-admin holds: every verb on every resource and every non-resource URL."""

_ROLE_RESOURCES = {"Role": "roles", "ClusterRole": "clusterroles"}


class RulesFor(NamedTuple):
    """What SelfSubjectRulesReview reports: resource rules, non-resource rules, and whether the list may be
    incomplete (some binding's role could not be resolved)."""

    resource_rules: list[Rule]
    non_resource_rules: list[Rule]
    incomplete: bool


@dataclass(frozen=True)
class Resolution:
    """Every rule a user holds in a namespace, and the errors met resolving their bindings."""

    rules: tuple[Rule, ...]
    errors: tuple[str, ...] = ()

    @property
    def evaluation_error(self) -> str:
        """SelfSubjectRulesReview's `status.evaluationError`."""
        return aggregate_errors(self.errors)


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _has_aggregation_rule(obj: Obj | None) -> bool:
    return obj is not None and bool((obj.get("aggregationRule") or {}).get("clusterRoleSelectors"))


_GC_FIELDS = ("ownerReferences", "finalizers", "managedFields", "resourceVersion")


def only_gc_fields_changed(new: Obj, old: Obj) -> bool:
    """Whether an update changes nothing but owner references and finalizers (kube's IsOnlyMutatingGCFields;
    server-kept metadata such as managedFields and resourceVersion is ignored too)."""

    def strip(obj: Obj) -> dict[str, Any]:
        out = dict(obj)
        out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _GC_FIELDS}
        return out

    return strip(new) == strip(old)


class Authorizer:
    """Authorize requests against the RBAC objects of a `RuleSource`."""

    def __init__(self, source: RuleSource) -> None:
        self.source = source
        self.identities = IdentityChecks(source, self.resolve, self.authorize)

    # --- authorization -------------------------------------------------------------------------

    def authorize(self, attrs: Attributes) -> Decision:
        if SYSTEM_MASTERS in attrs.user.groups:
            return Decision(True, "")
        errors: list[str] = []
        for grant in visit_rules(self.source, attrs.user, attrs.namespace, errors):
            if rule_allows(attrs, grant.rule):
                return Decision(True, f"RBAC: allowed by {grant.source}")
        return Decision(False, f"RBAC: {aggregate_errors(errors)}" if errors else "")

    def resolve(self, user: UserInfo, namespace: str) -> Resolution:
        """All rules `user` holds for requests in `namespace` ("" = cluster-wide only), as kube's RulesFor.

        `system:masters` members hold FULL_AUTHORITY first, as kube shows them through cluster-admin.
        """
        errors: list[str] = []
        rules = [grant.rule for grant in visit_rules(self.source, user, namespace, errors)]
        if SYSTEM_MASTERS in user.groups:
            rules[:0] = FULL_AUTHORITY
        return Resolution(tuple(rules), tuple(errors))

    def rules_for(self, user: UserInfo, namespace: str) -> RulesFor:
        """For SelfSubjectRulesReview: rules with resources, rules with nonResourceURLs, incomplete."""
        resolution = self.resolve(user, namespace)
        return RulesFor(
            [r for r in resolution.rules if r.resources],
            [r for r in resolution.rules if r.non_resource_urls],
            bool(resolution.errors),
        )

    def cluster_role_rules(self, cluster_role: Obj) -> list[Rule]:
        """The effective rules of a ClusterRole (aggregation applied), e.g. to show in its `rules`."""
        return cluster_role_rules(self.source, cluster_role)

    # --- escalation prevention -----------------------------------------------------------------

    def can_escalate(self, user: UserInfo, kind: str, namespace: str = "", name: str = "") -> bool:
        """Whether `user` may write a Role/ClusterRole with rules it does not hold (`escalate` on it)."""
        resource = _ROLE_RESOURCES.get(kind)
        if resource is None:
            return False
        namespace = namespace if kind == "Role" else ""
        attrs = Attributes(user, "escalate", GROUP, ALL, resource, name=name, namespace=namespace)
        return self.authorize(attrs).allowed

    def can_bind(self, user: UserInfo, role_ref: RoleRef | Mapping[str, Any], namespace: str = "") -> bool:
        """Whether `user` may bind the role whatever its rules (`bind` on it), in the binding's namespace
        ("" for a ClusterRoleBinding), as kube's BindingAuthorized."""
        ref = role_ref.model_dump(by_alias=True) if isinstance(role_ref, RoleRef) else role_ref
        resource = _ROLE_RESOURCES.get(str(ref.get("kind") or ""))
        if resource is None:
            return False
        group = str(ref.get("apiGroup") or GROUP)
        attrs = Attributes(
            user, "bind", api_group=group, resource=resource, name=str(ref.get("name") or ""), namespace=namespace
        )
        return self.authorize(attrs).allowed

    def confirm_no_escalation(self, user: UserInfo, namespace: str, rules: Iterable[RuleLike]) -> str | None:
        """None when `user` holds every rule in `namespace`; otherwise kube's ConfirmNoEscalation message."""
        resolution = self.resolve(user, namespace)
        ok, missing = covers(resolution.rules, rules)
        return None if ok else escalation_message(user, missing, resolution.errors)

    def check_role_write(self, user: UserInfo, obj: Obj, old: Obj | None = None) -> EscalationCheck:
        """May `user` create (or, with `old`, update) this Role or ClusterRole, as kube's policy-based
        role storage: allowed to `system:masters`, with `escalate`, or when the user holds every rule; an
        aggregationRule (set now or before) needs full authority."""
        kind = str(obj.get("kind") or "")
        namespace, name = _meta(obj)
        namespace = namespace if kind == "Role" else ""
        if SYSTEM_MASTERS in user.groups or self.can_escalate(user, kind, namespace, name):
            return ALLOWED
        if old is not None and only_gc_fields_changed(obj, old):
            return ALLOWED
        message = self.confirm_no_escalation(user, namespace, as_rules(obj.get("rules")))
        if message is not None:
            return EscalationCheck(False, message)
        aggregating = kind == "ClusterRole" and (_has_aggregation_rule(obj) or _has_aggregation_rule(old))
        if aggregating and self.confirm_no_escalation(user, namespace, FULL_AUTHORITY) is not None:
            return EscalationCheck(False, "must have cluster-admin privileges to use the aggregationRule")
        return ALLOWED

    def check_user_write(self, user: UserInfo, obj: Obj, old: Obj | None = None) -> EscalationCheck:
        """May `user` create (or, with `old`, update) this User: see `identities`."""
        return self.identities.check_user_write(user, obj, old)

    def check_binding_write(self, user: UserInfo, obj: Obj, old: Obj | None = None) -> EscalationCheck:
        """May `user` create (or, with `old`, update) this RoleBinding or ClusterRoleBinding: allowed to
        `system:masters`, with `bind` on the role, or when the user holds every rule of the role."""
        kind = str(obj.get("kind") or "")
        namespace = _meta(obj)[0] if kind == "RoleBinding" else ""
        role_ref: Mapping[str, Any] = obj.get("roleRef") or {}
        if SYSTEM_MASTERS in user.groups:
            return ALLOWED
        if old is not None and only_gc_fields_changed(obj, old):
            return ALLOWED
        if self.can_bind(user, role_ref, namespace):
            return ALLOWED
        ref_kind, ref_name = str(role_ref.get("kind") or ""), str(role_ref.get("name") or "")
        rules, error = role_ref_rules(self.source, role_ref, namespace)
        if ref_kind not in _ROLE_RESOURCES:
            return EscalationCheck(False, error or "")
        if (ref_kind == "Role" and self.source.role(namespace, ref_name) is None) or (
            ref_kind == "ClusterRole" and self.source.cluster_role(ref_name) is None
        ):
            return EscalationCheck(False, not_found(ref_kind, ref_name), role_missing=True)
        message = self.confirm_no_escalation(user, namespace, rules)
        return ALLOWED if message is None else EscalationCheck(False, message)
