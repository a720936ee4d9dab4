"""Validation of core/v1 Namespace and Event, as Kubernetes' pkg/apis/core/validation does it for the fields
KubeLLM keeps (what is declared on the types is checked by `validation.declared`)."""

from __future__ import annotations

from kubellm.apis.core.v1.types import FINALIZER, Event, Namespace, NamespaceSpec, NamespaceStatus
from kubellm.apis.timestamps import is_rfc3339
from kubellm.apis.validation import declared, field
from kubellm.apis.validation.field import ErrorList, Path


def micro_time(value: str | None, path: Path) -> ErrorList:
    if value and not is_rfc3339(value):
        return [field.invalid(path, value, "must be an RFC 3339 date-time (MicroTime)")]
    return []


def validate_namespace_spec(spec: NamespaceSpec, path: Path = Path("spec")) -> ErrorList:
    errs = declared.validate(spec, path)
    for i, name in enumerate(spec.finalizers):
        if name != FINALIZER and "/" not in name:
            errs.append(field.invalid(path.child("finalizers").index(i), name,
                                      "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def validate_namespace_status(status: NamespaceStatus, path: Path = Path("status")) -> ErrorList:
    return declared.validate(status, path)


def validate_namespace(obj: Namespace) -> ErrorList:
    return declared.spec_and_status(obj, validate_namespace_spec, validate_namespace_status)


def validate_namespace_update(new: Namespace, old: Namespace) -> ErrorList:
    return validate_namespace(new)


validate_namespace_status_update = declared.status_only(validate_namespace_status)


def validate_event(obj: Event) -> ErrorList:
    """An event names the object it is about; a namespaced event's object is in the event's namespace."""
    errs = declared.validate(obj)
    ref, path = obj.involved_object, Path("involvedObject")
    if ref.namespace and obj.metadata.namespace and ref.namespace != obj.metadata.namespace:
        errs.append(field.invalid(path.child("namespace"), ref.namespace, "does not match event.namespace"))
    errs += micro_time(obj.event_time, Path("eventTime"))
    if obj.series is not None:
        errs += micro_time(obj.series.last_observed_time, Path("series").child("lastObservedTime"))
    return errs


def validate_event_update(new: Event, old: Event) -> ErrorList:
    errs = validate_event(new)
    if new.involved_object != old.involved_object:
        errs.append(field.invalid(Path("involvedObject"), "", "field is immutable"))
    return errs
