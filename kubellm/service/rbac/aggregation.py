"""ClusterRole aggregation: an aggregated ClusterRole holds the rules of the ClusterRoles its selectors match.

In Kubernetes a controller writes those rules into the aggregated role; here they are computed when read,
with the same result once that controller would have settled: the rules of every non-aggregated
ClusterRole reachable through the selectors (chains of aggregated roles included, cycles ignored), in
selector order then name order, without duplicates. The aggregated role's own `rules` are ignored, since
the controller would overwrite them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubellm.apis.selectors import LabelSelector, Requirement
from kubellm.service.rbac.rules import Rule, as_rules
from kubellm.service.rbac.source import Obj, RuleSource

_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def selector_from_json(selector: Mapping[str, Any] | None) -> LabelSelector | None:
    """A metav1.LabelSelector as a `LabelSelector`; None when it can match nothing or is invalid.

    As metav1.LabelSelectorAsSelector: an empty selector matches everything, a null one nothing.
    """
    if selector is None:
        return None
    reqs: list[Requirement] = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        reqs.append(Requirement(str(key), "=", (str(value),)))
    for expr in selector.get("matchExpressions") or []:
        op = _OPERATORS.get(str(expr.get("operator", "")))
        values = tuple(str(v) for v in expr.get("values") or ())
        if op is None or (op in ("in", "notin")) != bool(values):
            return None
        reqs.append(Requirement(str(expr.get("key", "")), op, values))
    return LabelSelector(tuple(reqs))


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _labels(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def is_aggregated(cluster_role: Obj) -> bool:
    return cluster_role.get("aggregationRule") is not None


def _selectors(cluster_role: Obj, errors: list[str]) -> list[LabelSelector]:
    out: list[LabelSelector] = []
    for raw in (cluster_role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
        selector = selector_from_json(raw)
        if selector is None:
            errors.append(f"clusterrole {_name(cluster_role)!r}: invalid clusterRoleSelector {dict(raw)!r}")
        else:
            out.append(selector)
    return out


def cluster_role_rules(source: RuleSource, cluster_role: Obj, errors: list[str] | None = None) -> list[Rule]:
    """The effective rules of a ClusterRole: its own, or for an aggregated one, those it aggregates."""
    if not is_aggregated(cluster_role):
        return as_rules(cluster_role.get("rules"))
    errs = errors if errors is not None else []
    visited = {_name(cluster_role)}
    leaves: list[Obj] = []
    all_roles = sorted(source.cluster_roles(), key=_name)

    def expand(current: Obj) -> None:
        for selector in _selectors(current, errs):
            for other in all_roles:
                name = _name(other)
                if name in visited or not selector.matches(_labels(other)):
                    continue
                visited.add(name)
                if is_aggregated(other):
                    expand(other)
                else:
                    leaves.append(other)

    expand(cluster_role)
    rules: list[Rule] = []
    seen: set[Rule] = set()
    for leaf in leaves:
        for rule in as_rules(leaf.get("rules")):
            if rule not in seen:
                seen.add(rule)
                rules.append(rule)
    return rules
