"""Ownership for non-apply writes (create, update, patch): the writer takes the fields it changed.

Changes are found as structured-merge-diff's Compare finds them, following the type's list semantics:
an item added to a set or a map list is an added node (and so is every field in it), a changed field of
an item is modified, an item gone is removed; atomic lists are one value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubellm.apis.listtypes import Node
from kubellm.registry.fieldmanager.entries import (
    UPDATE,
    Entry,
    cap_update_managers,
    decode_entries,
    encode_entries,
    lenient_entries,
)
from kubellm.registry.fieldmanager.paths import Path, drop_under, json_equal
from kubellm.registry.fieldmanager.schema import Schema, object_schema
from kubellm.registry.fieldmanager.scope import NEVER_OWNED, tracked_view
from kubellm.registry.fieldmanager.typed import nodes, reconcile

UNKNOWN_MANAGER = "unknown"


@dataclass(frozen=True)
class Comparison:
    added: set[Path]
    modified: set[Path]
    removed: set[Path]

    @property
    def changed(self) -> set[Path]:
        return self.added | self.modified

    def empty(self) -> bool:
        return not (self.added or self.modified or self.removed)


def compare(old_view: Mapping[str, Any], new_view: Mapping[str, Any], root: Node) -> Comparison:
    """Nodes added or removed (maps, lists and items included), and nodes of one value that changed."""
    old = {p: v for p, v in nodes(old_view, root).items() if p not in NEVER_OWNED}
    new = {p: v for p, v in nodes(new_view, root).items() if p not in NEVER_OWNED}
    modified = {p for p in old.keys() & new.keys()
                if not (old[p][1] is not None and old[p][1] == new[p][1]) and not json_equal(old[p][0], new[p][0])}
    return Comparison(added=set(new.keys() - old.keys()), modified=modified, removed=set(old.keys() - new.keys()))


def reconciled(entries: list[Entry], root: Node) -> list[Entry]:
    """Entries with their paths reconciled with the type (see `typed.reconcile`)."""
    return [replace(e, fields=reconcile(e.fields, root)) for e in entries]


def record_update(entries: list[Entry], diff: Comparison, manager: str, api_version: str, subresource: str,
                  now: str) -> list[Entry]:
    """`manager` (operation Update) takes every changed field from the others; removed fields leave all."""
    me = Entry(manager, UPDATE, api_version, subresource)
    changed = diff.changed
    out: list[Entry] = []
    mine: Entry | None = None
    for e in entries:
        if e.identity == me.identity:
            mine = replace(e, fields=drop_under(e.fields, diff.removed))
            out.append(mine)
        else:
            out.append(replace(e, fields=drop_under(e.fields, diff.removed | changed)))
    if changed:
        if mine is None:
            mine = me
            out.append(mine)
        mine.fields |= changed
        mine.time = now
    return [e for e in out if e.fields]


def update_managed_fields(old: dict[str, Any] | None, new: dict[str, Any], manager: str, *, subresource: str = "",
                          now: str, schema: Schema | None = None) -> dict[str, Any]:
    """Return `new` with `metadata.managedFields` recording a create (`old` None), update or patch.

    The base is the managedFields sent in `new` when they decode and are not empty (main resource only:
    that is how a client rewrites or resets them, e.g. with `[{}]`), else those of `old`. `schema` is the
    object's type (see `schema.object_schema`).
    """
    root = object_schema(schema, new, old)
    base = reconciled(_base_entries(old, new, subresource), root)
    api_version = str(new.get("apiVersion") or (old or {}).get("apiVersion") or "")
    diff = compare(tracked_view(old, subresource), tracked_view(new, subresource), root)
    entries = record_update(base, diff, manager or UNKNOWN_MANAGER, api_version, subresource, now)
    return with_managed_fields(new, cap_update_managers(entries))


def _base_entries(old: dict[str, Any] | None, new: dict[str, Any], subresource: str) -> list[Entry]:
    if not subresource:
        sent = _raw(new)
        if isinstance(sent, list) and sent:
            try:
                return decode_entries(sent)
            except ValueError:
                pass
    return lenient_entries(_raw(old))


def _raw(obj: Mapping[str, Any] | None) -> Any:
    meta = (obj or {}).get("metadata")
    return meta.get("managedFields") if isinstance(meta, dict) else None


def with_managed_fields(obj: dict[str, Any], entries: list[Entry]) -> dict[str, Any]:
    """A copy of `obj` (top level and metadata) with the entries encoded, or without the key if none."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    encoded = encode_entries(entries)
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)
    out["metadata"] = meta
    return out
