"""`metadata.managedFields` entries: decoding, encoding, identity, order and the Update-manager cap."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kubellm.registry.fieldmanager.fieldsv1 import fields_to_set, set_to_fields
from kubellm.registry.fieldmanager.paths import Path

APPLY = "Apply"
UPDATE = "Update"
FIELDS_V1 = "FieldsV1"
MAX_UPDATE_MANAGERS = 10  # kube's DefaultMaxUpdateManagers
ANCIENT_CHANGES = "ancient-changes"  # the bucket the oldest Update managers are merged into

Identity = tuple[str, str, str, str]


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str = ""
    subresource: str = ""
    time: str | None = None
    fields: set[Path] = field(default_factory=set)

    @property
    def identity(self) -> Identity:
        """kube's manager identifier: appliers are one manager whatever apiVersion they applied."""
        version = "" if self.operation == APPLY else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def identifier(self) -> str:
        """The JSON form of the identity, as kube orders managers in conflict messages."""
        doc = {"manager": self.manager, "operation": self.operation}
        if self.operation != APPLY and self.api_version:
            doc["apiVersion"] = self.api_version
        if self.subresource:
            doc["subresource"] = self.subresource
        return json.dumps({k: v for k, v in doc.items() if v}, separators=(",", ":"), ensure_ascii=False)

    def describe(self) -> str:
        """kube's printManager: `"mgr"`, `"mgr" with subresource "status"`, `... using v1` for updaters."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text = f"{text} with subresource {json.dumps(self.subresource, ensure_ascii=False)}"
        if self.operation == UPDATE:
            text = f"{text} using {self.api_version}"
        return text


def decode_entries(raw: Any) -> list[Entry]:
    """Decode `metadata.managedFields`; ValueError when any entry is malformed. Duplicates are merged."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("managedFields must be a list")
    by_id: dict[Identity, Entry] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise ValueError("a managedFields entry must be an object")
        if item.get("fieldsType") not in (None, "", FIELDS_V1):
            raise ValueError(f"unsupported fieldsType {item.get('fieldsType')!r}")
        entry = Entry(manager=_text(item, "manager"), operation=_text(item, "operation"),
                      api_version=_text(item, "apiVersion"), subresource=_text(item, "subresource"),
                      time=item.get("time") if isinstance(item.get("time"), str) else None,
                      fields=fields_to_set(item.get("fieldsV1") or {}))
        if entry.identity in by_id:
            by_id[entry.identity].fields |= entry.fields
        else:
            by_id[entry.identity] = entry
    return list(by_id.values())


def lenient_entries(raw: Any) -> list[Entry]:
    """Decoded entries, or none when they are malformed (kube then resets managedFields)."""
    try:
        return decode_entries(raw)
    except ValueError:
        return []


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    return value if isinstance(value, str) else ""


def encode_entries(entries: list[Entry]) -> list[dict[str, Any]]:
    """Entries with fields, in kube's order: operation, time, manager, apiVersion, subresource."""
    kept = sorted((e for e in entries if e.fields),
                  key=lambda e: (e.operation, seconds(e.time), e.manager, e.api_version, e.subresource))
    out: list[dict[str, Any]] = []
    for e in kept:
        doc: dict[str, Any] = {"manager": e.manager, "operation": e.operation}
        if e.api_version:
            doc["apiVersion"] = e.api_version
        if e.time:
            doc["time"] = e.time
        doc["fieldsType"] = FIELDS_V1
        doc["fieldsV1"] = set_to_fields(e.fields)
        if e.subresource:
            doc["subresource"] = e.subresource
        out.append(doc)
    return out


def seconds(time: str | None) -> int:
    if not time:
        return 0
    try:
        parsed = datetime.fromisoformat(time.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def cap_update_managers(entries: list[Entry], limit: int = MAX_UPDATE_MANAGERS) -> list[Entry]:
    """Merge the oldest Update managers into per-apiVersion `ancient-changes` buckets until at most
    `limit` Update managers remain (kube's capManagersManager)."""
    updaters = sorted((e for e in entries if e.operation == UPDATE and e.fields),
                      key=lambda e: (seconds(e.time), e.identifier()))
    if len(updaters) <= limit:
        return entries
    by_id = {e.identity: e for e in entries}
    first_by_version: dict[str, Identity] = {}
    remaining = len(updaters)
    for e in updaters:
        if remaining <= limit:
            break
        first = first_by_version.get(e.api_version)
        if first is None:
            first_by_version[e.api_version] = e.identity
            continue
        bucket_id: Identity = (ANCIENT_CHANGES, UPDATE, e.api_version, "")
        if e.identity == bucket_id:
            continue
        if bucket_id not in by_id:
            moved = by_id.pop(first)
            by_id[bucket_id] = replace(moved, manager=ANCIENT_CHANGES, subresource="", fields=set(moved.fields))
        bucket = by_id[bucket_id]
        by_id[bucket_id] = replace(bucket, fields=bucket.fields | e.fields, time=e.time)
        del by_id[e.identity]
        remaining -= 1
    return list(by_id.values())
