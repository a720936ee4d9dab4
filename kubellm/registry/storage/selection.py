"""SelectionPredicate: label and field selectors applied to stored objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubellm.apis.selectors import FieldSelector, LabelSelector

Attrs = tuple[Mapping[str, str], Mapping[str, str]]
AttrFunc = Callable[[dict[str, Any]], Attrs]


def default_attrs(obj: dict[str, Any]) -> Attrs:
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": meta.get("name", "")}
    if "namespace" in meta:
        fields["metadata.namespace"] = meta.get("namespace") or ""
    return meta.get("labels") or {}, fields


@dataclass(frozen=True)
class SelectionPredicate:
    label: LabelSelector = LabelSelector()
    field: FieldSelector = FieldSelector()
    get_attrs: AttrFunc = default_attrs

    def empty(self) -> bool:
        return self.label.empty() and self.field.empty()

    def matches(self, obj: dict[str, Any]) -> bool:
        if self.empty():
            return True
        labels, fields = self.get_attrs(obj)
        return self.label.matches(labels) and self.field.matches(fields)


EVERYTHING = SelectionPredicate()
