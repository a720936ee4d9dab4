"""Server-side apply (`application/apply-patch+yaml`) over JSON objects, as kube-apiserver does for
custom resources: the applied configuration is merged into the live object, fields the manager applied
before and dropped now are removed, and changing a field another manager owns is a conflict."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kubellm.apis import errors
from kubellm.apis.validation import field as ferr
from kubellm.registry.fieldmanager.conflicts import conflict_error
from kubellm.registry.fieldmanager.entries import APPLY, Entry, cap_update_managers, lenient_entries
from kubellm.registry.fieldmanager.paths import Path, covers, drop_under, leaf_paths, lookup
from kubellm.registry.fieldmanager.scope import NEVER_OWNED, tracked_view
from kubellm.registry.fieldmanager.tracking import compare, record_update, with_managed_fields

BEFORE_FIRST_APPLY = "before-first-apply"  # owns what an object held before its first apply


def apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str, *, force: bool,
          subresource: str = "", now: str) -> dict[str, Any]:
    """Return the object after `manager` applies `applied` to `live` (None or `{}`: apply creates)."""
    _check_request(live, applied, manager)
    meta: dict[str, Any] = applied["metadata"] if isinstance(applied.get("metadata"), dict) else {}
    api_version = str(applied.get("apiVersion") or (live or {}).get("apiVersion") or "")
    if live:
        merged = {k: copy.deepcopy(v) for k, v in live.items()}
        merged["metadata"] = {k: v for k, v in (merged.get("metadata") or {}).items() if k != "managedFields"}
        if meta.get("resourceVersion"):  # kube keeps it from the configuration: a precondition
            merged["metadata"]["resourceVersion"] = meta["resourceVersion"]
        entries = lenient_entries((live.get("metadata") or {}).get("managedFields"))
        if not entries:
            entries = record_update([], compare({}, tracked_view(live, subresource)), BEFORE_FIRST_APPLY,
                                    str(live.get("apiVersion") or api_version), subresource, now)
    else:
        merged = _skeleton(applied)
        entries = []

    config = tracked_view(applied, subresource)
    applied_set = leaf_paths(config) - NEVER_OWNED
    me = Entry(manager, APPLY, api_version, subresource)
    previous = next((e for e in entries if e.identity == me.identity), None)
    others = [e for e in entries if e.identity != me.identity]

    _merge_into(merged, config)
    if previous is not None:
        kept: set[Path] = set(applied_set)
        for e in others:
            kept |= e.fields
        _prune(merged, {p for p in previous.fields - applied_set if not covers(kept, p)}, kept)

    diff = compare(tracked_view(live, subresource), tracked_view(merged, subresource))
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


def _merge_into(target: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Maps merge key by key; lists and scalars replace."""
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _prune(obj: dict[str, Any], gone: set[Path], owned: set[Path]) -> None:
    """Remove the fields in `gone`, then the maps they leave empty unless someone owns those maps."""
    for path in sorted(gone, key=len, reverse=True):
        found, parent = lookup(obj, path[:-1])
        if not found or not isinstance(parent, dict) or path[-1] not in parent:
            continue
        del parent[path[-1]]
        for depth in range(len(path) - 1, 0, -1):
            up = path[:depth]
            _, node = lookup(obj, up)
            if node != {} or up in owned or up in NEVER_OWNED:
                break
            _, holder = lookup(obj, up[:-1])
            del holder[up[-1]]
