"""Status conditions as controllers keep them: one entry per type, `lastTransitionTime` moving only when the
status does (apimachinery's `meta.SetStatusCondition`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def set_condition(conditions: Iterable[dict[str, Any]], type_: str, status: str, reason: str, message: str,
                  now: str, observed_generation: int = 0) -> list[dict[str, Any]]:
    """`conditions` with the one of `type_` set; the others are kept as they are, in their order."""
    out: list[dict[str, Any]] = []
    found = False
    for cond in conditions:
        if cond.get("type") != type_:
            out.append(dict(cond))
            continue
        found = True
        changed = cond.get("status") != status
        out.append(_condition(type_, status, reason, message,
                              now if changed or not cond.get("lastTransitionTime") else cond["lastTransitionTime"],
                              observed_generation))
    if not found:
        out.append(_condition(type_, status, reason, message, now, observed_generation))
    return out


def find(conditions: Iterable[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def is_true(conditions: Iterable[dict[str, Any]], type_: str) -> bool:
    cond = find(conditions, type_)
    return cond is not None and cond.get("status") == "True"


def _condition(type_: str, status: str, reason: str, message: str, when: str, generation: int) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": type_, "status": status, "lastTransitionTime": when, "reason": reason,
                            "message": message[:32768]}
    if generation:
        cond["observedGeneration"] = generation
    return cond
