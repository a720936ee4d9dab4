"""Types of iam.kubellm.io/v1alpha1: User, LoginRecord, and RBAC (Role, ClusterRole, their bindings).

The RBAC kinds have the shape and semantics of rbac.authorization.k8s.io/v1: `rules`, `subjects`,
`roleRef` and `aggregationRule` sit at the top level, and there is no spec or status.

Every field has a default so that decoding never fails on a missing or dropped value; requiredness,
enums and ranges are checked in `validation.py`.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from kubellm.apis.base import APIModel
from kubellm.apis.cluster.v1alpha1.types import LabelSelector
from kubellm.apis.meta.v1.types import ObjectMeta, TypedModel

GROUP = "iam.kubellm.io"
VERSION = "v1alpha1"


# --- User ----------------------------------------------------------------------------------------


class UserSpec(APIModel):
    email: str = ""
    display_name: str = ""
    groups: list[str] = Field(default_factory=list)
    state: str = "Active"  # Active or Disabled; LockedOut is only ever a status
    password: str | None = None  # write-only plaintext input; the server hashes it and clears it
    password_hash: str | None = None  # set by the server only; never returned to clients


class UserStatus(APIModel):
    state: str = ""  # Active, Disabled, LockedOut
    locked_until: str | None = None  # RFC3339
    failed_login_count: int = 0
    last_login_time: str | None = None  # RFC3339


class User(TypedModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: UserSpec = Field(default_factory=UserSpec)
    status: UserStatus | None = None


# --- LoginRecord ---------------------------------------------------------------------------------


class LoginRecordSpec(APIModel):
    username: str = ""
    success: bool = False
    reason: str = ""  # Succeeded, BadCredentials, LockedOut, Disabled, Throttled, UnknownUser
    source_ip: str = Field(default="", alias="sourceIP")
    user_agent: str = ""
    time: str | None = None  # RFC3339


class LoginRecord(TypedModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: LoginRecordSpec = Field(default_factory=LoginRecordSpec)


# --- RBAC ----------------------------------------------------------------------------------------


class PolicyRule(APIModel):
    verbs: list[str] = Field(default_factory=list)
    api_groups: list[str] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list)
    resource_names: list[str] = Field(default_factory=list)
    non_resource_urls: list[str] = Field(default_factory=list, alias="nonResourceURLs")


class AggregationRule(APIModel):
    cluster_role_selectors: list[LabelSelector] = Field(default_factory=list)


class Role(TypedModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    rules: list[PolicyRule] = Field(default_factory=list)


class ClusterRole(TypedModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    rules: list[PolicyRule] = Field(default_factory=list)
    aggregation_rule: AggregationRule | None = None


USER_KIND = "User"
GROUP_KIND = "Group"
SERVICE_ACCOUNT_KIND = "ServiceAccount"


class Subject(APIModel):
    kind: str = ""  # User, Group, ServiceAccount
    api_group: str = ""  # defaults to iam.kubellm.io for User and Group, "" for ServiceAccount
    name: str = ""
    namespace: str = ""  # ServiceAccount only

    @model_validator(mode="after")
    def _default_api_group(self) -> Subject:
        # As SetDefaults_Subject in rbac/v1.
        if not self.api_group and self.kind in (USER_KIND, GROUP_KIND):
            self.api_group = GROUP
        return self


class RoleRef(APIModel):
    api_group: str = GROUP
    kind: str = ""  # Role or ClusterRole
    name: str = ""


class RoleBinding(TypedModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    subjects: list[Subject] = Field(default_factory=list)
    role_ref: RoleRef = Field(default_factory=RoleRef)


class ClusterRoleBinding(TypedModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    subjects: list[Subject] = Field(default_factory=list)
    role_ref: RoleRef = Field(default_factory=RoleRef)
