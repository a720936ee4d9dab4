"""Server-side apply (`application/apply-patch+yaml`) over JSON objects, as kube-apiserver does it with
structured-merge-diff: the applied configuration is merged into the live object following the type's
list and map semantics, fields and list items the manager applied before and dropped now are removed
unless another manager owns them, and changing a field another manager owns is a conflict."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kubellm.apis import errors
from kubellm.apis.validation import field as ferr
from kubellm.registry.fieldmanager.conflicts import conflict_error
from kubellm.registry.fieldmanager.entries import APPLY, Entry, cap_update_managers, lenient_entries
from kubellm.registry.fieldmanager.paths import Path, drop_under
from kubellm.registry.fieldmanager.schema import Schema, object_schema
from kubellm.registry.fieldmanager.scope import NEVER_OWNED, tracked_view
from kubellm.registry.fieldmanager.tracking import compare, reconciled, record_update, with_managed_fields
from kubellm.registry.fieldmanager.typed import SchemaErrors, expand, field_set, merge, remove

BEFORE_FIRST_APPLY = "before-first-apply"  # owns what an object held before its first apply


def apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str, *, force: bool,
          subresource: str = "", now: str, schema: Schema | None = None) -> dict[str, Any]:
    """Return the object after `manager` applies `applied` to `live` (None or `{}`: apply creates).

    `schema` is the object's type (see `schema.object_schema`). A configuration whose list items cannot
    be told apart, or repeat, is a 400 with structured-merge-diff's message.
    """
    _check_request(live, applied, manager)
    root = object_schema(schema, live, applied)
    config = tracked_view(applied, subresource)
    try:
        applied_set = field_set(config, root) - NEVER_OWNED
    except SchemaErrors as exc:
        raise errors.bad_request(f"failed to create typed patch object ({_describe(applied, live)}): {exc}") from None
    meta: dict[str, Any] = applied["metadata"] if isinstance(applied.get("metadata"), dict) else {}
    api_version = str(applied.get("apiVersion") or (live or {}).get("apiVersion") or "")
    if live:
        merged = {k: copy.deepcopy(v) for k, v in live.items()}
        merged["metadata"] = {k: v for k, v in (merged.get("metadata") or {}).items() if k != "managedFields"}
        if meta.get("resourceVersion"):  # kube keeps it from the configuration: a precondition
            merged["metadata"]["resourceVersion"] = meta["resourceVersion"]
        entries = reconciled(lenient_entries((live.get("metadata") or {}).get("managedFields")), root)
        if not entries:
            entries = record_update([], compare({}, tracked_view(live, subresource), root), BEFORE_FIRST_APPLY,
                                    str(live.get("apiVersion") or api_version), subresource, now)
    else:
        merged = _skeleton(applied)
        entries = []

    me = Entry(manager, APPLY, api_version, subresource)
    previous = next((e for e in entries if e.identity == me.identity), None)
    others = [e for e in entries if e.identity != me.identity]

    merged = merge(merged, config, root)
    if previous is not None:
        managed: set[Path] = set(applied_set)
        for e in others:
            managed |= e.fields
        remove(merged, expand(previous.fields, root) - expand(managed, root) - NEVER_OWNED, root)

    diff = compare(tracked_view(live, subresource), tracked_view(merged, subresource), root)
    changed = diff.changed
    conflicts = [(e, p) for e in others for p in e.fields & changed]
    if conflicts and not force:
        raise conflict_error(conflicts)

    result = [Entry(e.manager, e.operation, e.api_version, e.subresource, e.time,
                    drop_under(e.fields, changed | diff.removed)) for e in others]
    unchanged = (previous is not None and previous.fields == applied_set and previous.api_version == api_version
                 and diff.empty())
    me.time = previous.time if unchanged and previous is not None else now
    me.fields = applied_set
    result.append(me)
    return with_managed_fields(merged, cap_update_managers([e for e in result if e.fields]))


def _describe(applied: Mapping[str, Any], live: Mapping[str, Any] | None) -> str:
    """kube's objectGVKNN: `namespace/name; group/version, Kind=Kind`."""
    meta = applied.get("metadata") if isinstance(applied.get("metadata"), Mapping) else {}
    live_meta = (live or {}).get("metadata") or {}
    name = (meta or {}).get("name") or live_meta.get("name") or ""
    namespace = (meta or {}).get("namespace") or live_meta.get("namespace") or ""
    api_version = applied.get("apiVersion") or (live or {}).get("apiVersion") or ""
    kind = applied.get("kind") or (live or {}).get("kind") or ""
    if "/" not in str(api_version):
        api_version = f"/{api_version}"
    return f"{namespace}/{name}; {api_version}, Kind={kind}"


def _check_request(live: Mapping[str, Any] | None, applied: Mapping[str, Any], manager: str) -> None:
    if not manager:
        raise errors.invalid("PatchOptions", "meta.k8s.io", "",
                             [ferr.required("fieldManager", "is required for apply patch")])
    if not isinstance(applied, Mapping):
        raise errors.bad_request("the apply configuration must be an object")
    meta = applied.get("metadata")
    if meta is not None and not isinstance(meta, Mapping):
        raise errors.bad_request("metadata must be an object")
    if isinstance(meta, Mapping) and meta.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    if not live:
        return
    expected = live.get("apiVersion")
    if expected and applied.get("apiVersion") != expected:
        raise errors.bad_request("Incorrect version specified in apply patch. "
                                 f"Specified patch version: {applied.get('apiVersion') or ''}, expected: {expected}")
    kind = applied.get("kind")
    if kind and live.get("kind") and kind != live.get("kind"):
        raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({live['kind']})")
    live_meta = live.get("metadata") or {}
    name, namespace = (meta or {}).get("name"), (meta or {}).get("namespace")
    if name and name != live_meta.get("name"):
        raise errors.bad_request(f"the name of the object ({name}) does not match the name on the URL "
                                 f"({live_meta.get('name')})")
    if namespace and live_meta.get("namespace") and namespace != live_meta.get("namespace"):
        raise errors.bad_request(f"the namespace of the object ({namespace}) does not match the namespace on "
                                 f"the URL ({live_meta.get('namespace')})")


def _skeleton(applied: Mapping[str, Any]) -> dict[str, Any]:
    """The empty object an apply creates from: type, name and namespace of the configuration."""
    meta = applied.get("metadata") or {}
    out: dict[str, Any] = {k: applied[k] for k in ("apiVersion", "kind") if applied.get(k)}
    out["metadata"] = {k: meta[k] for k in ("name", "namespace") if meta.get(k)}
    return out
