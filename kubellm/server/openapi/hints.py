"""How a few meta/v1 fields are published, where their Python type does not say it: references to
apimachinery's Time, FieldsV1 and RawExtension, and int64 formats.

Nothing here is about what the API accepts: requiredness, enums, ranges, lengths, patterns and formats
are declared on the fields (`kubellm.apis.constraints`) and list and map semantics on the types
(`kubellm.apis.listtypes`); the generator publishes both from there, the same declarations the
validation and the field manager use. Keys are (model, Python field name); the unit tests check that
every key names an existing field.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubellm.apis.base import APIModel
from kubellm.apis.meta.v1 import types as meta

TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
FIELDS_V1 = "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"

INT64_FIELDS = frozenset(
    {
        "generation",
        "observed_generation",
        "deletion_grace_period_seconds",
        "grace_period_seconds",
        "remaining_item_count",
    }
)
"""Integer fields (by Python name) published as int64, as Kubernetes does; every other integer is int32."""


@dataclass(frozen=True)
class Hint:
    ref: str | None = None
    """Publish the field as a reference to this definition instead of its Python type (e.g. Time)."""


NO_HINT = Hint()

HINTS: dict[tuple[type[APIModel], str], Hint] = {
    # Set by the server (timestamps, field sets) or any object (watch events): published as Kubernetes does.
    (meta.ObjectMeta, "creation_timestamp"): Hint(ref=TIME),
    (meta.ObjectMeta, "deletion_timestamp"): Hint(ref=TIME),
    (meta.ManagedFieldsEntry, "time"): Hint(ref=TIME),
    (meta.ManagedFieldsEntry, "fields_v1"): Hint(ref=FIELDS_V1),
    (meta.WatchEvent, "object"): Hint(ref=RAW_EXTENSION),
}


def hint(model_type: type[APIModel], name: str) -> Hint:
    """The hint of a field, looked up on the class and then on its API base classes (e.g. TypedModel)."""
    for cls in model_type.__mro__:
        found = HINTS.get((cls, name))
        if found is not None:
            return found
    return NO_HINT
