"""Types of iam.kubellm.io/v1alpha1: User, LoginRecord, and RBAC (Role, ClusterRole, their bindings).

The RBAC kinds have the shape and semantics of rbac.authorization.k8s.io/v1: `rules`, `subjects`,
`roleRef` and `aggregationRule` sit at the top level, and there is no spec or status.

Every field has a default so that decoding never fails on a missing or dropped value; requiredness,
enums, ranges and forms are declared on the fields (`kubellm.apis.constraints`), and `validation.py`
adds the rules that cannot be declared. Docstrings and field descriptions are what `kubectl explain` shows.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from kubellm.apis.base import APIModel
from kubellm.apis.constraints import constrained, rules
from kubellm.apis.listtypes import atomic_list, set_list
from kubellm.apis.meta.v1.types import LabelSelector, ObjectMeta, TypedModel
from kubellm.apis.secrets import secret_field

GROUP = "iam.kubellm.io"
VERSION = "v1alpha1"

USER_SPEC_STATES = ("Active", "Disabled")
USER_STATES = ("Active", "Disabled", "LockedOut")
LOGIN_REASONS = ("Succeeded", "BadCredentials", "LockedOut", "Disabled", "Throttled", "UnknownUser")
MAX_EMAIL_LEN = 254


# --- User ----------------------------------------------------------------------------------------


class UserSpec(APIModel):
    """The account of a person: contact, groups, whether it may log in, and its password."""

    email: str = constrained(
        default="", required=True, max_length=MAX_EMAIL_LEN, description="Email address of the user."
    )
    display_name: str = Field(default="", description="Name shown for the user.")
    groups: list[str] = set_list(
        default_factory=list, description="Groups the user belongs to; RBAC subjects of kind Group match them."
    )
    state: str = constrained(
        default="Active", required=True, enum=USER_SPEC_STATES,
        description="Active or Disabled: a disabled user cannot log in. LockedOut is only ever a status.",
    )
    password: str | None = secret_field(
        default=None,
        description="Write-only new password in plain text; the server stores its hash and never returns it.",
    )
    password_hash: str | None = secret_field(
        default=None, description="Hash of the password; set by the server only and never returned to clients."
    )


class UserStatus(APIModel):
    """The observed state of a user's logins."""

    state: str = constrained(
        default="", enum=("", *USER_STATES), description="Effective state: Active, Disabled or LockedOut."
    )
    locked_until: str | None = constrained(
        default=None, format="date-time", description="When a lock-out after failed logins ends (RFC3339)."
    )
    failed_login_count: int = constrained(
        default=0, minimum=0, description="Failed logins since the last successful one."
    )
    last_login_time: str | None = constrained(
        default=None, format="date-time", description="When the user last logged in (RFC3339)."
    )


class User(TypedModel):
    """User is a person who can log in to KubeLLM."""

    metadata: ObjectMeta = constrained(
        required=True, default_factory=ObjectMeta, description="Standard object metadata."
    )
    spec: UserSpec = constrained(required=True, default_factory=UserSpec, description="The user's account settings.")
    status: UserStatus | None = Field(
        default=None, description="Observed state of the user's logins; written by the server through /status."
    )


# --- LoginRecord ---------------------------------------------------------------------------------


class LoginRecordSpec(APIModel):
    """One login attempt: who, from where, when, and the outcome."""

    username: str = constrained(default="", required=True, description="Name of the user who tried to log in.")
    success: bool = Field(default=False, description="Whether the login succeeded.")
    reason: str = constrained(
        default="", enum=("", *LOGIN_REASONS),
        description="Outcome: Succeeded, BadCredentials, LockedOut, Disabled, Throttled or UnknownUser.",
    )
    source_ip: str = Field(default="", alias="sourceIP", description="IP address the attempt came from.")
    user_agent: str = Field(default="", description="User-Agent header of the attempt.")
    time: str | None = constrained(
        default=None, format="date-time", description="When the attempt was made (RFC3339)."
    )


class LoginRecord(TypedModel):
    """LoginRecord is an audit entry for one login attempt; its spec never changes."""

    metadata: ObjectMeta = constrained(
        required=True, default_factory=ObjectMeta, description="Standard object metadata."
    )
    spec: LoginRecordSpec = constrained(
        required=True, default_factory=LoginRecordSpec, description="The login attempt."
    )


# --- RBAC ----------------------------------------------------------------------------------------


