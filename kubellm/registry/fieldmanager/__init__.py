"""Field management: `metadata.managedFields` tracking and server-side apply, as kube-apiserver does
for custom resources (lists atomic, maps walked key by key). Pure functions over JSON dicts, no I/O.

- `update_managed_fields(old, new, manager, subresource=, now=)` for create, update and patch;
- `apply(live, applied, manager, force=, subresource=, now=)` for `application/apply-patch+yaml`;
- `fields_to_set` / `set_to_fields` convert between `fieldsV1` and sets of paths (tuples of keys).
"""

from kubellm.registry.fieldmanager.apply import BEFORE_FIRST_APPLY, apply
from kubellm.registry.fieldmanager.entries import ANCIENT_CHANGES, MAX_UPDATE_MANAGERS
from kubellm.registry.fieldmanager.fieldsv1 import fields_to_set, set_to_fields
from kubellm.registry.fieldmanager.paths import FieldSet, Path, path_string
from kubellm.registry.fieldmanager.tracking import UNKNOWN_MANAGER, update_managed_fields

__all__ = [
    "ANCIENT_CHANGES",
    "BEFORE_FIRST_APPLY",
    "MAX_UPDATE_MANAGERS",
    "UNKNOWN_MANAGER",
    "FieldSet",
    "Path",
    "apply",
    "fields_to_set",
    "path_string",
    "set_to_fields",
    "update_managed_fields",
]
