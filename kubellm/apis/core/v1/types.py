"""The core (legacy) group's v1 kinds KubeLLM serves when it runs on its own: Namespace and Event.

They have the shape of Kubernetes' core/v1 types (the fields clients read), so `kubectl get ns`,
`kubectl describe` (which lists an object's Events) and client libraries work against a standalone
KubeLLM; behind the aggregator the host cluster serves them instead.
"""

from __future__ import annotations

from pydantic import Field

from kubellm.apis.base import APIModel
from kubellm.apis.constraints import constrained
from kubellm.apis.listtypes import atomic_list
from kubellm.apis.meta.v1.types import ObjectMeta, TypedModel

GROUP = ""
VERSION = "v1"
OPENAPI_PREFIX = "io.k8s.api.core.v1"
"""Published under Kubernetes' own definition names, so kube clients map them to their types."""

NAMESPACE_PHASES = ("Active", "Terminating")
EVENT_TYPES = ("Normal", "Warning")
FINALIZER = "kubernetes"
"""The finalizer of a namespace: held until its contents are deleted."""


class NamespaceSpec(APIModel):
    """What a namespace needs before it can go."""

    finalizers: list[str] = atomic_list(
        default_factory=list, description="Finalizers that must run before the namespace is removed from storage."
    )


class NamespaceStatus(APIModel):
    """The lifecycle of a namespace."""

    phase: str = constrained(
        default="", enum=("", *NAMESPACE_PHASES),
        description="Active, or Terminating while its contents are being deleted.",
    )


class Namespace(TypedModel):
    """Namespace provides a scope for names; deleting it deletes everything in it."""

    metadata: ObjectMeta = constrained(default_factory=ObjectMeta, required=True,
                                       description="Standard object metadata.")
    spec: NamespaceSpec = Field(default_factory=NamespaceSpec, description="What the namespace needs.")
    status: NamespaceStatus | None = Field(default=None, description="Status of the namespace.")


class ObjectReference(APIModel):
    """A reference to an object, such as the one an event is about."""

    api_version: str = Field(default="", description="API version of the referent.")
    kind: str = constrained(default="", required=True, description="Kind of the referent.")
    namespace: str = Field(default="", description="Namespace of the referent.")
    name: str = constrained(default="", required=True, description="Name of the referent.")
    uid: str = Field(default="", description="UID of the referent.")
    resource_version: str = Field(default="", description="The referent's resourceVersion the event is about.")
    field_path: str = Field(default="", description="A field within the referent, e.g. spec.containers{vllm}.")


class EventSource(APIModel):
    """What reported an event."""

    component: str = Field(default="", description="Component that reported the event.")
    host: str = Field(default="", description="Node name on which the event was generated.")


class EventSeries(APIModel):
    """A series of events that repeat."""

    count: int = constrained(default=0, minimum=0, description="Number of occurrences in the series so far.")
    last_observed_time: str | None = Field(default=None, description="When the last one was seen (MicroTime).")


class Event(TypedModel):
    """Event is a report of something that happened to an object, as `kubectl describe` shows it."""

    metadata: ObjectMeta = constrained(default_factory=ObjectMeta, required=True,
                                       description="Standard object metadata.")
    involved_object: ObjectReference = Field(default_factory=ObjectReference,
                                             description="The object this event is about.")
    reason: str = constrained(default="", max_length=128,
                              description="Short, machine-understandable reason for the transition, in CamelCase.")
    message: str = constrained(default="", max_length=1024, description="Human-readable description.")
    source: EventSource = Field(default_factory=EventSource, description="The component reporting the event.")
    first_timestamp: str | None = constrained(default=None, format="date-time",
                                              description="When the event was first recorded.")
    last_timestamp: str | None = constrained(default=None, format="date-time",
                                             description="When the event most recently occurred.")
    count: int = constrained(default=0, minimum=0, description="How many times the event has occurred.")
    type: str = constrained(default="", enum=("", *EVENT_TYPES), description="Normal or Warning.")
    event_time: str | None = Field(default=None, description="When the event was first observed (MicroTime).")
    series: EventSeries | None = Field(default=None, description="Data about the series, if it repeats.")
    action: str = constrained(default="", max_length=128, description="What was done, or failed to be done.")
    related: ObjectReference | None = Field(default=None, description="A secondary object, if any.")
    reporting_component: str = constrained(default="", max_length=128,
                                           description="Name of the controller that emitted the event.")
    reporting_instance: str = constrained(default="", max_length=128,
                                          description="ID of the controller instance, e.g. its pod name.")
