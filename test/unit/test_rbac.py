"""The RBAC evaluator (kubellm.service.rbac): Kubernetes' rule matching, bindings, aggregation, escalation
prevention and the default roles. Pure: every case builds a StaticRuleSource in memory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from kubellm.apis.codec import FieldValidation, decode
from kubellm.apis.iam import v1alpha1 as iamv1
from kubellm.service.identity import UserInfo, service_account_username, split_service_account_username
from kubellm.service.rbac import (
    Attributes,
    Authorizer,
    Rule,
    StaticRuleSource,
    covers,
    default_cluster_role_bindings,
    default_cluster_roles,
)

MODEL = "model.kubellm.io"
CLUSTER = "cluster.kubellm.io"
IAM = "iam.kubellm.io"

JSON = dict[str, Any]


# --- builders ------------------------------------------------------------------------------------


def rule(
    verbs: Sequence[str],
    groups: Sequence[str] = (),
    resources: Sequence[str] = (),
    names: Sequence[str] = (),
    urls: Sequence[str] = (),
) -> JSON:
    out: JSON = {"verbs": list(verbs)}
    if groups:
        out["apiGroups"] = list(groups)
    if resources:
        out["resources"] = list(resources)
    if names:
        out["resourceNames"] = list(names)
    if urls:
        out["nonResourceURLs"] = list(urls)
    return out


def cluster_role(
    name: str, rules: Sequence[JSON] = (), labels: dict[str, str] | None = None, selectors: list[JSON] | None = None
) -> JSON:
    obj: JSON = {
        "apiVersion": f"{IAM}/v1alpha1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels or {}},
        "rules": list(rules),
    }
    if selectors is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return obj


def role(namespace: str, name: str, rules: Sequence[JSON]) -> JSON:
    return {
        "apiVersion": f"{IAM}/v1alpha1",
        "kind": "Role",
        "metadata": {"namespace": namespace, "name": name},
        "rules": list(rules),
    }


def user_subject(name: str) -> JSON:
    return {"kind": "User", "apiGroup": IAM, "name": name}


def group_subject(name: str) -> JSON:
    return {"kind": "Group", "apiGroup": IAM, "name": name}


def sa_subject(name: str, namespace: str = "") -> JSON:
    out: JSON = {"kind": "ServiceAccount", "name": name}
    if namespace:
        out["namespace"] = namespace
    return out


def crb(name: str, role_name: str, subjects: Sequence[JSON]) -> JSON:
    return {
        "apiVersion": f"{IAM}/v1alpha1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "subjects": list(subjects),
        "roleRef": {"apiGroup": IAM, "kind": "ClusterRole", "name": role_name},
    }


def rb(namespace: str, name: str, kind: str, role_name: str, subjects: Sequence[JSON]) -> JSON:
    return {
        "apiVersion": f"{IAM}/v1alpha1",
        "kind": "RoleBinding",
        "metadata": {"namespace": namespace, "name": name},
        "subjects": list(subjects),
        "roleRef": {"apiGroup": IAM, "kind": kind, "name": role_name},
    }


def user(name: str = "alice", *groups: str) -> UserInfo:
    return UserInfo(name, ("system:authenticated", *groups), {})


ALICE = user("alice")


def req(
    u: UserInfo,
    verb: str,
    resource: str = "llmservices",
    namespace: str = "ns1",
    name: str = "",
    subresource: str = "",
    group: str = MODEL,
) -> Attributes:
    return Attributes(u, verb, group, "v1alpha1", resource, subresource, name, namespace)


def authz(*objects: JSON) -> Authorizer:
    return Authorizer(StaticRuleSource.from_objects(objects))


def grant_alice(*rules: JSON) -> Authorizer:
    """alice holds `rules` cluster-wide."""
    return authz(cluster_role("r", rules), crb("b", "r", [user_subject("alice")]))


# --- rule matching matrix ------------------------------------------------------------------------

LLM = [MODEL]


def m(verbs: Sequence[str], resources: Sequence[str], names: Sequence[str] = ()) -> JSON:
    """A rule on model.kubellm.io."""
    return rule(verbs, LLM, resources, names)


def q(verb: str, sub: str = "", name: str = "", resource: str = "llmservices", group: str = MODEL) -> JSON:
    """The fields of a request in ns1."""
    return {"verb": verb, "subresource": sub, "name": name, "resource": resource, "group": group}


LS = ["llmservices"]

RESOURCE_CASES: list[tuple[str, JSON, JSON, bool]] = [
    # verbs
    ("exact verb", m(["get"], LS), q("get"), True),
    ("other verb", m(["get"], LS), q("list"), False),
    ("verb list", m(["get", "list"], LS), q("list"), True),
    ("verb *", m(["*"], LS), q("deletecollection"), True),
    ("verb * special", m(["*"], LS), q("escalate"), True),
    ("verbs are case sensitive", m(["GET"], LS), q("get"), False),
    # API groups
    ("other group", rule(["get"], [CLUSTER], LS), q("get"), False),
    ("core group is not every group", rule(["get"], [""], LS), q("get"), False),
    ("group *", rule(["get"], ["*"], LS), q("get"), True),
    ("core group request", rule(["get"], [""], ["pods"]), q("get", resource="pods", group=""), True),
    ("no groups matches nothing", rule(["get"], [], LS), q("get"), False),
    # resources and subresources
    ("other resource", m(["get"], ["ragservices"]), q("get"), False),
    ("resource *", m(["get"], ["*"]), q("get"), True),
    ("resource * covers subresources", m(["get"], ["*"]), q("get", "status"), True),
    ("resource excludes subresource", m(["get"], LS), q("get", "scale"), False),
    ("resource/subresource", m(["update"], ["llmservices/scale"]), q("update", "scale"), True),
    ("resource/subresource not parent", m(["get"], ["llmservices/scale"]), q("get"), False),
    ("resource/subresource other sub", m(["get"], ["llmservices/scale"]), q("get", "status"), False),
    ("r/sub other resource", m(["get"], ["llmservices/status"]), q("get", "status", resource="ragservices"), False),
    ("*/subresource", m(["get"], ["*/scale"]), q("get", "scale"), True),
    ("*/subresource any resource", m(["get"], ["*/status"]), q("get", "status", resource="ragservices"), True),
    ("*/subresource not parent", m(["get"], ["*/scale"]), q("get"), False),
    ("*/subresource other sub", m(["get"], ["*/scale"]), q("get", "status"), False),
    # Kubernetes has no resource/* wildcard: it only names a subresource literally called "*".
    ("resource/* is not a wildcard", m(["get"], ["llmservices/*"]), q("get", "scale"), False),
    ("resource/* not parent", m(["get"], ["llmservices/*"]), q("get"), False),
    # resourceNames
    ("name listed", m(["get"], LS, ["a"]), q("get", name="a"), True),
    ("name not listed", m(["get"], LS, ["a"]), q("get", name="b"), False),
    ("names restrict list", m(["list"], LS, ["a"]), q("list"), False),
    ("names restrict watch", m(["watch"], LS, ["a"]), q("watch"), False),
    ("names restrict create", m(["create"], LS, ["a"]), q("create"), False),
    ("names restrict deletecollection", m(["deletecollection"], LS, ["a"]), q("deletecollection"), False),
    ("names on subresource", m(["update"], ["llmservices/scale"], ["a"]), q("update", "scale", "a"), True),
    ("no names allows any", m(["delete"], LS), q("delete", name="zz"), True),
    ("no names allows nameless", m(["create"], LS), q("create"), True),
    ("names are exact", m(["get"], LS, ["a"]), q("get", name="ab"), False),
    # a URL rule never matches a resource request
    ("URL rule on resource", rule(["get"], urls=["*"]), q("get"), False),
]  # fmt: skip


@pytest.mark.parametrize(("rule_json", "request_fields", "expected"), [c[1:] for c in RESOURCE_CASES],
                         ids=[c[0] for c in RESOURCE_CASES])  # fmt: skip
def test_resource_rule_matrix(rule_json: JSON, request_fields: JSON, expected: bool) -> None:
    a = grant_alice(rule_json)
    attrs = req(ALICE, **request_fields)
    assert a.authorize(attrs).allowed is expected


URL_CASES: list[tuple[str, list[str], list[str], str, str, bool]] = [
    # rule verbs, rule URLs, request verb, request path
    ("exact", ["get"], ["/healthz"], "get", "/healthz", True),
    ("exact is not prefix", ["get"], ["/healthz"], "get", "/healthz/etcd", False),
    ("exact other", ["get"], ["/healthz"], "get", "/healthzx", False),
    ("suffix wildcard", ["get"], ["/healthz/*"], "get", "/healthz/etcd", True),
    ("suffix wildcard deep", ["get"], ["/healthz/*"], "get", "/healthz/a/b", True),
    ("suffix wildcard empty rest", ["get"], ["/healthz/*"], "get", "/healthz/", True),
    ("suffix wildcard not parent", ["get"], ["/healthz/*"], "get", "/healthz", False),
    ("bare prefix wildcard", ["get"], ["/api*"], "get", "/apis/x", True),
    ("star", ["get"], ["*"], "get", "/anything", True),
    ("verb must match", ["get"], ["/healthz"], "post", "/healthz", False),
    ("verb star", ["*"], ["/healthz"], "post", "/healthz", True),
    ("one of several", ["get"], ["/version", "/metrics"], "get", "/metrics", True),
]


@pytest.mark.parametrize(("verbs", "urls", "verb", "path", "expected"), [c[1:] for c in URL_CASES],
                         ids=[c[0] for c in URL_CASES])  # fmt: skip
def test_non_resource_url_matrix(verbs: list[str], urls: list[str], verb: str, path: str, expected: bool) -> None:
    a = grant_alice(rule(verbs, urls=urls))
    assert a.authorize(Attributes.non_resource(ALICE, verb, path)).allowed is expected


def test_resource_rules_never_match_non_resource_requests() -> None:
    a = grant_alice(rule(["*"], ["*"], ["*"]))
    assert a.authorize(req(ALICE, "get", namespace="")).allowed
    assert not a.authorize(Attributes.non_resource(ALICE, "get", "/healthz")).allowed


# --- bindings ------------------------------------------------------------------------------------

READ_LLM = rule(["get", "list"], LLM, ["llmservices"])


def test_default_deny_with_empty_reason() -> None:
    d = authz().authorize(req(ALICE, "get"))
    assert (d.allowed, d.reason) == (False, "")
    d = grant_alice(READ_LLM).authorize(req(user("bob"), "get"))
    assert (d.allowed, d.reason) == (False, "")


def test_cluster_role_binding_grants_everywhere_with_reason() -> None:
    a = authz(cluster_role("reader", [READ_LLM]), crb("alice-reads", "reader", [user_subject("alice")]))
    for ns in ("ns1", "ns2", ""):
        d = a.authorize(req(ALICE, "list", namespace=ns))
        assert d.allowed, ns
        assert d.reason == 'RBAC: allowed by ClusterRoleBinding "alice-reads" of ClusterRole "reader" to User "alice"'
    assert not a.authorize(req(ALICE, "delete", namespace="ns1", name="x")).allowed


def test_role_binding_is_limited_to_its_namespace() -> None:
    a = authz(role("ns1", "r", [READ_LLM]), rb("ns1", "b", "Role", "r", [user_subject("alice")]))
    d = a.authorize(req(ALICE, "get", namespace="ns1", name="x"))
    assert d.allowed
    assert d.reason == 'RBAC: allowed by RoleBinding "b/ns1" of Role "r" to User "alice"'
    assert not a.authorize(req(ALICE, "get", namespace="ns2", name="x")).allowed
    assert not a.authorize(req(ALICE, "list", namespace="")).allowed


def test_role_binding_resolves_role_in_its_own_namespace() -> None:
    # The Role "r" exists only in ns2; a RoleBinding in ns1 to Role "r" grants nothing.
    a = authz(role("ns2", "r", [READ_LLM]), rb("ns1", "b", "Role", "r", [user_subject("alice")]))
    d = a.authorize(req(ALICE, "get", namespace="ns1"))
    assert not d.allowed
    assert d.reason == 'RBAC: role.iam.kubellm.io "r" not found'
    assert not a.authorize(req(ALICE, "get", namespace="ns2")).allowed


def test_role_binding_to_cluster_role_is_namespace_limited() -> None:
    a = authz(cluster_role("reader", [READ_LLM]), rb("ns1", "b", "ClusterRole", "reader", [user_subject("alice")]))
    d = a.authorize(req(ALICE, "list", namespace="ns1"))
    assert d.allowed
    assert d.reason == 'RBAC: allowed by RoleBinding "b/ns1" of ClusterRole "reader" to User "alice"'
    assert not a.authorize(req(ALICE, "list", namespace="ns2")).allowed
    assert not a.authorize(req(ALICE, "list", namespace="")).allowed  # across all namespaces


def test_role_binding_does_not_grant_non_resource_urls() -> None:
    a = authz(
        cluster_role("urls", [rule(["get"], urls=["/healthz"])]),
        rb("ns1", "b", "ClusterRole", "urls", [user_subject("alice")]),
    )
    assert not a.authorize(Attributes.non_resource(ALICE, "get", "/healthz")).allowed


def test_missing_cluster_role_is_reported_on_deny() -> None:
    a = authz(crb("b", "gone", [user_subject("alice")]), crb("c", "gone2", [user_subject("alice")]))
    d = a.authorize(req(ALICE, "get"))
    assert d == type(d)(False, 'RBAC: [clusterrole.iam.kubellm.io "gone" not found, '
                               'clusterrole.iam.kubellm.io "gone2" not found]')  # fmt: skip
    # Another user is not bound: nothing to report.
    assert authz(crb("b", "gone", [user_subject("alice")])).authorize(req(user("bob"), "get")).reason == ""


def test_user_subjects_match_by_exact_name() -> None:
    a = grant_alice(READ_LLM)
    assert a.authorize(req(user("alice"), "get")).allowed
    assert not a.authorize(req(user("Alice"), "get")).allowed
    assert not a.authorize(req(user("alice2"), "get")).allowed


def test_group_subjects_match_membership() -> None:
    a = authz(cluster_role("reader", [READ_LLM]), crb("devs-read", "reader", [group_subject("devs")]))
    d = a.authorize(req(user("bob", "devs"), "get"))
    assert d.allowed
    assert d.reason == 'RBAC: allowed by ClusterRoleBinding "devs-read" of ClusterRole "reader" to Group "devs"'
    assert not a.authorize(req(user("bob", "ops"), "get")).allowed
    # A user named like the group is not a member.
    assert not a.authorize(req(user("devs"), "get")).allowed


def test_system_authenticated_group_binding() -> None:
    a = authz(cluster_role("reader", [READ_LLM]), crb("all", "reader", [group_subject("system:authenticated")]))
    assert a.authorize(req(user("anyone"), "get")).allowed
    assert not a.authorize(req(UserInfo("system:anonymous", ("system:unauthenticated",), {}), "get")).allowed


def test_service_account_subjects() -> None:
    bot_ns1 = UserInfo(service_account_username("ns1", "bot"), ("system:serviceaccounts",), {})
    bot_ns2 = UserInfo("system:serviceaccount:ns2:bot", (), {})
    a = authz(
        cluster_role("reader", [READ_LLM]),
        # no namespace in a RoleBinding: the binding's namespace
        rb("ns1", "local", "ClusterRole", "reader", [sa_subject("bot")]),
    )
    d = a.authorize(req(bot_ns1, "get", namespace="ns1"))
    assert d.allowed
    assert d.reason == 'RBAC: allowed by RoleBinding "local/ns1" of ClusterRole "reader" to ServiceAccount "bot/ns1"'
    assert not a.authorize(req(bot_ns2, "get", namespace="ns1")).allowed
    # A user literally named "bot" is not the service account.
    assert not a.authorize(req(user("bot"), "get", namespace="ns1")).allowed

    # An explicit namespace: the ns2 service account, granted in ns1.
    a = authz(cluster_role("reader", [READ_LLM]), rb("ns1", "x", "ClusterRole", "reader", [sa_subject("bot", "ns2")]))
    assert a.authorize(req(bot_ns2, "get", namespace="ns1")).allowed
    assert not a.authorize(req(bot_ns1, "get", namespace="ns1")).allowed
    assert not a.authorize(req(bot_ns2, "get", namespace="ns2")).allowed

    # In a ClusterRoleBinding a namespace is required: without one nothing matches.
    a = authz(cluster_role("reader", [READ_LLM]), crb("c", "reader", [sa_subject("bot")]))
    assert not a.authorize(req(bot_ns1, "get")).allowed
    a = authz(cluster_role("reader", [READ_LLM]), crb("c", "reader", [sa_subject("bot", "ns1")]))
    d = a.authorize(req(bot_ns1, "get", namespace="ns9"))
    assert d.allowed
    assert d.reason.endswith('to ServiceAccount "bot/ns1"')


def test_unknown_subject_kind_matches_nothing() -> None:
    a = authz(cluster_role("reader", [READ_LLM]), crb("c", "reader", [{"kind": "Robot", "name": "alice"}]))
    assert not a.authorize(req(ALICE, "get")).allowed


def test_first_matching_subject_is_described() -> None:
    a = authz(
        cluster_role("reader", [READ_LLM]),
        crb("c", "reader", [user_subject("bob"), group_subject("devs"), user_subject("alice")]),
    )
    assert a.authorize(req(user("alice", "devs"), "get")).reason.endswith('to Group "devs"')


def test_system_masters_are_allowed_everything() -> None:
    root = UserInfo("root", ("system:masters",), {})
    a = authz()
    for attrs in (
        req(root, "delete", resource="users", group=IAM, namespace="", name="x"),
        req(root, "escalate", resource="clusterroles", group=IAM, namespace=""),
        Attributes.non_resource(root, "post", "/anything"),
    ):
        d = a.authorize(attrs)
        assert d.allowed
        assert d.reason == ""
    # Only the group counts, not the name.
    assert not a.authorize(req(user("system:masters"), "get")).allowed


# --- aggregation ---------------------------------------------------------------------------------


def test_aggregation_collects_rules_of_matching_cluster_roles() -> None:
    a = authz(
        cluster_role("monitoring", [m(["get"], ["ignored-own-rule"])], selectors=[{"matchLabels": {"agg": "mon"}}]),
        cluster_role("mon-llm", [rule(["get"], LLM, ["llmservices"])], labels={"agg": "mon"}),
        cluster_role("mon-rag", [rule(["list"], LLM, ["ragservices"])], labels={"agg": "mon", "x": "y"}),
        cluster_role("other", [rule(["delete"], LLM, ["llmservices"])], labels={"agg": "no"}),
        crb("b", "monitoring", [user_subject("alice")]),
    )  # fmt: skip
    d = a.authorize(req(ALICE, "get", name="x"))
    assert d.allowed
    assert d.reason == 'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "monitoring" to User "alice"'
    assert a.authorize(req(ALICE, "list", resource="ragservices")).allowed
    assert not a.authorize(req(ALICE, "delete", name="x")).allowed
    # The aggregated role's own rules are replaced by the aggregated ones, as the controller does.
    assert not a.authorize(req(ALICE, "get", resource="ignored-own-rule")).allowed


def test_aggregation_with_any_of_several_selectors_and_expressions() -> None:
    a = authz(
        cluster_role(
            "agg",
            selectors=[
                {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
                {"matchLabels": {"team": "x"}, "matchExpressions": [{"key": "off", "operator": "DoesNotExist"}]},
            ],
        ),
        cluster_role("tier-b", [rule(["get"], LLM, ["llmservices"])], labels={"tier": "b"}),
        cluster_role("tier-c", [rule(["list"], LLM, ["llmservices"])], labels={"tier": "c"}),
        cluster_role("team-x", [rule(["create"], LLM, ["llmservices"])], labels={"team": "x"}),
        cluster_role("team-x-off", [rule(["delete"], LLM, ["llmservices"])], labels={"team": "x", "off": ""}),
        crb("b", "agg", [user_subject("alice")]),
    )
    assert a.authorize(req(ALICE, "get", name="n")).allowed
    assert not a.authorize(req(ALICE, "list")).allowed
    assert a.authorize(req(ALICE, "create")).allowed
    assert not a.authorize(req(ALICE, "delete", name="n")).allowed


def test_aggregation_chains_and_cycles() -> None:
    a = authz(
        cluster_role("top", selectors=[{"matchLabels": {"to-top": "true"}}]),
        cluster_role("middle", labels={"to-top": "true"}, selectors=[{"matchLabels": {"to-middle": "true"}}]),
        cluster_role("leaf", [rule(["get"], LLM, ["llmservices"])], labels={"to-middle": "true"}),
        # a cycle: top aggregates cyc, cyc aggregates top
        cluster_role("cyc", labels={"to-top": "true"}, selectors=[{"matchLabels": {"cyc": "true"}}]),
        crb("b", "top", [user_subject("alice")]),
        crb("c", "cyc", [user_subject("bob")]),
    )
    assert a.authorize(req(ALICE, "get", name="n")).allowed
    assert not a.authorize(req(user("bob"), "get", name="n")).allowed
    assert [r.verbs for r in a.rules_for(ALICE, "").resource_rules] == [("get",)]


def test_aggregation_ignores_invalid_and_empty_selectors() -> None:
    a = authz(
        cluster_role("agg", selectors=[{"matchExpressions": [{"key": "k", "operator": "Bogus"}]}]),
        cluster_role("any", [rule(["get"], LLM, ["llmservices"])], labels={"k": "v"}),
        crb("b", "agg", [user_subject("alice")]),
    )
    assert not a.authorize(req(ALICE, "get")).allowed
    assert a.rules_for(ALICE, "").incomplete
    # An empty selector selects every ClusterRole (as metav1.LabelSelectorAsSelector).
    a = authz(
        cluster_role("agg", selectors=[{}]),
        cluster_role("any", [rule(["get"], LLM, ["llmservices"])]),
        crb("b", "agg", [user_subject("alice")]),
    )
    assert a.authorize(req(ALICE, "get")).allowed


def test_aggregation_follows_the_snapshot() -> None:
    base: list[JSON] = [
        cluster_role("agg", selectors=[{"matchLabels": {"a": "b"}}]),
        crb("b", "agg", [user_subject("alice")]),
    ]
    assert not authz(*base).authorize(req(ALICE, "get")).allowed
    added = cluster_role("extra", [rule(["get"], LLM, ["llmservices"])], labels={"a": "b"})
    assert authz(*base, added).authorize(req(ALICE, "get")).allowed


# --- rules_for -----------------------------------------------------------------------------------


def test_rules_for_splits_and_scopes() -> None:
    a = authz(
        cluster_role("global", [rule(["get"], urls=["/healthz"]), rule(["list"], [CLUSTER], ["clusters"])]),
        crb("g", "global", [user_subject("alice")]),
        role("ns1", "local", [rule(["create"], LLM, ["llmservices"], ["a"])]),
        rb("ns1", "l", "Role", "local", [user_subject("alice")]),
    )
    cluster_wide = a.rules_for(ALICE, "")
    assert cluster_wide.resource_rules == [Rule(("list",), (CLUSTER,), ("clusters",))]
    assert cluster_wide.non_resource_rules == [Rule(("get",), non_resource_urls=("/healthz",))]
    assert cluster_wide.incomplete is False
    resource, non_resource, incomplete = a.rules_for(ALICE, "ns1")
    assert [r.to_dict() for r in resource] == [
        {"verbs": ["list"], "apiGroups": [CLUSTER], "resources": ["clusters"]},
        {"verbs": ["create"], "apiGroups": [MODEL], "resources": ["llmservices"], "resourceNames": ["a"]},
    ]
    assert [r.to_dict() for r in non_resource] == [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]
    assert not incomplete
    assert a.rules_for(user("bob"), "ns1") == ([], [], False)


def test_rules_for_is_incomplete_when_a_role_is_missing() -> None:
    a = authz(rb("ns1", "l", "Role", "gone", [user_subject("alice")]))
    assert a.rules_for(ALICE, "ns1") == ([], [], True)
    assert a.resolve(ALICE, "ns1").evaluation_error == 'role.iam.kubellm.io "gone" not found'


def test_rules_for_system_masters_shows_full_authority() -> None:
    resource, non_resource, _ = authz().rules_for(UserInfo("root", ("system:masters",), {}), "ns1")
    assert [r.to_dict() for r in resource] == [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
    assert [r.to_dict() for r in non_resource] == [{"verbs": ["*"], "nonResourceURLs": ["*"]}]


# --- covers --------------------------------------------------------------------------------------

COVER_CASES: list[tuple[str, list[JSON], list[JSON], bool]] = [
    ("star covers all", [rule(["*"], ["*"], ["*"])], [m(["get", "create"], ["llmservices", "x/y"], ["n"])], True),
    ("same rule", [READ_LLM], [READ_LLM], True),
    ("subset of verbs", [READ_LLM], [m(["get"], LS)], True),
    ("extra verb", [READ_LLM], [m(["get", "create"], LS)], False),
    ("other group", [READ_LLM], [rule(["get"], [CLUSTER], LS)], False),
    ("split across owners", [m(["get"], LS), m(["list"], LS)], [READ_LLM], True),
    ("resource does not cover subresource", [READ_LLM], [m(["get"], ["llmservices/scale"])], False),
    ("*/sub covers r/sub", [m(["get"], ["*/scale"])], [m(["get"], ["llmservices/scale"])], True),
    ("*/sub does not cover resource", [m(["get"], ["*/scale"])], [m(["get"], LS)], False),
    ("names restrict owner", [m(["get"], LS, ["a"])], [m(["get"], LS)], False),
    ("named owner covers same name", [m(["get"], LS, ["a", "b"])], [m(["get"], LS, ["b"])], True),
    ("named owner other name", [m(["get"], LS, ["a"])], [m(["get"], LS, ["c"])], False),
    ("unnamed owner covers named", [READ_LLM], [m(["get"], LS, ["c"])], True),
    ("url exact", [rule(["get"], urls=["/healthz"])], [rule(["get"], urls=["/healthz"])], True),
    ("url wildcard", [rule(["get"], urls=["/healthz/*"])], [rule(["get"], urls=["/healthz/etcd"])], True),
    ("url wildcard not parent", [rule(["get"], urls=["/healthz/*"])], [rule(["get"], urls=["/healthz"])], False),
    ("url star", [rule(["*"], urls=["*"])], [rule(["post"], urls=["/x"])], True),
    ("resources do not cover urls", [rule(["*"], ["*"], ["*"])], [rule(["get"], urls=["/healthz"])], False),
    ("urls do not cover resources", [rule(["*"], urls=["*"])], [READ_LLM], False),
    ("nothing requested", [], [], True),
    ("nothing held", [], [READ_LLM], False),
]  # fmt: skip


@pytest.mark.parametrize(("owner", "requested", "expected"), [c[1:] for c in COVER_CASES],
                         ids=[c[0] for c in COVER_CASES])  # fmt: skip
def test_covers_matrix(owner: list[JSON], requested: list[JSON], expected: bool) -> None:
    ok, uncovered = covers(owner, requested)
    assert ok is expected
    assert (not uncovered) is expected


def test_covers_lists_the_broken_down_missing_rules() -> None:
    ok, missing = covers([READ_LLM], [rule(["get", "create", "delete"], LLM, ["llmservices", "ragservices"])])
    assert not ok
    assert {(r.verbs[0], r.resources[0]) for r in missing} == {
        ("create", "llmservices"), ("delete", "llmservices"),
        ("get", "ragservices"), ("create", "ragservices"), ("delete", "ragservices"),
    }  # fmt: skip


# --- escalation prevention -----------------------------------------------------------------------

EDITOR = user("ed")


def editor_world(*extra: JSON) -> Authorizer:
    """ed may read and write llmservices in ns1 (and nothing else)."""
    return authz(
        role("ns1", "llm-editor", [rule(["get", "list", "create", "update"], LLM, ["llmservices"])]),
        rb("ns1", "ed", "Role", "llm-editor", [user_subject("ed")]),
        role("ns1", "reader", [rule(["get"], LLM, ["llmservices"])]),
        cluster_role("big", [rule(["*"], LLM, ["*"])]),
        *extra,
    )


def test_role_write_within_held_rules_is_allowed() -> None:
    a = editor_world()
    ok = a.check_role_write(EDITOR, role("ns1", "mine", [rule(["get", "create"], LLM, ["llmservices"])]))
    assert ok.allowed


def test_role_write_beyond_held_rules_is_refused_with_kube_message() -> None:
    a = editor_world()
    check = a.check_role_write(EDITOR, role("ns1", "mine", [rule(["get", "delete", "patch"], LLM, ["llmservices"])]))
    assert not check.allowed
    assert not check.role_missing
    assert check.message == (
        'user "ed" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:["model.kubellm.io"], Resources:["llmservices"], Verbs:["delete" "patch"]}'
    )
    # The same rules in another namespace, where ed holds nothing.
    assert not a.check_role_write(EDITOR, role("ns2", "mine", [rule(["get"], LLM, ["llmservices"])])).allowed
    # A ClusterRole is checked against cluster-wide rules only: ed's RoleBinding does not count.
    assert not a.check_role_write(EDITOR, cluster_role("mine", [rule(["get"], LLM, ["llmservices"])])).allowed


def test_escalate_permission_bypasses_the_rule_check() -> None:
    a = editor_world(
        role("ns1", "escalator", [rule(["escalate"], [IAM], ["roles"])]),
        rb("ns1", "esc", "Role", "escalator", [user_subject("ed")]),
    )
    assert a.can_escalate(EDITOR, "Role", "ns1")
    assert not a.can_escalate(EDITOR, "Role", "ns2")
    assert not a.can_escalate(EDITOR, "ClusterRole")
    assert a.check_role_write(EDITOR, role("ns1", "mine", [rule(["*"], ["*"], ["*"])])).allowed
    assert not a.check_role_write(EDITOR, role("ns2", "mine", [rule(["*"], ["*"], ["*"])])).allowed


def test_escalate_limited_by_resource_name() -> None:
    a = editor_world(
        cluster_role("esc-one", [rule(["escalate"], [IAM], ["clusterroles"], ["one"])]),
        crb("esc", "esc-one", [user_subject("ed")]),
    )
    assert a.check_role_write(EDITOR, cluster_role("one", [rule(["*"], ["*"], ["*"])])).allowed
    assert not a.check_role_write(EDITOR, cluster_role("two", [rule(["*"], ["*"], ["*"])])).allowed


def test_aggregation_rule_needs_full_authority() -> None:
    # alice may write ClusterRoles and holds everything on KubeLLM's groups, but not `escalate` nor `*`.
    almost = [rule(["*"], [MODEL, CLUSTER], ["*"]), rule(["create", "update"], [IAM], ["clusterroles"])]
    a = authz(cluster_role("almost", almost), crb("b", "almost", [user_subject("alice")]))
    agg = cluster_role("agg", selectors=[{"matchLabels": {"a": "b"}}])
    check = a.check_role_write(ALICE, agg)
    assert check == type(check)(False, "must have cluster-admin privileges to use the aggregationRule")
    # Removing an aggregationRule is checked too.
    assert not a.check_role_write(ALICE, cluster_role("agg"), old=agg).allowed
    full = authz(cluster_role("all", [rule(["*"], ["*"], ["*"]), rule(["*"], urls=["*"])]),
                 crb("b", "all", [user_subject("alice")]))  # fmt: skip
    assert full.check_role_write(ALICE, agg).allowed


def test_update_of_gc_fields_only_is_allowed() -> None:
    a = editor_world()
    old = role("ns1", "reader", [rule(["*"], ["*"], ["*"])])
    new = {**old, "metadata": {**old["metadata"], "finalizers": ["x"]}}
    assert a.check_role_write(EDITOR, new, old=old).allowed
    changed = {**new, "rules": [rule(["*"], ["*"], ["*"]), READ_LLM]}
    assert not a.check_role_write(EDITOR, changed, old=old).allowed


def test_binding_a_role_whose_rules_are_held_is_allowed() -> None:
    a = editor_world()
    assert a.check_binding_write(EDITOR, rb("ns1", "x", "Role", "reader", [user_subject("bob")])).allowed
    assert a.check_binding_write(EDITOR, rb("ns1", "x", "Role", "llm-editor", [user_subject("bob")])).allowed


def test_binding_a_bigger_role_is_refused() -> None:
    a = editor_world()
    check = a.check_binding_write(EDITOR, rb("ns1", "x", "ClusterRole", "big", [user_subject("bob")]))
    assert not check.allowed
    assert "is attempting to grant RBAC permissions not currently held" in check.message
    assert '{APIGroups:["model.kubellm.io"], Resources:["*"], Verbs:["*"]}' in check.message
    # Binding the role ed holds in ns1, but in ns2, is escalation.
    assert not a.check_binding_write(EDITOR, rb("ns2", "x", "ClusterRole", "big", [user_subject("bob")])).allowed
    # A ClusterRoleBinding needs cluster-wide rules.
    assert not a.check_binding_write(EDITOR, crb("x", "big", [user_subject("bob")])).allowed


def test_bind_permission_bypasses_the_rule_check() -> None:
    a = editor_world(
        role("ns1", "binder", [rule(["bind"], [IAM], ["clusterroles"], ["big"])]),
        rb("ns1", "binder", "Role", "binder", [user_subject("ed")]),
    )
    ref = {"apiGroup": IAM, "kind": "ClusterRole", "name": "big"}
    assert a.can_bind(EDITOR, ref, "ns1")
    assert a.can_bind(EDITOR, iamv1.RoleRef(kind="ClusterRole", name="big"), "ns1")
    assert not a.can_bind(EDITOR, {**ref, "name": "other"}, "ns1")
    assert not a.can_bind(EDITOR, ref, "ns2")
    assert not a.can_bind(EDITOR, {**ref, "kind": "Role"}, "ns1")
    assert a.check_binding_write(EDITOR, rb("ns1", "x", "ClusterRole", "big", [user_subject("bob")])).allowed
    assert not a.check_binding_write(EDITOR, rb("ns2", "x", "ClusterRole", "big", [user_subject("bob")])).allowed


def test_binding_a_missing_role() -> None:
    check = editor_world().check_binding_write(EDITOR, rb("ns1", "x", "Role", "gone", [user_subject("bob")]))
    assert (check.allowed, check.role_missing, check.message) == (False, True, 'role.iam.kubellm.io "gone" not found')


def test_system_masters_may_write_any_role_or_binding() -> None:
    root = UserInfo("root", ("system:masters",), {})
    a = authz()
    assert a.check_role_write(root, cluster_role("agg", [rule(["*"], ["*"], ["*"])], selectors=[{}])).allowed
    assert a.check_binding_write(root, crb("x", "gone", [user_subject("bob")])).allowed
    assert a.can_bind(root, {"kind": "ClusterRole", "name": "anything"})
    assert a.can_escalate(root, "ClusterRole")


# --- default roles -------------------------------------------------------------------------------


def defaults_world(*extra: JSON) -> Authorizer:
    return authz(*default_cluster_roles(), *default_cluster_role_bindings(), *extra)


def bound(kind_role: str, who: str = "alice", namespace: str = "ns1") -> JSON:
    return rb(namespace, f"{who}-{kind_role}", "ClusterRole", kind_role, [user_subject(who)])


def test_default_roles_are_valid_objects() -> None:
    objects = default_cluster_roles() + default_cluster_role_bindings()
    kinds = {info.kind: info for info in iamv1.RESOURCES}
    for obj in objects:
        info = kinds[obj["kind"]]
        decoded = decode(info.model, obj, FieldValidation.STRICT)
        assert (decoded.field_errors, decoded.warnings) == ([], []), obj["metadata"]["name"]
        assert info.validate is not None
        assert info.validate(decoded.obj) == [], obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
    names = {o["metadata"]["name"] for o in default_cluster_roles()}
    assert {"admin", "edit", "view", "cluster-admin"} <= names
    # Fresh copies: changing one does not change the next.
    default_cluster_roles()[0]["rules"].clear()
    assert default_cluster_roles()[0]["rules"]


def test_default_roles_aggregation_labels() -> None:
    by_name = {o["metadata"]["name"]: o for o in default_cluster_roles()}
    for name in ("admin", "edit", "view"):
        selectors = by_name[name]["aggregationRule"]["clusterRoleSelectors"]
        assert selectors == [{"matchLabels": {f"iam.kubellm.io/aggregate-to-{name}": "true"}}]
    assert by_name["edit"]["metadata"]["labels"]["iam.kubellm.io/aggregate-to-admin"] == "true"
    assert by_name["view"]["metadata"]["labels"]["iam.kubellm.io/aggregate-to-edit"] == "true"


def test_extensions_aggregate_into_default_roles() -> None:
    ext = cluster_role("ext-view", [rule(["get"], ["ext.io"], ["widgets"])],
                       labels={"iam.kubellm.io/aggregate-to-view": "true"})  # fmt: skip
    a = defaults_world(ext, bound("admin", "ann"), bound("view", "vic"))
    for who in ("ann", "vic"):
        assert a.authorize(req(user(who), "get", resource="widgets", group="ext.io")).allowed


VIEW_EDIT_ADMIN: list[tuple[str, str, str, str, tuple[bool, bool, bool]]] = [
    # verb, resource, subresource, group -> allowed for (view, edit, admin)
    ("get", "llmservices", "", MODEL, (True, True, True)),
    ("list", "llmservices", "", MODEL, (True, True, True)),
    ("watch", "ragservices", "", MODEL, (True, True, True)),
    ("get", "llmservices", "status", MODEL, (True, True, True)),
    ("get", "llmservices", "scale", MODEL, (True, True, True)),
    ("create", "llmservices", "", MODEL, (False, True, True)),
    ("update", "llmservices", "", MODEL, (False, True, True)),
    ("patch", "ragservices", "", MODEL, (False, True, True)),
    ("delete", "ragservices", "", MODEL, (False, True, True)),
    ("deletecollection", "llmservices", "", MODEL, (False, True, True)),
    ("update", "llmservices", "scale", MODEL, (False, True, True)),
    ("update", "llmservices", "status", MODEL, (False, False, False)),
    ("create", "rolebindings", "", IAM, (False, False, True)),
    ("delete", "roles", "", IAM, (False, False, True)),
    ("list", "rolebindings", "", IAM, (False, False, True)),
    ("escalate", "roles", "", IAM, (False, False, False)),
    ("bind", "clusterroles", "", IAM, (False, False, False)),
    ("get", "users", "", IAM, (False, False, False)),
    ("list", "loginrecords", "", IAM, (False, False, False)),
    ("create", "clusters", "", CLUSTER, (False, False, False)),
]


@pytest.mark.parametrize(("verb", "resource", "subresource", "group", "expected"), VIEW_EDIT_ADMIN)
def test_default_view_edit_admin_in_a_namespace(
    verb: str, resource: str, subresource: str, group: str, expected: tuple[bool, bool, bool]
) -> None:
    a = defaults_world(bound("view", "vic"), bound("edit", "eve"), bound("admin", "ann"))
    for who, want in zip(("vic", "eve", "ann"), expected):
        attrs = req(user(who), verb, resource=resource, subresource=subresource, group=group, namespace="ns1")
        assert a.authorize(attrs).allowed is want, who
        # Bound in ns1 only.
        elsewhere = req(user(who), verb, resource=resource, subresource=subresource, group=group, namespace="ns2")
        assert not a.authorize(elsewhere).allowed, who


def test_default_view_reads_clusters_when_bound_cluster_wide() -> None:
    a = defaults_world(crb("vic-view", "view", [user_subject("vic")]))
    assert a.authorize(req(user("vic"), "list", resource="clusters", group=CLUSTER, namespace="")).allowed
    assert not a.authorize(req(user("vic"), "update", resource="clusters", group=CLUSTER, namespace="")).allowed


def test_default_admin_grants_within_its_namespace_only() -> None:
    a = defaults_world(bound("admin", "ann"))
    ann = user("ann")
    # admin holds edit's and view's rules, and its own: it may bind them in ns1.
    for granted in ("view", "edit", "admin"):
        assert a.check_binding_write(ann, bound(granted, "bob")).allowed, granted
        assert not a.check_binding_write(ann, bound(granted, "bob", "ns2")).allowed, granted
    assert not a.check_binding_write(ann, bound("cluster-admin", "bob")).allowed
    assert not a.check_binding_write(ann, crb("x", "view", [user_subject("bob")])).allowed
    assert a.check_role_write(ann, role("ns1", "r", [rule(["get", "create"], [MODEL], ["llmservices"])])).allowed
    assert not a.check_role_write(ann, role("ns1", "r", [rule(["get"], [IAM], ["users"])])).allowed


def test_default_cluster_admin_and_discovery_bindings() -> None:
    a = defaults_world()
    root = UserInfo("root", ("system:masters",), {})
    assert a.authorize(req(root, "delete", resource="users", group=IAM, namespace="")).allowed
    anyone = user("anyone")
    assert a.authorize(Attributes.non_resource(anyone, "get", "/apis/model.kubellm.io/v1alpha1")).allowed
    assert a.authorize(Attributes.non_resource(anyone, "get", "/openapi/v2")).allowed
    assert not a.authorize(Attributes.non_resource(anyone, "get", "/metrics")).allowed
    assert a.authorize(
        req(anyone, "create", resource="selfsubjectrulesreviews", group="authorization.k8s.io", namespace="")
    ).allowed
    assert not a.authorize(req(anyone, "get")).allowed
    anonymous = UserInfo("system:anonymous", ("system:unauthenticated",), {})
    assert a.authorize(Attributes.non_resource(anonymous, "get", "/healthz")).allowed
    assert not a.authorize(Attributes.non_resource(anonymous, "get", "/apis")).allowed


# --- identity ------------------------------------------------------------------------------------


def test_user_info_and_service_account_names() -> None:
    u = UserInfo("a", ("g",), {"scopes": ("x",)})
    assert hash(u) == hash(UserInfo("a", ("g",), {}))
    with pytest.raises(AttributeError):
        u.name = "b"  # type: ignore[misc]
    assert service_account_username("ns", "bot") == "system:serviceaccount:ns:bot"
    assert split_service_account_username("system:serviceaccount:ns:bot") == ("ns", "bot")
    assert split_service_account_username("system:serviceaccount:ns") is None
    assert split_service_account_username("alice") is None
