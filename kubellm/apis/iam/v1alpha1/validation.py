"""Validation of iam.kubellm.io/v1alpha1: User, LoginRecord, and RBAC as pkg/apis/rbac/validation."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from kubellm.apis.cluster.v1alpha1.validation import (
    at_least,
    validate_label_selector,
    validate_timestamp,
    validate_unique_names,
)
from kubellm.apis.iam.v1alpha1.types import (
    GROUP,
    GROUP_KIND,
    SERVICE_ACCOUNT_KIND,
    USER_KIND,
    ClusterRole,
    ClusterRoleBinding,
    LoginRecord,
    PolicyRule,
    Role,
    RoleBinding,
    RoleRef,
    Subject,
    User,
    UserSpec,
    UserStatus,
)
from kubellm.apis.validation import field, names
from kubellm.apis.validation.field import ErrorList, ErrorType, FieldError, Path

SPEC = Path("spec")
STATUS = Path("status")

USER_SPEC_STATES = ("Active", "Disabled")
USER_STATES = ("Active", "Disabled", "LockedOut")
LOGIN_REASONS = ("Succeeded", "BadCredentials", "LockedOut", "Disabled", "Throttled", "UnknownUser")
SUBJECT_KINDS = (SERVICE_ACCOUNT_KIND, USER_KIND, GROUP_KIND)
MAX_EMAIL_LEN = 254
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


def rbac_name(name: str) -> list[str]:
    """ValidateRBACName (path segment names): the names of Roles, ClusterRoles and their bindings may
    contain ':' as in "system:controller:foo". Pass it as the Store's name validator for these kinds."""
    for illegal in (".", ".."):
        if name == illegal:
            return [f"may not be '{illegal}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# --- User ----------------------------------------------------------------------------------------


def validate_user_spec(spec: UserSpec, path: Path = SPEC) -> ErrorList:
    errs: ErrorList = []
    email = path.child("email")
    if not spec.email:
        errs.append(field.required(email))
    elif len(spec.email) > MAX_EMAIL_LEN:
        errs.append(field.too_long(email, MAX_EMAIL_LEN))
    elif not _EMAIL_RE.match(spec.email):
        errs.append(field.invalid(email, spec.email, "must be a valid email address"))
    groups = path.child("groups")
    for i, g in enumerate(spec.groups):
        if not g.strip():
            errs.append(field.invalid(groups.index(i), g, "must not be empty"))
    errs.extend(validate_unique_names(spec.groups, groups))
    if not spec.state:
        errs.append(field.required(path.child("state")))
    elif spec.state not in USER_SPEC_STATES:
        errs.append(field.not_supported(path.child("state"), spec.state, USER_SPEC_STATES))
    return errs


def validate_user_status(status: UserStatus, path: Path = STATUS) -> ErrorList:
    errs: ErrorList = []
    if status.state and status.state not in USER_STATES:
        errs.append(field.not_supported(path.child("state"), status.state, USER_STATES))
    errs.extend(at_least(status.failed_login_count, 0, path.child("failedLoginCount")))
    errs.extend(validate_timestamp(status.locked_until, path.child("lockedUntil")))
    errs.extend(validate_timestamp(status.last_login_time, path.child("lastLoginTime")))
    return errs


def validate_user(obj: User) -> ErrorList:
    errs = validate_user_spec(obj.spec)
    if obj.status is not None:
        errs.extend(validate_user_status(obj.status))
    return errs


def validate_user_update(new: User, old: User) -> ErrorList:
    return validate_user(new)


# --- LoginRecord ---------------------------------------------------------------------------------


def validate_login_record(obj: LoginRecord) -> ErrorList:
    spec, errs = obj.spec, ErrorList()
    if not spec.username:
        errs.append(field.required(SPEC.child("username")))
    reason = SPEC.child("reason")
    if spec.reason and spec.reason not in LOGIN_REASONS:
        errs.append(field.not_supported(reason, spec.reason, LOGIN_REASONS))
    elif spec.success and spec.reason and spec.reason != "Succeeded":
        errs.append(field.invalid(reason, spec.reason, 'must be "Succeeded" when success is true'))
    elif not spec.success and spec.reason == "Succeeded":
        errs.append(field.invalid(reason, spec.reason, 'may not be "Succeeded" when success is false'))
    if spec.source_ip:
        try:
            ipaddress.ip_address(spec.source_ip)
        except ValueError:
            errs.append(field.invalid(SPEC.child("sourceIP"), spec.source_ip, "must be a valid IP address"))
    errs.extend(validate_timestamp(spec.time, SPEC.child("time")))
    return errs


def validate_login_record_update(new: LoginRecord, old: LoginRecord) -> ErrorList:
    """A login record is an audit entry: its spec never changes (metadata such as labels may)."""
    errs = validate_login_record(new)
    if new.spec != old.spec:
        errs.append(field.forbidden(SPEC, "login records are immutable"))
    return errs


# --- Role, ClusterRole ---------------------------------------------------------------------------


def validate_policy_rule(rule: PolicyRule, namespaced: bool, path: Path) -> ErrorList:
    errs: ErrorList = []
    if not rule.verbs:
        errs.append(field.required(path.child("verbs"), "verbs must contain at least one value"))
    if rule.non_resource_urls:
        urls = path.child("nonResourceURLs")
        if namespaced:
            errs.append(
                field.invalid(
                    urls, rule.non_resource_urls, "namespaced rules cannot apply to non-resource URLs"
                )
            )
        if rule.api_groups or rule.resources or rule.resource_names:
            errs.append(
                field.invalid(
                    urls,
                    rule.non_resource_urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return errs
    if not rule.api_groups:
        errs.append(
            field.required(path.child("apiGroups"), "resource rules must supply at least one api group")
        )
    if not rule.resources:
        errs.append(
            field.required(path.child("resources"), "resource rules must supply at least one resource")
        )
    return errs


def _validate_rules(rules: Sequence[PolicyRule], namespaced: bool) -> ErrorList:
    errs: ErrorList = []
    for i, rule in enumerate(rules):
        errs.extend(validate_policy_rule(rule, namespaced, Path("rules").index(i)))
    return errs


def validate_role(obj: Role) -> ErrorList:
    return _validate_rules(obj.rules, namespaced=True)


def validate_role_update(new: Role, old: Role) -> ErrorList:
    return validate_role(new)


def validate_cluster_role(obj: ClusterRole) -> ErrorList:
    errs = _validate_rules(obj.rules, namespaced=False)
    if obj.aggregation_rule is not None:
        selectors = Path("aggregationRule.clusterRoleSelectors")
        if not obj.aggregation_rule.cluster_role_selectors:
            errs.append(
                field.required(
                    selectors, "at least one clusterRoleSelector required if aggregationRule is non-nil"
                )
            )
        for i, sel in enumerate(obj.aggregation_rule.cluster_role_selectors):
            errs.extend(validate_label_selector(sel, selectors.index(i)))
    return errs


def validate_cluster_role_update(new: ClusterRole, old: ClusterRole) -> ErrorList:
    return validate_cluster_role(new)


# --- RoleBinding, ClusterRoleBinding -------------------------------------------------------------

ROLE_REF = Path("roleRef")


def validate_subject(subject: Subject, namespaced: bool, path: Path) -> ErrorList:
    """ValidateRoleBindingSubject. In a RoleBinding a ServiceAccount without namespace means the
    binding's own namespace; in a ClusterRoleBinding the namespace is required."""
    errs: ErrorList = []
    if not subject.name:
        errs.append(field.required(path.child("name")))
    if subject.kind == SERVICE_ACCOUNT_KIND:
        if subject.name:
            errs.extend(
                field.invalid(path.child("name"), subject.name, m)
                for m in names.dns1123_subdomain(subject.name)
            )
        if subject.api_group:
            errs.append(
                FieldError(
                    ErrorType.NOT_SUPPORTED,
                    str(path.child("apiGroup")),
                    subject.api_group,
                    'supported values: ""',
                )
            )
        if not namespaced and not subject.namespace:
            errs.append(field.required(path.child("namespace")))
    elif subject.kind in (USER_KIND, GROUP_KIND):
        if subject.api_group != GROUP:
            errs.append(field.not_supported(path.child("apiGroup"), subject.api_group, [GROUP]))
    else:
        errs.append(field.not_supported(path.child("kind"), subject.kind, SUBJECT_KINDS))
    return errs


def _validate_role_ref(ref: RoleRef, kinds: Sequence[str]) -> ErrorList:
    errs: ErrorList = []
    if ref.api_group != GROUP:
        errs.append(field.not_supported(ROLE_REF.child("apiGroup"), ref.api_group, [GROUP]))
    if ref.kind not in kinds:
        errs.append(field.not_supported(ROLE_REF.child("kind"), ref.kind, kinds))
    if not ref.name:
        errs.append(field.required(ROLE_REF.child("name")))
    else:
        errs.extend(field.invalid(ROLE_REF.child("name"), ref.name, m) for m in rbac_name(ref.name))
    return errs


def _validate_binding(
    ref: RoleRef, subjects: Sequence[Subject], kinds: Sequence[str], namespaced: bool
) -> ErrorList:
    errs = _validate_role_ref(ref, kinds)
    for i, subject in enumerate(subjects):
        errs.extend(validate_subject(subject, namespaced, Path("subjects").index(i)))
    return errs


def _role_ref_unchanged(new: RoleRef, old: RoleRef) -> ErrorList:
    if new != old:
        return [field.invalid(ROLE_REF, new.model_dump(by_alias=True), "cannot change roleRef")]
    return []


def validate_role_binding(obj: RoleBinding) -> ErrorList:
    return _validate_binding(obj.role_ref, obj.subjects, ("Role", "ClusterRole"), namespaced=True)


def validate_role_binding_update(new: RoleBinding, old: RoleBinding) -> ErrorList:
    return validate_role_binding(new) + _role_ref_unchanged(new.role_ref, old.role_ref)


def validate_cluster_role_binding(obj: ClusterRoleBinding) -> ErrorList:
    return _validate_binding(obj.role_ref, obj.subjects, ("ClusterRole",), namespaced=False)


def validate_cluster_role_binding_update(new: ClusterRoleBinding, old: ClusterRoleBinding) -> ErrorList:
    return validate_cluster_role_binding(new) + _role_ref_unchanged(new.role_ref, old.role_ref)


def validate_user_status_update(new: User, old: User) -> ErrorList:
    """The status subresource: only the status is written, so only the status is checked."""
    return validate_user_status(new.status) if new.status is not None else []
