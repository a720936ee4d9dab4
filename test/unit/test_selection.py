"""Watch filtering: what a watcher with a selector sees of each change (one rule for etcd and the cache)."""

from __future__ import annotations

from typing import Any

from kubellm.apis.selectors import parse_label_selector
from kubellm.registry.storage.selection import SelectionPredicate, transition


def obj(**labels: str) -> dict[str, Any]:
    return {"metadata": {"name": "x", "labels": labels}}


def test_transitions() -> None:
    chat = SelectionPredicate(parse_label_selector("app=chat"))
    everything = SelectionPredicate()
    a, b = obj(app="chat"), obj(app="rag")
    cases = [
        (chat, a, None, ("ADDED", False)),
        (chat, b, None, None),
        (chat, a, a, ("MODIFIED", False)),
        (chat, a, b, ("ADDED", False)),  # enters the selector
        (chat, b, a, ("DELETED", True)),  # leaves it: the last matching state
        (chat, b, b, None),
        (chat, None, a, ("DELETED", True)),
        (chat, None, b, None),
        (everything, b, b, ("MODIFIED", False)),
        (everything, None, b, ("DELETED", True)),
    ]
    for pred, cur, prev, expected in cases:
        assert transition(pred, cur, (lambda p=prev: p) if prev is not None else None) == expected


def test_previous_state_is_decoded_only_when_needed() -> None:
    def never() -> dict[str, Any]:
        raise AssertionError("decoded the previous object for an unfiltered update")

    assert transition(SelectionPredicate(), obj(), never) == ("MODIFIED", False)
