"""Listers: reads from an informer's store (no request to the server), as client-go's generated listers.

`list()` takes a label selector (a string in kube's syntax, or a mapping of labels that must all match);
`get()` returns None for an object the store does not hold. Objects are the store's own: do not mutate
them (copy first: `obj.model_copy(deep=True)`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from kubellm.apis import selectors
from kubellm.apis.errors import StatusError
from kubellm.client.informers.store import NAMESPACE_INDEX, Indexer
from kubellm.client.resource import Selector, selector_string

O = TypeVar("O")  # noqa: E741
LabelsOf = Callable[[O], "Mapping[str, str] | None"]


def label_matcher(selector: Selector) -> Callable[[Mapping[str, str] | None], bool] | None:
    """A predicate on labels, or None for "everything"; a malformed selector is a ValueError."""
    text = selector_string(selector)
    if not text:
        return None
    try:
        parsed = selectors.parse_label_selector(text)
    except StatusError as exc:
        raise ValueError(exc.message) from None
    if parsed.empty():
        return None
    return parsed.matches


class _Base(Generic[O]):
    def __init__(self, indexer: Indexer[O], labels_of: LabelsOf[O]) -> None:
        self.indexer = indexer
        self.labels_of = labels_of

    def _filter(self, objs: builtins.list[O], selector: Selector) -> builtins.list[O]:
        match = label_matcher(selector)
        if match is None:
            return objs
        labels_of = self.labels_of
        return [o for o in objs if match(labels_of(o))]


class ClusterScopedLister(_Base[O]):
    """Reads of a cluster-scoped resource."""

    def list(self, selector: Selector = None) -> builtins.list[O]:
        return self._filter(self.indexer.list(), selector)

    def get(self, name: str) -> O | None:
        return self.indexer.get_by_key(name)


class NamespaceLister(_Base[O]):
    """Reads of a namespaced resource in one namespace (through the namespace index)."""

    def __init__(self, indexer: Indexer[O], labels_of: LabelsOf[O], namespace: str) -> None:
        super().__init__(indexer, labels_of)
        self.namespace = namespace

    def list(self, selector: Selector = None) -> builtins.list[O]:
        return self._filter(self.indexer.by_index(NAMESPACE_INDEX, self.namespace), selector)

    def get(self, name: str) -> O | None:
        return self.indexer.get_by_key(f"{self.namespace}/{name}")


class NamespacedLister(_Base[O]):
    """Reads of a namespaced resource: all namespaces, or one with `namespace(ns)`."""

    def list(self, selector: Selector = None) -> builtins.list[O]:
        return self._filter(self.indexer.list(), selector)

    def namespace(self, namespace: str) -> NamespaceLister[O]:
        return NamespaceLister(self.indexer, self.labels_of, namespace)
