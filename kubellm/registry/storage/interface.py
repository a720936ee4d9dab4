"""The storage interface the generic Store is written against.

Objects cross this boundary as plain JSON-ready dicts. The backend owns `metadata.resourceVersion`:
it strips it before writing and sets it from the store revision on every object it returns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from kubellm.registry.storage.selection import EVERYTHING, SelectionPredicate

Obj = dict[str, Any]
UpdateFunc = Callable[[Obj], Awaitable[Obj]]
ValidateDeletion = Callable[[Obj], Awaitable[bool]]
"""Whether the current object may be deleted now (False: it is returned, not deleted)."""
EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
EventSink = Callable[["Event"], bool]
"""A watch consumer's synchronous intake (see `WatchOptions.sink`): True when it took the event."""


@dataclass(frozen=True)
class Preconditions:
    uid: str | None = None
    resource_version: str | None = None


@dataclass(frozen=True)
class Deletion:
    """What `delete` did: the object as deleted (at the deletion's revision), or as it is when
    `validate_deletion` said no."""

    object: Obj
    deleted: bool


@dataclass(frozen=True)
class ListOptions:
    resource_version: str = ""
    """"" for a consistent (latest) read, "0" for any, or a revision."""
    resource_version_match: str = ""
    """"", "NotOlderThan" or "Exact"."""
    limit: int = 0
    continue_token: str = ""
    predicate: SelectionPredicate = EVERYTHING


@dataclass
class ListResult:
    items: list[Obj]
    resource_version: str
    continue_token: str = ""
    remaining_item_count: int | None = None


@dataclass(frozen=True)
class WatchOptions:
    resource_version: str = ""
    """Events after this revision; "" or "0" first deliver the current state as ADDED events."""
    predicate: SelectionPredicate = EVERYTHING
    allow_bookmarks: bool = False
    bookmark_interval: float = 60.0
    send_initial_events: bool = False
    """kube's watch-list: first the current state (with a resource_version, a state not older than it) as
    ADDED events, then a BOOKMARK annotated `k8s.io/initial-events-end: "true"`, then the changes."""
    sink: EventSink | None = field(default=None, compare=False)
    """The consumer's synchronous intake, when it has one. While the consumer is waiting for the next event
    with none queued, a watcher may hand a change (ADDED, MODIFIED or DELETED, with `encoded` set) to the sink
    at once, from where it dispatches, instead of queuing it and waking the consumer: one fan-out to many
    watchers then costs no task switch per watcher. The sink returns False when it cannot take the event
    now, and the event is queued as usual; it never raises (it runs in the dispatch to every watcher). Events
    still arrive in order, each once; a storage may ignore it."""


INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass
class Event:
    type: EventType
    object: Obj
    revision: int = 0
    encoded: bytes | None = None
    """The object's JSON when the producer already has it (a cache encodes once for all its watchers)."""


def initial_events_end(revision: int) -> Event:
    """The bookmark that ends a watch's initial events (sendInitialEvents)."""
    return Event("BOOKMARK", {"metadata": {"resourceVersion": str(revision),
                                           "annotations": {INITIAL_EVENTS_END: "true"}}}, revision)


class Watcher(Protocol):
    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def close(self) -> None: ...


@runtime_checkable
class ProgressRequester(Protocol):
    """A watcher that can be asked to tell, soon, the revision everything has been delivered up to (a BOOKMARK
    when bookmarks were asked for): etcd's progress request."""

    async def request_progress(self) -> None: ...


class Storage(Protocol):
    async def create(self, key: str, obj: Obj) -> Obj: ...

    async def get(self, key: str, resource_version: str = "") -> Obj:
        """The object; with resource_version "" as it is now (a linearizable read), with "0" any recent copy will do
        (a cache may answer), with a revision a state not older than it (TooLargeResourceVersion when the store
        has not reached it)."""
        ...

    async def get_list(self, prefix: str, opts: ListOptions) -> ListResult: ...

    async def guaranteed_update(self, key: str, try_update: UpdateFunc, *,
                                preconditions: Preconditions | None = None,
                                ignore_not_found: bool = False, cached_existing: Obj | None = None) -> Obj:
        """Apply `try_update` to the current object until the write wins. `cached_existing`: a recent copy (a watch
        cache's) to start from instead of reading; a start from it that fails (a conflict, a precondition, the
        update function's error, or no change at all) is retried from the stored state before anything is
        answered, so the result is as if the store had been read."""
        ...

    async def delete(self, key: str, *, preconditions: Preconditions | None = None,
                     validate_deletion: ValidateDeletion | None = None) -> Deletion: ...

    async def watch(self, prefix: str, opts: WatchOptions) -> Watcher: ...

    @property
    def compacted_revision(self) -> int:
        """The newest compaction revision this storage knows of (0 if none): history before it is gone."""
        ...

    async def history_compacted(self, resource_version: int) -> bool:
        """Whether a watch from `resource_version` would be refused because its history was compacted, as the
        backing store answers it now (the same on every server sharing it)."""
        ...

    async def count(self, prefix: str) -> int: ...

    async def current_revision(self) -> int: ...

    async def compact(self, revision: int) -> None: ...

    async def check_health(self) -> None: ...

    async def close(self) -> None: ...
