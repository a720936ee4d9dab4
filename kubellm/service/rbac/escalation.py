"""Escalation prevention: does one set of rules cover another, as kube's rbac/validation Covers.

A user may only create or update a Role/ClusterRole with rules they already hold (unless they may
`escalate` it), and only bind a role whose rules they hold (unless they may `bind` it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kubellm.service.identity import UserInfo
from kubellm.service.rbac.rules import ALL, Rule, RuleLike, aggregate_errors, as_rules, go_quote, go_quote_list


def breakdown_rule(rule: Rule) -> list[Rule]:
    """Split a rule into single (group, resource, verb[, name]) and (URL, verb) rules."""
    out: list[Rule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    out.extend(Rule((verb,), (group,), (resource,), (name,)) for name in rule.resource_names)
                else:
                    out.append(Rule((verb,), (group,), (resource,)))
    for url in rule.non_resource_urls:
        out.extend(Rule((verb,), non_resource_urls=(url,)) for verb in rule.verbs)
    return out


def _has_all(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    return set(wanted) <= set(owned)


def _resources_cover(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    if ALL in owned or _has_all(owned, wanted):
        return True
    for path in wanted:
        if path in owned:
            continue
        if "/" not in path or "*/" + path.split("/", 1)[1] not in owned:
            return False
    return True


def _url_covers(owner: str, path: str) -> bool:
    return owner == path or (owner.endswith(ALL) and path.startswith(owner.rstrip(ALL)))


def _urls_cover(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    return all(any(_url_covers(o, path) for o in owned) for path in wanted)


def rule_covers(owner: Rule, sub: Rule) -> bool:
    """Whether `owner` allows everything the broken-down rule `sub` allows."""
    if not (ALL in owner.verbs or _has_all(owner.verbs, sub.verbs)):
        return False
    if not (ALL in owner.api_groups or _has_all(owner.api_groups, sub.api_groups)):
        return False
    if not _resources_cover(owner.resources, sub.resources) or not _urls_cover(
        owner.non_resource_urls, sub.non_resource_urls
    ):
        return False
    if not sub.resource_names:
        return not owner.resource_names
    return not owner.resource_names or _has_all(owner.resource_names, sub.resource_names)


def covers(owner_rules: Iterable[RuleLike], requested_rules: Iterable[RuleLike]) -> tuple[bool, list[Rule]]:
    """Whether the owner's rules cover every requested rule, and the broken-down rules they do not."""
    owners = as_rules(owner_rules)
    uncovered = [
        sub
        for requested in as_rules(requested_rules)
        for sub in breakdown_rule(requested)
        if not any(rule_covers(owner, sub) for owner in owners)
    ]
    return not uncovered, uncovered


def compact_rules(rules: Iterable[Rule]) -> list[Rule]:
    """Merge the verbs of rules on one group and resource (and at most one name), as kube's CompactRules."""
    out: list[Rule] = []
    simple: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for rule in rules:
        if (
            len(rule.api_groups) == 1
            and len(rule.resources) == 1
            and len(rule.resource_names) <= 1
            and not rule.non_resource_urls
        ):
            simple.setdefault((rule.api_groups[0], rule.resources[0], rule.resource_names), []).extend(rule.verbs)
        else:
            out.append(rule)
    out.extend(Rule(tuple(verbs), (group,), (resource,), names) for (group, resource, names), verbs in simple.items())
    return out


def escalation_message(user: UserInfo, missing: Iterable[Rule], resolution_errors: Sequence[str] = ()) -> str:
    """kube's ConfirmNoEscalation error text."""
    lines = sorted({rule.compact_string() for rule in compact_rules(missing)})
    msg = (
        f"user {go_quote(user.name)} (groups={go_quote_list(user.groups)}) is attempting to grant RBAC permissions "
        "not currently held:\n" + "\n".join(lines)
    )
    if resolution_errors:
        msg += f"; resolution errors: [{aggregate_errors(resolution_errors)}]"
    return msg


@dataclass(frozen=True)
class EscalationCheck:
    """The outcome of an escalation check on a role or binding write.

    When not allowed, `message` is the reason to put in a 403 Forbidden for the object; `role_missing`
    says the binding's roleRef does not exist (Kubernetes then answers with that NotFound error, whose
    text is `message`).
    """

    allowed: bool
    message: str = ""
    role_missing: bool = False


ALLOWED = EscalationCheck(True)
