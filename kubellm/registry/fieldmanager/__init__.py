"""Field management: `metadata.managedFields` tracking and server-side apply, as kube-apiserver does them
with structured-merge-diff. Pure functions over JSON dicts, no I/O.

Lists and maps follow the list and map types the API types declare (`kubellm.apis.listtypes`, the same
declarations the OpenAPI documents publish): a `set` list is merged and owned item by item, a `map`
list item by item by its keys and field by field inside each item, an atomic list or map as one value.

- `update_managed_fields(old, new, manager, subresource=, now=, schema=)` for create, update and patch;
- `apply(live, applied, manager, force=, subresource=, now=, schema=)` for `application/apply-patch+yaml`;
- `fields_to_set` / `set_to_fields` convert between `fieldsV1` and sets of paths (tuples of elements).

`schema` is the object's type (`ResourceInfo.model`); without it, the served type of the object's
apiVersion and kind.
"""

from kubellm.registry.fieldmanager.apply import BEFORE_FIRST_APPLY, apply
from kubellm.registry.fieldmanager.entries import ANCIENT_CHANGES, MAX_UPDATE_MANAGERS
from kubellm.registry.fieldmanager.fieldsv1 import fields_to_set, set_to_fields
from kubellm.registry.fieldmanager.paths import Element, FieldSet, KeyElement, Path, ValueElement, path_string
from kubellm.registry.fieldmanager.tracking import UNKNOWN_MANAGER, update_managed_fields

__all__ = [
    "ANCIENT_CHANGES",
    "BEFORE_FIRST_APPLY",
    "MAX_UPDATE_MANAGERS",
    "UNKNOWN_MANAGER",
    "Element",
    "FieldSet",
    "KeyElement",
    "Path",
    "ValueElement",
    "apply",
    "fields_to_set",
    "path_string",
    "set_to_fields",
    "update_managed_fields",
]
