"""core/v1 (the legacy group ""): Namespace and Event, served by a standalone KubeLLM."""

from kubellm.apis.core.v1.types import (
    FINALIZER,
    GROUP,
    VERSION,
    Event,
    EventSeries,
    EventSource,
    Namespace,
    NamespaceSpec,
    NamespaceStatus,
    ObjectReference,
)
from kubellm.apis.core.v1.validation import (
    validate_event,
    validate_event_update,
    validate_namespace,
    validate_namespace_status_update,
    validate_namespace_update,
)
from kubellm.apis.scheme import ResourceInfo
from kubellm.apis.validation.names import dns1123_label

RESOURCES: list[ResourceInfo] = [
    ResourceInfo(group=GROUP, version=VERSION, kind="Namespace", plural="namespaces", singular="namespace",
                 namespaced=False, model=Namespace, short_names=("ns",), categories=(), host_kind=True, has_status=True,
                 validate=validate_namespace, validate_update=validate_namespace_update,
                 validate_status_update=validate_namespace_status_update, validate_name=dns1123_label),
    ResourceInfo(group=GROUP, version=VERSION, kind="Event", plural="events", singular="event", namespaced=True,
                 model=Event, short_names=("ev",), categories=(), host_kind=True, has_status=False,
                 validate=validate_event, validate_update=validate_event_update),
]

__all__ = ["FINALIZER", "GROUP", "RESOURCES", "VERSION", "Event", "EventSeries", "EventSource", "Namespace",
           "NamespaceSpec", "NamespaceStatus", "ObjectReference"]
