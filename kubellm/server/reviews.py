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
        out["status"] = {"userInfo": user.to_json()}
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




# --- reviews about someone else (the host-cluster delegation API that kube-apiserver serves too) ---------

TOKEN_REVIEW_SECRETS = (("spec", "token"),)
"""The bearer token a TokenReview carries: redacted in the audit log."""
DELEGATION = {(AUTHENTICATION, "tokenreviews"), (AUTHORIZATION, "subjectaccessreviews")}


def subject_access_review(version: str, authorizer: Authorizer, body: Any) -> dict[str, Any]:
    spec = _spec(body)
    extra = spec.get("extra") or {}
    subject = UserInfo(str(spec.get("user", "")), tuple(spec.get("groups") or ()),
                       {k: tuple(v) for k, v in extra.items()} if isinstance(extra, dict) else {},
                       str(spec.get("uid", "")))
    if not subject.name and not subject.groups:
        raise errors.invalid("SubjectAccessReview", AUTHORIZATION, "", [field.required(
            "spec.user", "at least one of user or group must be specified")])
    out = review(AUTHORIZATION, "selfsubjectaccessreviews", version, subject, authorizer, body)
    out["kind"] = "SubjectAccessReview"
    return out


def token_review(version: str, authenticate: Any, body: Any) -> dict[str, Any]:
    spec = _spec(body)
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise errors.invalid("TokenReview", AUTHENTICATION, "", [field.required("spec.token")])
    # The spec comes back as sent, as kube-apiserver returns it (clients' models require it); only a
    # caller allowed to create tokenreviews who already holds the token sees it.
    out: dict[str, Any] = {"kind": "TokenReview", "apiVersion": f"{AUTHENTICATION}/{version}",
                           "metadata": {"creationTimestamp": None}, "spec": {"token": token}}
    user = authenticate(token)
    out["status"] = {"authenticated": True, "user": user.to_json()} if user else {"authenticated": False}
    return out
