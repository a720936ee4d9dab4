"""Event handlers that turn informer notifications into keys on a controller's queue (controller-runtime's
`handler` package): the object's own key, its owner's, or any mapping to related objects' keys.

A *mapper* takes an object (for a delete, its last known state) and returns the keys to reconcile:

- `object_key`: the object itself (`EnqueueRequestForObject`);
- `owner_keys(kind, group)`: the owners of that kind named in its ownerReferences (`EnqueueRequestForOwner`);
- `indexed_keys(informer, index, values)`: objects of another informer whose index holds any of the values
  `values(obj)` gives (for example the LLMServices placed on a Cluster, through an index of LLMServices by
  cluster name);
- any function of your own (`EnqueueRequestsFromMapFunc`).

Predicates filter what is enqueued: `predicate(obj)` for every notification, `update_predicate(old, new)`
for updates only (`generation_changed` is controller-runtime's `GenerationChangedPredicate`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from kubellm.client import DeletedFinalStateUnknown, SharedIndexInformer
from kubellm.controller.runtime.objects import group_of, key_of, meta_field, namespace_of, owners_of, unwrap
from kubellm.controller.runtime.workqueue import RateLimitingQueue

O = TypeVar("O")  # noqa: E741
KeyMapper = Callable[[Any], Iterable[str]]
Predicate = Callable[[Any], bool]
UpdatePredicate = Callable[[Any, Any], bool]


def object_key(obj: Any) -> list[str]:
    return [key_of(obj)]


def owner_keys(kind: str, group: str | None = None, *, controller_only: bool = True,
               owner_namespaced: bool = True) -> KeyMapper:
    """Keys of the object's owners of `kind` (in `group` when given; only its managing controller when
    `controller_only`). A namespaced owner is in the object's namespace; a cluster-scoped one has no
    namespace."""

    def mapper(obj: Any) -> list[str]:
        ns = namespace_of(obj) if owner_namespaced else ""
        keys = []
        for ref in owners_of(obj):
            if ref.kind != kind or (group is not None and group_of(ref.api_version) != group):
                continue
            if controller_only and not ref.controller:
                continue
            keys.append(f"{ns}/{ref.name}" if ns else ref.name)
        return keys

    return mapper


def indexed_keys(informer: SharedIndexInformer[Any], index: str, values: Callable[[Any], Iterable[str]]) -> KeyMapper:
    """Keys of the objects in `informer` whose index `index` holds one of `values(obj)`."""

    def mapper(obj: Any) -> list[str]:
        keys: list[str] = []
        for value in values(obj):
            keys.extend(informer.indexer.index_keys(index, value))
        return keys

    return mapper


def generation_changed(old: Any, new: Any) -> bool:
    """Only updates that change `metadata.generation` (a spec change), and resyncs; status-only writes are
    skipped. Objects without a generation are never passed on by it."""
    if old is new:
        return True
    return bool(meta_field(old, "generation", "generation") != meta_field(new, "generation", "generation"))


class EnqueueHandler(Generic[O]):
    """An informer handler that adds the keys `mapper` gives to `queue`."""

    def __init__(self, queue: RateLimitingQueue[str], mapper: KeyMapper = object_key, *,
                 predicate: Predicate | None = None, update_predicate: UpdatePredicate | None = None) -> None:
        self.queue = queue
        self.mapper = mapper
        self.predicate = predicate
        self.update_predicate = update_predicate

    def _accepts(self, obj: Any) -> bool:
        return self.predicate is None or bool(self.predicate(obj))

    def _enqueue(self, *objs: Any) -> None:
        keys: set[str] = set()
        for obj in objs:
            keys.update(self.mapper(obj))
        for key in sorted(keys):
            if key:
                self.queue.add(key)

    def on_add(self, obj: O, is_in_initial_list: bool) -> None:
        if self._accepts(obj):
            self._enqueue(obj)

    def on_update(self, old: O, new: O) -> None:
        if self.update_predicate is not None and not self.update_predicate(old, new):
            return
        accepted = [o for o in (old, new) if self._accepts(o)]
        if accepted:
            self._enqueue(*accepted)

    def on_delete(self, obj: O | DeletedFinalStateUnknown[O]) -> None:
        target = unwrap(obj)
        if self._accepts(target):
            self._enqueue(target)
