"""Validation of cluster.kubellm.io/v1alpha1 Cluster.

What the fields declare (required endpoint, taint effects, ranges, base64, timestamps: `types.py`) is checked
by the declared validator; this module adds what cannot be declared (the endpoint's URL, label names and
values, cross-field rules, uniqueness) and returns both in the order of the fields.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubellm.apis.cluster.v1alpha1.types import (
    Cluster,
    ClusterCredentials,
    ClusterSpec,
    ClusterStatus,
    Taint,
)
from kubellm.apis.validation import declared, field, names
from kubellm.apis.validation.field import ErrorList, FieldError, Path
from kubellm.apis.validation.meta import validate_conditions
from kubellm.apis.validation.values import url_problems, validate_unique_names

SPEC = Path("spec")
STATUS = Path("status")


def _validate_taints(taints: Sequence[Taint], path: Path) -> ErrorList:
    errs: ErrorList = []
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(taints):
        p = path.index(i)
        if t.key:
            errs.extend(names.validate_label_name(t.key, p.child("key")))
        if msgs := names.label_value(t.value):
            errs.append(field.invalid(p.child("value"), t.value, ";".join(msgs)))
        if (t.key, t.effect) in seen:
            err = field.duplicate(p, t.model_dump(by_alias=True))
            errs.append(
                FieldError(err.type, err.field, err.bad_value, "taints must be unique by key and effect pair")
            )
        seen.add((t.key, t.effect))
    return errs


def _validate_credentials(creds: ClusterCredentials | None, path: Path) -> ErrorList:
    if creds is None or not (creds.token or creds.client_certificate or creds.client_key):
        return [field.required(path, "must specify token, or clientCertificate and clientKey")]
    errs: ErrorList = []
    if creds.client_certificate and not creds.client_key:
        errs.append(field.required(path.child("clientKey"), "must be set when clientCertificate is set"))
    if creds.client_key and not creds.client_certificate:
        errs.append(field.required(path.child("clientCertificate"), "must be set when clientKey is set"))
    return errs


def validate_cluster_spec(spec: ClusterSpec, path: Path = SPEC) -> ErrorList:
    errs = declared.validate(spec, path)
    if spec.api_endpoint:
        errs.extend(
            field.invalid(path.child("apiEndpoint"), spec.api_endpoint, m)
            for m in url_problems(spec.api_endpoint, ("https",), plain=True)
        )
    if spec.ca_bundle and spec.insecure_skip_tls_verify:
        errs.append(
            field.invalid(path.child("insecureSkipTLSVerify"), True, "may not be true if caBundle is present")
        )
    errs.extend(_validate_credentials(spec.credentials, path.child("credentials")))
    for name, value in (("region", spec.region), ("zone", spec.zone), ("provider", spec.provider)):
        errs.extend(names.validate_label_value(value, path.child(name)))
    errs.extend(_validate_taints(spec.taints, path.child("taints")))
    return errs


def validate_cluster_status(status: ClusterStatus, path: Path = STATUS) -> ErrorList:
    errs = declared.validate(status, path)
    errs.extend(validate_conditions(status.conditions, path.child("conditions")))
    for i, gpu in enumerate(status.gpus):
        p = path.child("gpus").index(i)
        for name, value, bound in (("allocatable", gpu.allocatable, "count"),
                                   ("available", gpu.available, "allocatable"),
                                   ("largestFree", gpu.largest_free, "available")):
            if value > getattr(gpu, bound):
                errs.append(field.invalid(p.child(name), value, f"must be less than or equal to {p.child(bound)}"))
    errs.extend(validate_unique_names((g.model for g in status.gpus), path.child("gpus"), "model"))
    return errs


def validate_cluster(obj: Cluster) -> ErrorList:
    return declared.spec_and_status(obj, validate_cluster_spec, validate_cluster_status)


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
    return declared.in_field_order(Cluster, errs)


validate_cluster_status_update = declared.status_only(validate_cluster_status)
"""The status subresource: only the status is written, so only the status is checked."""
