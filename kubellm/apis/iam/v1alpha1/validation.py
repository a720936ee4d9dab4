"""Validation of iam.kubellm.io/v1alpha1: User, LoginRecord, and RBAC as pkg/apis/rbac/validation.

What the fields declare (required names, emails' length, states, reasons, subject and role kinds,
timestamps: `types.py`) is checked by the declared validator; this module adds what cannot be declared and
returns both in the order of the fields.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from kubellm.apis.iam.v1alpha1.types import (
    GROUP,
    GROUP_KIND,
    LOGIN_REASONS,
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
from kubellm.apis.validation import declared, field, names
from kubellm.apis.validation.field import ErrorList, ErrorType, FieldError, Path
from kubellm.apis.validation.meta import validate_label_selector
from kubellm.apis.validation.values import validate_unique_names

SPEC = Path("spec")
STATUS = Path("status")

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
    errs = declared.validate(spec, path)
    if spec.email and not _EMAIL_RE.fullmatch(spec.email):
        errs.append(field.invalid(path.child("email"), spec.email, "must be a valid email address"))
    groups = path.child("groups")
    for i, g in enumerate(spec.groups):
        if not g.strip():
            errs.append(field.invalid(groups.index(i), g, "must not be empty"))
    errs.extend(validate_unique_names(spec.groups, groups))
    return errs


def validate_user_status(status: UserStatus, path: Path = STATUS) -> ErrorList:
    return declared.validate(status, path)


def validate_user(obj: User) -> ErrorList:
    return declared.spec_and_status(obj, validate_user_spec, validate_user_status)


def validate_user_update(new: User, old: User) -> ErrorList:
    return validate_user(new)


# --- LoginRecord ---------------------------------------------------------------------------------


def validate_login_record(obj: LoginRecord) -> ErrorList:
    spec = obj.spec
    errs = declared.validate(spec, SPEC)
    reason = SPEC.child("reason")
    if spec.reason not in LOGIN_REASONS:
        pass  # declared: empty, or an unsupported value
    elif spec.success and spec.reason != "Succeeded":
        errs.append(field.invalid(reason, spec.reason, 'must be "Succeeded" when success is true'))
    elif not spec.success and spec.reason == "Succeeded":
        errs.append(field.invalid(reason, spec.reason, 'may not be "Succeeded" when success is false'))
    if spec.source_ip:
        try:
            ipaddress.ip_address(spec.source_ip)
        except ValueError:
            errs.append(field.invalid(SPEC.child("sourceIP"), spec.source_ip, "must be a valid IP address"))
    return declared.in_field_order(LoginRecord, errs)


def validate_login_record_update(new: LoginRecord, old: LoginRecord) -> ErrorList:
    """A login record is an audit entry: its spec never changes (metadata such as labels may)."""
    errs = validate_login_record(new)
    if new.spec != old.spec:
        errs.append(field.forbidden(SPEC, "login records are immutable"))
    return declared.in_field_order(LoginRecord, errs)


# --- Role, ClusterRole ---------------------------------------------------------------------------


def validate_policy_rule(rule: PolicyRule, namespaced: bool, path: Path) -> ErrorList:
    """The rules of a PolicyRule that its declarations cannot say (where resources and URLs may be)."""
    errs: ErrorList = []
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
    return declared.in_field_order(Role, declared.validate(obj), _validate_rules(obj.rules, namespaced=True))


def validate_role_update(new: Role, old: Role) -> ErrorList:
    return validate_role(new)


def validate_cluster_role(obj: ClusterRole) -> ErrorList:
    errs = _validate_rules(obj.rules, namespaced=False)
    if obj.aggregation_rule is not None:
        selectors = Path("aggregationRule").child("clusterRoleSelectors")
        for i, sel in enumerate(obj.aggregation_rule.cluster_role_selectors):
            errs.extend(validate_label_selector(sel, selectors.index(i)))
    return declared.in_field_order(ClusterRole, declared.validate(obj), errs)


def validate_cluster_role_update(new: ClusterRole, old: ClusterRole) -> ErrorList:
    return validate_cluster_role(new)


# --- RoleBinding, ClusterRoleBinding -------------------------------------------------------------

ROLE_REF = Path("roleRef")


def validate_subject(subject: Subject, namespaced: bool, path: Path) -> ErrorList:
    """ValidateRoleBindingSubject. In a RoleBinding a ServiceAccount without namespace means the
    binding's own namespace; in a ClusterRoleBinding the namespace is required."""
    errs: ErrorList = []
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
    elif subject.kind in (USER_KIND, GROUP_KIND) and subject.api_group != GROUP:
        errs.append(field.not_supported(path.child("apiGroup"), subject.api_group, [GROUP]))
    return errs


def _validate_binding(ref: RoleRef, subjects: Sequence[Subject], namespaced: bool) -> ErrorList:
    errs: ErrorList = []
    if ref.name:
        errs.extend(field.invalid(ROLE_REF.child("name"), ref.name, m) for m in rbac_name(ref.name))
    for i, subject in enumerate(subjects):
        errs.extend(validate_subject(subject, namespaced, Path("subjects").index(i)))
    return errs


def _role_ref_unchanged(new: RoleRef, old: RoleRef) -> ErrorList:
    if new != old:
        return [field.invalid(ROLE_REF, new.model_dump(by_alias=True), "cannot change roleRef")]
    return []


def validate_role_binding(obj: RoleBinding) -> ErrorList:
    errs = _validate_binding(obj.role_ref, obj.subjects, namespaced=True)
    return declared.in_field_order(RoleBinding, declared.validate(obj), errs)


def validate_role_binding_update(new: RoleBinding, old: RoleBinding) -> ErrorList:
    return declared.in_field_order(RoleBinding, validate_role_binding(new),
                                   _role_ref_unchanged(new.role_ref, old.role_ref))


def validate_cluster_role_binding(obj: ClusterRoleBinding) -> ErrorList:
    errs = _validate_binding(obj.role_ref, obj.subjects, namespaced=False)
    return declared.in_field_order(ClusterRoleBinding, declared.validate(obj), errs)


def validate_cluster_role_binding_update(new: ClusterRoleBinding, old: ClusterRoleBinding) -> ErrorList:
    return declared.in_field_order(ClusterRoleBinding, validate_cluster_role_binding(new),
                                   _role_ref_unchanged(new.role_ref, old.role_ref))


validate_user_status_update = declared.status_only(validate_user_status)
"""The status subresource: only the status is written, so only the status is checked."""
