"""A thread-safe indexed store, as client-go's `cache.Indexer` (`threadSafeMap` with indices).

Objects are kept by key (`namespace/name`, or `name` for cluster-scoped objects). Indexers are named
functions from an object to the values it is indexed under (the `namespace` index is always there); every
write updates the indices under the same lock, so a reader never sees an object without its index
entries or the reverse. Objects are shared, never copied: do not mutate what the store returns.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

O = TypeVar("O")  # noqa: E741

KeyFunc = Callable[[Any], str]
IndexFunc = Callable[[Any], list[str]]
NAMESPACE_INDEX = "namespace"


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of a store key."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("", ns)


@dataclass(frozen=True)
class DeletedFinalStateUnknown(Generic[O]):
    """What a delete handler gets for an object that disappeared while the informer was not watching (found
    missing by a relist): its key and the last state the informer knew."""

    key: str
    obj: O


class IndexConflict(ValueError):
    pass


class Indexer(Generic[O]):
    def __init__(self, key_func: KeyFunc, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self.key_func = key_func
        self._lock = threading.RLock()
        self._items: dict[str, O] = {}
        self._indexers: dict[str, IndexFunc] = dict(indexers or {})
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}

    # --- indices --------------------------------------------------------------------------------------------

    def _index_add(self, key: str, obj: O) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                bucket = index.get(value)
                if bucket is None:
                    index[value] = {key}
                else:
                    bucket.add(key)

    def _index_remove(self, key: str, obj: O) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                bucket = index.get(value)
                if bucket is not None:
                    bucket.discard(key)
                    if not bucket:
                        del index[value]

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """More indexers; the existing objects are indexed at once. A name already used is refused."""
        with self._lock:
            clash = set(indexers) & set(self._indexers)
            if clash:
                raise IndexConflict(f"indexer(s) already exist: {sorted(clash)}")
            for name, fn in indexers.items():
                self._indexers[name] = fn
                index: dict[str, set[str]] = {}
                for key, obj in self._items.items():
                    for value in fn(obj):
                        index.setdefault(value, set()).add(key)
                self._indices[name] = index

    @property
    def indexers(self) -> dict[str, IndexFunc]:
        return dict(self._indexers)

    # --- writes ---------------------------------------------------------------------------------------------

    def put(self, key: str, obj: O) -> O | None:
        """Add or replace; returns the previous object."""
        with self._lock:
            old = self._items.get(key)
            if old is not None:
                self._index_remove(key, old)
            self._items[key] = obj
            self._index_add(key, obj)
            return old

    def add(self, obj: O) -> O | None:
        return self.put(self.key_func(obj), obj)

    update = add

    def remove(self, key: str) -> O | None:
        """Delete by key; returns the object that was there."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._index_remove(key, old)
            return old

    def delete(self, obj: O) -> O | None:
        return self.remove(self.key_func(obj))

    def replace(self, items: Mapping[str, O] | Iterable[O]) -> dict[str, O]:
        """Replace everything (a relist); returns the previous contents by key."""
        fresh = dict(items) if isinstance(items, Mapping) else {self.key_func(o): o for o in items}
        with self._lock:
            old = self._items
            self._items = fresh
            self._indices = {name: {} for name in self._indexers}
            for key, obj in fresh.items():
                self._index_add(key, obj)
            return old

    # --- reads ----------------------------------------------------------------------------------------------

    def get_by_key(self, key: str) -> O | None:
        return self._items.get(key)

    def get(self, obj: O) -> O | None:
        return self._items.get(self.key_func(obj))

    def list(self) -> builtins.list[O]:
        with self._lock:
            return builtins.list(self._items.values())

    def list_keys(self) -> builtins.list[str]:
        with self._lock:
            return builtins.list(self._items)

    def items(self) -> builtins.list[tuple[str, O]]:
        with self._lock:
            return builtins.list(self._items.items())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def _index(self, name: str) -> dict[str, set[str]]:
        try:
            return self._indices[name]
        except KeyError:
            raise KeyError(f"no indexer named {name!r}") from None

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        """Keys of the objects indexed under `value`."""
        with self._lock:
            return sorted(self._index(index_name).get(value, ()))

    def by_index(self, index_name: str, value: str) -> builtins.list[O]:
        """The objects indexed under `value`."""
        with self._lock:
            return [self._items[k] for k in self._index(index_name).get(value, ())]

    def index(self, index_name: str, obj: O) -> builtins.list[O]:
        """The objects sharing at least one value of `index_name` with `obj`."""
        with self._lock:
            index = self._index(index_name)
            keys: set[str] = set()
            for value in self._indexers[index_name](obj):
                keys |= index.get(value, set())
            return [self._items[k] for k in keys]

    def list_index_func_values(self, index_name: str) -> builtins.list[str]:
        """Every value the index holds."""
        with self._lock:
            return sorted(self._index(index_name))
