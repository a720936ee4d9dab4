"""Which parts of an object are tracked, for the main resource and for the `status` subresource.

The main resource tracks everything but `apiVersion`, `kind`, `status` and the system-owned metadata
below; the `status` subresource tracks only `status`. The `metadata` node itself is never owned
(kube's stripMeta), its tracked children (labels, annotations, finalizers, ...) are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubellm.registry.fieldmanager.paths import Path

STATUS = "status"
IGNORED_TOP_LEVEL = frozenset({"apiVersion", "kind"})
IGNORED_METADATA = frozenset({
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds", "managedFields", "selfLink",
})
NEVER_OWNED: frozenset[Path] = frozenset({("metadata",)})


def tracked_view(obj: Mapping[str, Any] | None, subresource: str) -> dict[str, Any]:
    """The tracked part of `obj`; it shares values with `obj`, so callers must not mutate it."""
    if not obj:
        return {}
    if subresource == STATUS:
        return {STATUS: obj[STATUS]} if STATUS in obj else {}
    view: dict[str, Any] = {}
    for key, value in obj.items():
        if key in IGNORED_TOP_LEVEL or key == STATUS:
            continue
        if key == "metadata":
            if isinstance(value, dict):
                meta = {k: v for k, v in value.items() if k not in IGNORED_METADATA}
                if meta:
                    view[key] = meta
            continue
        view[key] = value
    return view
