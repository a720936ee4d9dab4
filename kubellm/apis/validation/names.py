"""Name, label and annotation rules of k8s.io/apimachinery/pkg/util/validation."""

from __future__ import annotations

import re
from collections.abc import Mapping

from kubellm.apis.validation import field
from kubellm.apis.validation.field import ErrorList, Path

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63
TOTAL_ANNOTATION_SIZE = 256 * 1024

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(rf"^{_LABEL}$")
_DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
QUALIFIED_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
    "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _dns_name(value: str, maximum: int, pattern: re.Pattern[str], message: str) -> list[str]:
    errs = [f"must be no more than {maximum} characters"] if len(value) > maximum else []
    return errs if pattern.fullmatch(value) else [*errs, message]


def dns1123_label(value: str) -> list[str]:
    return _dns_name(value, DNS1123_LABEL_MAX, _DNS1123_LABEL_RE, DNS1123_LABEL_MSG)


def dns1123_subdomain(value: str) -> list[str]:
    return _dns_name(value, DNS1123_SUBDOMAIN_MAX, _DNS1123_SUBDOMAIN_RE, DNS1123_SUBDOMAIN_MSG)


def qualified_name(value: str) -> list[str]:
    """A label or annotation key: an optional DNS subdomain prefix and '/', then a name part."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend(f"prefix part {m}" for m in dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name " + QUALIFIED_NAME_MSG.replace("name part ", "", 1)
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append(f"name part must be no more than {QUALIFIED_NAME_MAX} characters")
    if name and not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append(QUALIFIED_NAME_MSG)
    return errs


def label_value(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > LABEL_VALUE_MAX:
        errs.append(f"must be no more than {LABEL_VALUE_MAX} characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(LABEL_VALUE_MSG)
    return errs


def validate_label_name(value: str, path: Path) -> ErrorList:
    """metav1validation.ValidateLabelName: a qualified name (label keys, condition types, taint keys)."""
    return [field.invalid(path, value, m) for m in qualified_name(value)]


def validate_label_value(value: str, path: Path) -> ErrorList:
    return [field.invalid(path, value, m) for m in label_value(value)]


def validate_labels(labels: Mapping[str, str], path: Path) -> ErrorList:
    errs: ErrorList = []
    for k, v in labels.items():
        errs.extend(field.invalid(path, k, m) for m in qualified_name(k))
        errs.extend(field.invalid(path.key(k), v, m) for m in label_value(v))
    return errs


def validate_annotations(annotations: Mapping[str, str], path: Path) -> ErrorList:
    errs: ErrorList = []
    total = 0
    for k, v in annotations.items():
        errs.extend(field.invalid(path, k, m) for m in qualified_name(k.lower()))
        total += len(k) + len(v)
    if total > TOTAL_ANNOTATION_SIZE:
        errs.append(field.too_long(path, TOTAL_ANNOTATION_SIZE))
    return errs
