"""Self reviews: who am I (authentication.k8s.io SelfSubjectReview) and what may I do
(authorization.k8s.io SelfSubjectAccessReview and SelfSubjectRulesReview), for `kubectl auth`."""

from __future__ import annotations

from typing import Any

from kubellm.apis import errors
from kubellm.apis.validation import field
from kubellm.service.identity import UserInfo
from kubellm.service.rbac import Authorizer
from kubellm.service.rbac.attributes import Attributes

AUTHENTICATION = "authentication.k8s.io"
AUTHORIZATION = "authorization.k8s.io"
REVIEWS = {(AUTHENTICATION, "selfsubjectreviews"), (AUTHORIZATION, "selfsubjectaccessreviews"),
           (AUTHORIZATION, "selfsubjectrulesreviews")}
VERSIONS = ("v1", "v1beta1", "v1alpha1")


def _user_info(user: UserInfo) -> dict[str, Any]:
    info: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        info["uid"] = user.uid
    if user.extra:
        info["extra"] = {k: list(v) for k, v in user.extra.items()}
    return info


def _spec(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.bad_request("the body of a review must be an object")
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise errors.bad_request("spec must be an object")
    return spec


def review(group: str, resource: str, version: str, user: UserInfo, authorizer: Authorizer,
           body: Any) -> dict[str, Any]:
    kind = {"selfsubjectreviews": "SelfSubjectReview", "selfsubjectaccessreviews": "SelfSubjectAccessReview",
            "selfsubjectrulesreviews": "SelfSubjectRulesReview"}[resource]
    out: dict[str, Any] = {"kind": kind, "apiVersion": f"{group}/{version}", "metadata": {"creationTimestamp": None}}
    if resource == "selfsubjectreviews":
        out["status"] = {"userInfo": _user_info(user)}
        return out
    spec = _spec(body)
    out["spec"] = spec
    if resource == "selfsubjectaccessreviews":
        res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if bool(res) == bool(non) or not isinstance(res or non, dict):
            raise errors.invalid(kind, group, "", [field.required(
                "spec.resourceAttributes", "exactly one of resourceAttributes and nonResourceAttributes must be "
                "specified")])
        if res:
            attrs = Attributes(user=user, verb=str(res.get("verb", "")), api_group=str(res.get("group", "")),
                               api_version=str(res.get("version", "")), resource=str(res.get("resource", "")),
                               subresource=str(res.get("subresource", "")), name=str(res.get("name", "")),
                               namespace=str(res.get("namespace", "")))
        else:
            assert isinstance(non, dict)
            attrs = Attributes.non_resource(user, str(non.get("verb", "")), str(non.get("path", "")))
        decision = authorizer.authorize(attrs)
        status: dict[str, Any] = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        out["status"] = status
        return out
    namespace = str(spec.get("namespace", ""))
    resolution = authorizer.resolve(user, namespace)
    rules = authorizer.rules_for(user, namespace)
    status = {
        "resourceRules": [_resource_rule(r.to_dict()) for r in rules.resource_rules],
        "nonResourceRules": [{"verbs": r.to_dict()["verbs"], "nonResourceURLs": r.to_dict()["nonResourceURLs"]}
                             for r in rules.non_resource_rules],
        "incomplete": rules.incomplete,
    }
    if resolution.evaluation_error:
        status["evaluationError"] = resolution.evaluation_error
    out["status"] = status
    return out


def _resource_rule(rule: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: v for k, v in rule.items() if k != "nonResourceURLs"}


