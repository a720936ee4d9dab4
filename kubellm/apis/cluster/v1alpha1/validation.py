"""Validation of cluster.kubellm.io/v1alpha1 Cluster, and the checks every group here shares.

The shared checks (ranges, RFC3339 timestamps, URLs, label selectors, conditions) sit beside the
shared types in `types.py`; like them, they are candidates for `kubellm.apis.validation`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

from kubellm.apis.cluster.v1alpha1.types import (
    Cluster,
    ClusterCredentials,
    ClusterSpec,
    ClusterStatus,
    Condition,
    LabelSelector,
    LabelSelectorRequirement,
    Taint,
)
from kubellm.apis.validation import field, names
from kubellm.apis.validation.field import ErrorList, ErrorType, FieldError, Path

SPEC = Path("spec")
STATUS = Path("status")

# --- shared checks -------------------------------------------------------------------------------


def invalid_omitting_value(path: Path | str, detail: str) -> FieldError:
    """An Invalid error that does not echo the value (field.OmitValueType): for secrets."""
    return FieldError(ErrorType.INVALID, str(path), detail=detail)


def at_least(value: int, minimum: int, path: Path) -> ErrorList:
    if value < minimum:
        return [field.invalid(path, value, f"must be greater than or equal to {minimum}")]
    return []


def at_most(value: int, maximum: int, path: Path) -> ErrorList:
    if value > maximum:
        return [field.invalid(path, value, f"must be less than or equal to {maximum}")]
    return []


_RFC3339_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
RFC3339_MSG = 'must be an RFC3339 timestamp such as "2006-01-02T15:04:05Z"'


def is_rfc3339(value: str) -> bool:
    m = _RFC3339_RE.match(value)
    if not m:
        return False
    date, clock, fraction, zone = m.groups()
    fraction = (fraction or "")[:7]  # Python parses at most microseconds
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        datetime.fromisoformat(f"{date}T{clock}{fraction}{zone}")
    except ValueError:
        return False
    return True


def validate_timestamp(value: str | None, path: Path) -> ErrorList:
    if value and not is_rfc3339(value):
        return [field.invalid(path, value, RFC3339_MSG)]
    return []


def url_problems(value: str, schemes: Sequence[str], *, plain: bool = False) -> list[str]:
    """Why `value` is not an absolute URL with one of `schemes` (and, if `plain`, no user info,
    query or fragment)."""
    bad = [f"must be an absolute URL with scheme {' or '.join(schemes)}"]
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return bad
    if parts.scheme not in schemes or not parts.hostname or any(c.isspace() for c in value):
        return bad
    problems: list[str] = []
    if plain:
        if parts.username is not None or parts.password is not None:
            problems.append("user information is not permitted in the URL")
        if parts.query:
            problems.append("query parameters are not permitted")
        if parts.fragment or value.endswith("#"):
            problems.append("fragments are not permitted")
    return problems


def is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def validate_label_name(value: str, path: Path) -> ErrorList:
    return [field.invalid(path, value, m) for m in names.qualified_name(value)]


def validate_label_value(value: str, path: Path) -> ErrorList:
    return [field.invalid(path, value, m) for m in names.label_value(value)]


def validate_unique_names(values: Iterable[str], path: Path, child: str = "") -> ErrorList:
    """Duplicate errors for repeated non-empty values, at `path[i]` (or `path[i].child`)."""
    errs: ErrorList = []
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v and v in seen:
            errs.append(field.duplicate(path.index(i).child(child) if child else path.index(i), v))
        seen.add(v)
    return errs


_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _validate_selector_requirement(req: LabelSelectorRequirement, path: Path) -> ErrorList:
    errs: ErrorList = []
    if req.operator in ("In", "NotIn"):
        if not req.values:
            errs.append(
                field.required(path.child("values"), "must be specified when `operator` is 'In' or 'NotIn'")
            )
    elif req.operator in ("Exists", "DoesNotExist"):
        if req.values:
            errs.append(
                field.forbidden(
                    path.child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
            )
    else:
        errs.append(field.invalid(path.child("operator"), req.operator, "not a valid selector operator"))
    errs.extend(validate_label_name(req.key, path.child("key")))
    for i, v in enumerate(req.values):
        errs.extend(validate_label_value(v, path.child("values").index(i)))
    return errs


def validate_label_selector(selector: LabelSelector | None, path: Path) -> ErrorList:
    """metav1validation.ValidateLabelSelector."""
    if selector is None:
        return []
    errs = names.validate_labels(selector.match_labels, path.child("matchLabels"))
    for i, req in enumerate(selector.match_expressions):
        errs.extend(_validate_selector_requirement(req, path.child("matchExpressions").index(i)))
    return errs


CONDITION_STATUSES = ("True", "False", "Unknown")
_CONDITION_REASON_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
CONDITION_REASON_MSG = (
    "a condition reason must start with alphabetic character, optionally followed by a string of "
    "alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'"
)
_MAX_REASON_LEN = 1024
_MAX_MESSAGE_LEN = 32 * 1024


def validate_condition(cond: Condition, path: Path) -> ErrorList:
    """metav1validation.ValidateCondition."""
    errs = validate_label_name(cond.type, path.child("type"))
    if cond.status not in CONDITION_STATUSES:
        errs.append(field.not_supported(path.child("status"), cond.status, CONDITION_STATUSES))
    if cond.observed_generation < 0:
        errs.append(
            field.invalid(
                path.child("observedGeneration"),
                cond.observed_generation,
                "must be greater than or equal to zero",
            )
        )
    if not cond.last_transition_time:
        errs.append(field.required(path.child("lastTransitionTime"), "must be set"))
    else:
        errs.extend(validate_timestamp(cond.last_transition_time, path.child("lastTransitionTime")))
    if not cond.reason:
        errs.append(field.required(path.child("reason"), "must be set"))
    else:
        if not _CONDITION_REASON_RE.match(cond.reason):
            errs.append(field.invalid(path.child("reason"), cond.reason, CONDITION_REASON_MSG))
        if len(cond.reason) > _MAX_REASON_LEN:
            errs.append(field.too_long(path.child("reason"), _MAX_REASON_LEN))
    if len(cond.message) > _MAX_MESSAGE_LEN:
        errs.append(field.too_long(path.child("message"), _MAX_MESSAGE_LEN))
    return errs


def validate_conditions(conditions: Sequence[Condition], path: Path) -> ErrorList:
    """metav1validation.ValidateConditions: each condition, and types unique."""
    errs: ErrorList = []
    seen: set[str] = set()
    for i, cond in enumerate(conditions):
        errs.extend(validate_condition(cond, path.index(i)))
        if cond.type in seen:
            errs.append(field.duplicate(path.index(i).child("type"), cond.type))
        seen.add(cond.type)
    return errs


TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def validate_taint_effect(effect: str, path: Path, *, allow_empty: bool) -> ErrorList:
    if not effect:
        return [] if allow_empty else [field.required(path)]
    if effect not in TAINT_EFFECTS:
        return [field.not_supported(path, effect, TAINT_EFFECTS)]
    return []


# --- Cluster -------------------------------------------------------------------------------------


def _validate_taints(taints: Sequence[Taint], path: Path) -> ErrorList:
    errs: ErrorList = []
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(taints):
        p = path.index(i)
        errs.extend(validate_label_name(t.key, p.child("key")))
        if msgs := names.label_value(t.value):
            errs.append(field.invalid(p.child("value"), t.value, ";".join(msgs)))
        errs.extend(validate_taint_effect(t.effect, p.child("effect"), allow_empty=False))
        if (t.key, t.effect) in seen:
            err = field.duplicate(p, t.model_dump(by_alias=True))
            errs.append(
                FieldError(err.type, err.field, err.bad_value, "taints must be unique by key and effect pair")
            )
        seen.add((t.key, t.effect))
    return errs


_NO_SPACE_RE = re.compile(r"^[\x21-\x7e]+$")


def _validate_credentials(creds: ClusterCredentials | None, path: Path) -> ErrorList:
    errs: ErrorList = []
    if creds is None or not (creds.token or creds.client_certificate or creds.client_key):
        return [field.required(path, "must specify token, or clientCertificate and clientKey")]
    if creds.token and not _NO_SPACE_RE.match(creds.token):
        errs.append(
            invalid_omitting_value(
                path.child("token"), "must consist of printable ASCII characters without whitespace"
            )
        )
    if creds.client_certificate and not creds.client_key:
        errs.append(field.required(path.child("clientKey"), "must be set when clientCertificate is set"))
    if creds.client_key and not creds.client_certificate:
        errs.append(field.required(path.child("clientCertificate"), "must be set when clientKey is set"))
    for name, value in (("clientCertificate", creds.client_certificate), ("clientKey", creds.client_key)):
        if value and not is_base64(value):
            errs.append(invalid_omitting_value(path.child(name), "must be base64-encoded PEM data"))
    return errs


def validate_cluster_spec(spec: ClusterSpec, path: Path = SPEC) -> ErrorList:
    errs: ErrorList = []
    p = path.child("apiEndpoint")
    if not spec.api_endpoint:
        errs.append(field.required(p))
    else:
        errs.extend(
            field.invalid(p, spec.api_endpoint, m)
            for m in url_problems(spec.api_endpoint, ("https",), plain=True)
        )
    if spec.ca_bundle:
        if not is_base64(spec.ca_bundle):
            errs.append(
                field.invalid(path.child("caBundle"), spec.ca_bundle, "must be base64-encoded PEM data")
            )
        if spec.insecure_skip_tls_verify:
            errs.append(
                field.invalid(
                    path.child("insecureSkipTLSVerify"), True, "may not be true if caBundle is present"
                )
            )
    errs.extend(_validate_credentials(spec.credentials, path.child("credentials")))
    for name, value in (("region", spec.region), ("zone", spec.zone), ("provider", spec.provider)):
        errs.extend(validate_label_value(value, path.child(name)))
    errs.extend(_validate_taints(spec.taints, path.child("taints")))
    return errs


def validate_cluster_status(status: ClusterStatus, path: Path = STATUS) -> ErrorList:
    errs = validate_conditions(status.conditions, path.child("conditions"))
    errs.extend(at_least(status.node_count, 0, path.child("nodeCount")))
    for i, gpu in enumerate(status.gpus):
        p = path.child("gpus").index(i)
        if not gpu.model:
            errs.append(field.required(p.child("model")))
        errs.extend(at_least(gpu.count, 0, p.child("count")))
        errs.extend(at_least(gpu.allocatable, 0, p.child("allocatable")))
        if gpu.allocatable > gpu.count:
            errs.append(
                field.invalid(
                    p.child("allocatable"),
                    gpu.allocatable,
                    f"must be less than or equal to {p.child('count')}",
                )
            )
    errs.extend(validate_unique_names((g.model for g in status.gpus), path.child("gpus"), "model"))
    errs.extend(validate_timestamp(status.last_probe_time, path.child("lastProbeTime")))
    return errs


def validate_cluster(obj: Cluster) -> ErrorList:
    errs = validate_cluster_spec(obj.spec)
    if obj.status is not None:
        errs.extend(validate_cluster_status(obj.status))
    return errs


CONNECTION_FIELDS = ("api_endpoint", "ca_bundle", "insecure_skip_tls_verify")
"""Where the stored credentials are sent: changing any of them needs the credentials again."""


def connection_changed(new: ClusterSpec, old: ClusterSpec) -> bool:
    return any(getattr(new, f) != getattr(old, f) for f in CONNECTION_FIELDS)


def validate_cluster_update(new: Cluster, old: Cluster) -> ErrorList:
    """Nothing of a Cluster is immutable: a member may move endpoint or rotate credentials.

    The Strategy carries the stored credentials over when the client sent none (they are write-only, so
    a read-modify-write client never has them), except when the endpoint, CA or TLS verification
    changes: the credentials would then go to wherever the editor pointed the cluster, so they must be
    supplied again in the same write.
    """
    errs = validate_cluster(new)
    creds = SPEC.child("credentials")
    if new.spec.credentials is None and connection_changed(new.spec, old.spec):
        errs = [e for e in errs if e.field != str(creds)]
        errs.append(field.required(creds, "must be given again when apiEndpoint, caBundle or "
                                          "insecureSkipTLSVerify changes"))
    return errs


def validate_cluster_status_update(new: Cluster, old: Cluster) -> ErrorList:
    """The status subresource: only the status is written, so only the status is checked."""
    return validate_cluster_status(new.status) if new.status is not None else []
