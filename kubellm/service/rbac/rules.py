"""Policy rules and how one rule matches a request, as k8s.io/kubernetes pkg/apis/rbac/v1/evaluation_helpers.go.

Rules arrive as the JSON stored for Roles and ClusterRoles; `Rule` is their immutable, hashable form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubellm.apis.iam.v1alpha1.types import PolicyRule
from kubellm.service.rbac.attributes import Attributes

ALL = "*"
"""The wildcard of verbs, apiGroups, resources and nonResourceURLs (kube's VerbAll, APIGroupAll, ResourceAll)."""


def _strings(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class Rule:
    """One PolicyRule: verbs on resources (in API groups, maybe limited to names) or on non-resource URLs."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, rule: Mapping[str, Any]) -> Rule:
        return cls(
            verbs=_strings(rule.get("verbs")),
            api_groups=_strings(rule.get("apiGroups")),
            resources=_strings(rule.get("resources")),
            resource_names=_strings(rule.get("resourceNames")),
            non_resource_urls=_strings(rule.get("nonResourceURLs")),
        )

    def to_dict(self) -> dict[str, list[str]]:
        """JSON as rbac/v1 writes it: `verbs` always, the other lists only when not empty."""
        out: dict[str, list[str]] = {"verbs": list(self.verbs)}
        for key, values in (
            ("apiGroups", self.api_groups),
            ("resources", self.resources),
            ("resourceNames", self.resource_names),
            ("nonResourceURLs", self.non_resource_urls),
        ):
            if values:
                out[key] = list(values)
        return out

    def compact_string(self) -> str:
        """kube's rbacv1helpers.CompactString: `{APIGroups:["g"], Resources:["r"], Verbs:["get" "list"]}`."""
        parts = [
            f"{label}:{go_quote_list(values)}"
            for label, values in (
                ("APIGroups", self.api_groups),
                ("Resources", self.resources),
                ("NonResourceURLs", self.non_resource_urls),
                ("ResourceNames", self.resource_names),
                ("Verbs", self.verbs),
            )
            if values
        ]
        return "{" + ", ".join(parts) + "}"


RuleLike = Rule | PolicyRule | Mapping[str, Any]


def as_rule(rule: RuleLike) -> Rule:
    """A `Rule` from a stored JSON rule, an API `PolicyRule` or a `Rule`."""
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, PolicyRule):
        return Rule.from_dict(rule.model_dump(by_alias=True))
    return Rule.from_dict(rule)


def as_rules(rules: Iterable[RuleLike] | None) -> list[Rule]:
    return [as_rule(r) for r in rules or ()]


def go_quote(value: str) -> str:
    """Go's %q of a string, for the names and rules quoted in messages."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_quote_list(values: Iterable[str]) -> str:
    """Go's %q of a []string: `["a" "b"]`."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def aggregate_errors(errors: Iterable[str]) -> str:
    """Go's utilerrors.NewAggregate(...).Error(): one message as is, several (deduplicated) as `[a, b]`."""
    unique = list(dict.fromkeys(errors))
    if len(unique) <= 1:
        return "".join(unique)
    return "[" + ", ".join(unique) + "]"


# --- matching ------------------------------------------------------------------------------------


def verb_matches(rule: Rule, verb: str) -> bool:
    return ALL in rule.verbs or verb in rule.verbs


def api_group_matches(rule: Rule, group: str) -> bool:
    return ALL in rule.api_groups or group in rule.api_groups


def resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    """`*`, the exact `resource` or `resource/subresource`, or `*/subresource`.

    As in Kubernetes, `resource/*` is not a wildcard: it only matches a subresource literally named `*`.
    """
    for resource in rule.resources:
        if resource in (ALL, combined):
            return True
        if subresource and resource == "*/" + subresource:
            return True
    return False


def resource_name_matches(rule: Rule, name: str) -> bool:
    """An empty resourceNames allows every name; otherwise the request's name must be listed.

    Requests without a name (create, list, watch, deletecollection) never match a rule with names.
    """
    return not rule.resource_names or name in rule.resource_names


def non_resource_url_matches(rule: Rule, path: str) -> bool:
    for url in rule.non_resource_urls:
        if url in (ALL, path):
            return True
        if url.endswith(ALL) and path.startswith(url.rstrip(ALL)):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Rule) -> bool:
    """Whether `rule` allows the request, as kube's rbac.RuleAllows."""
    if not verb_matches(rule, attrs.verb):
        return False
    if not attrs.is_resource_request:
        return non_resource_url_matches(rule, attrs.path)
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return (
        api_group_matches(rule, attrs.api_group)
        and resource_matches(rule, combined, attrs.subresource)
        and resource_name_matches(rule, attrs.name)
    )