class PolicyRule(APIModel):
    """Verbs allowed on resources or on non-resource URLs."""

    verbs: list[str] = atomic_list(
        json_schema_extra=rules(required="verbs must contain at least one value"),
        default_factory=list, description='Verbs allowed, e.g. get, list, watch, create; "*" means all.',
    )
    api_groups: list[str] = atomic_list(
        default_factory=list, description='API groups of the resources; "" is the core group, "*" means all.'
    )
    resources: list[str] = atomic_list(
        default_factory=list, description="Resources the rule applies to, e.g. llmservices or llmservices/scale."
    )
    resource_names: list[str] = atomic_list(
        default_factory=list, description="Object names the rule is limited to; empty means every object."
    )
    non_resource_urls: list[str] = atomic_list(
        default_factory=list,
        alias="nonResourceURLs",
        description='URL paths such as /healthz; "*" at the end is a prefix match. ClusterRoles only.',
    )


class AggregationRule(APIModel):
    """How a ClusterRole collects the rules of other ClusterRoles."""

    cluster_role_selectors: list[LabelSelector] = atomic_list(
        json_schema_extra=rules(required="at least one clusterRoleSelector required if aggregationRule is non-nil"),
        default_factory=list,
        description="ClusterRoles matching any of these selectors contribute their rules.",
    )


class Role(TypedModel):
    """Role is a namespaced set of permissions, granted by a RoleBinding."""

    metadata: ObjectMeta = constrained(
        required=True, default_factory=ObjectMeta, description="Standard object metadata."
    )
    rules: list[PolicyRule] = atomic_list(default_factory=list, description="The permissions of this Role.")


class ClusterRole(TypedModel):
    """ClusterRole is a cluster-wide set of permissions, granted by a RoleBinding or a ClusterRoleBinding."""

    metadata: ObjectMeta = constrained(
        required=True, default_factory=ObjectMeta, description="Standard object metadata."
    )
    rules: list[PolicyRule] = atomic_list(
        default_factory=list, description="The permissions of this ClusterRole."
    )
    aggregation_rule: AggregationRule | None = Field(
        default=None,
        description="If set, the server fills rules from the ClusterRoles the selectors match.",
    )


USER_KIND = "User"
GROUP_KIND = "Group"
SERVICE_ACCOUNT_KIND = "ServiceAccount"
SUBJECT_KINDS = (SERVICE_ACCOUNT_KIND, USER_KIND, GROUP_KIND)


class Subject(APIModel):
    """Who a binding grants a role to: a user, a group or a service account."""

    kind: str = constrained(
        default="", required=True, enum=SUBJECT_KINDS, description="Kind of subject: User, Group or ServiceAccount."
    )
    api_group: str = Field(
        default="",
        description='API group of the subject: iam.kubellm.io (the default) for User and Group, "" for ServiceAccount.',
    )
    name: str = constrained(default="", required=True, description="Name of the user, group or service account.")
    namespace: str = Field(
        default="",
        description="Namespace of a ServiceAccount; in a RoleBinding it defaults to the binding's namespace.",
    )

    @model_validator(mode="after")
    def _default_api_group(self) -> Subject:
        # As SetDefaults_Subject in rbac/v1.
        if not self.api_group and self.kind in (USER_KIND, GROUP_KIND):
            self.api_group = GROUP
        return self


class RoleRef(APIModel):
    """The role a binding grants. It cannot change once the binding exists."""

    api_group: str = constrained(default=GROUP, enum=(GROUP,), description="API group of the role: iam.kubellm.io.")
    kind: str = constrained(
        default="", required=True, enum=("Role", "ClusterRole"), description="Role or ClusterRole."
    )
    name: str = constrained(default="", required=True, description="Name of the role.")


class ClusterRoleRef(RoleRef):
    """The ClusterRole a ClusterRoleBinding grants. It cannot change once the binding exists."""

    kind: str = constrained(
        default="", required=True, enum=("ClusterRole",), description="ClusterRole: the only kind of role a "
        "ClusterRoleBinding can grant.",
    )


class RoleBinding(TypedModel):
    """RoleBinding grants a Role or ClusterRole to subjects, within its namespace."""

    metadata: ObjectMeta = constrained(
        required=True, default_factory=ObjectMeta, description="Standard object metadata."
    )
    subjects: list[Subject] = atomic_list(default_factory=list, description="Who the role is granted to.")
    role_ref: RoleRef = constrained(
        required=True, default_factory=RoleRef, description="The Role or ClusterRole granted; immutable."
    )


class ClusterRoleBinding(TypedModel):
    """ClusterRoleBinding grants a ClusterRole to subjects across the whole server."""

    metadata: ObjectMeta = constrained(
        required=True, default_factory=ObjectMeta, description="Standard object metadata."
    )
    subjects: list[Subject] = atomic_list(default_factory=list, description="Who the role is granted to.")
    role_ref: ClusterRoleRef = constrained(
        required=True, default_factory=ClusterRoleRef, description="The ClusterRole granted; immutable."
    )
