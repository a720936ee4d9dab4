"""SelectionPredicate: label and field selectors applied to stored objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

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


Seen = tuple[Literal["ADDED", "MODIFIED", "DELETED"], bool]


def transition(pred: SelectionPredicate, cur: dict[str, Any] | None,
               prev: Callable[[], dict[str, Any]] | None) -> Seen | None:
    """What a watcher with `pred` sees of one change: (event type, whether the event carries the previous
    object), or None when it sees nothing.

    `cur` is None for a deletion; `prev` returns the previous object (decoded only when needed) and is None
    for a creation. An object that starts to match is ADDED, one that stops matching is DELETED (with its
    last matching state), as kube's watch filtering does.
    """
    if cur is None:
        return ("DELETED", True) if prev is not None and pred.matches(prev()) else None
    if prev is None:
        return ("ADDED", False) if pred.matches(cur) else None
    if pred.empty():
        return "MODIFIED", False
    cur_pass, old_pass = pred.matches(cur), pred.matches(prev())
    if cur_pass:
        return ("MODIFIED" if old_pass else "ADDED"), False
    return ("DELETED", True) if old_pass else None
