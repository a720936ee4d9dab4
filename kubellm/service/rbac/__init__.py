"""RBAC with the semantics of rbac.authorization.k8s.io, over iam.kubellm.io Roles, ClusterRoles and bindings.

No HTTP and no storage here: the server hands an `Authorizer` a `RuleSource` (a `StaticRuleSource`
snapshot of its watch cache) and asks it about requests (`authorize`), about a user's rules
(`rules_for`, for SelfSubjectRulesReview), and whether a role or binding write would escalate
(`check_role_write`, `check_binding_write`, built on `covers`, `can_escalate`, `can_bind`).
"""

from kubellm.service.identity import UserInfo
from kubellm.service.rbac.aggregation import cluster_role_rules, selector_from_json
from kubellm.service.rbac.attributes import Attributes, Decision
from kubellm.service.rbac.authorizer import (
    FULL_AUTHORITY,
    Authorizer,
    Resolution,
    RulesFor,
    only_gc_fields_changed,
)
from kubellm.service.rbac.defaults import default_cluster_role_bindings, default_cluster_roles
from kubellm.service.rbac.escalation import EscalationCheck, breakdown_rule, compact_rules, covers, rule_covers
from kubellm.service.rbac.resolver import BindingSource, Grant, subject_applies, visit_rules
from kubellm.service.rbac.rules import Rule, as_rule, as_rules, rule_allows
from kubellm.service.rbac.source import RuleSource, StaticRuleSource

__all__ = [
    "FULL_AUTHORITY",
    "Attributes",
    "Authorizer",
    "BindingSource",
    "Decision",
    "EscalationCheck",
    "Grant",
    "Resolution",
    "Rule",
    "RuleSource",
    "RulesFor",
    "StaticRuleSource",
    "UserInfo",
    "as_rule",
    "as_rules",
    "breakdown_rule",
    "cluster_role_rules",
    "compact_rules",
    "covers",
    "default_cluster_role_bindings",
    "default_cluster_roles",
    "only_gc_fields_changed",
    "rule_allows",
    "rule_covers",
    "selector_from_json",
    "subject_applies",
    "visit_rules",
]
