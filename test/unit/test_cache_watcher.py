"""CacheWatcher's synchronous hand-over to a consumer's sink (WatchOptions.sink): order, fallback, bookmarks."""

from __future__ import annotations

import asyncio

import pytest

from kubellm.registry.storage.cacher.cacher import key_of
from kubellm.registry.storage.cacher.watcher import CacheWatcher
from kubellm.registry.storage.interface import Event, Obj, WatchOptions


def obj(name: str, rev: int) -> Obj:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": str(rev)}}


class Sink:
    def __init__(self) -> None:
        self.taken: list[tuple[str, int, bytes | None]] = []
        self.accept = True

    def __call__(self, ev: Event) -> bool:
        if not self.accept:
            return False
        self.taken.append((ev.type, ev.revision, ev.encoded))
        return True


def watcher(sink: Sink, *, bookmarks: bool = False, interval: float = 60.0, rev: list[int] | None = None,
            capacity: int = 100) -> CacheWatcher:
    revision = rev or [0]
    return CacheWatcher(key_of, "ns/", WatchOptions("1", allow_bookmarks=bookmarks, bookmark_interval=interval,
                                                    sink=sink),
                        capacity=capacity, current_revision=lambda: revision[0], on_close=lambda w: None)


async def test_changes_go_to_the_sink_only_while_the_consumer_waits_with_nothing_queued() -> None:
    sink = Sink()
    w = watcher(sink)
    w.offer(2, "ADDED", obj("a", 2), None)  # the consumer has not asked yet: queued
    nxt = asyncio.ensure_future(w.__anext__())
    await asyncio.sleep(0)
    assert (await nxt).revision == 2
    assert sink.taken == []
    nxt = asyncio.ensure_future(w.__anext__())
    await asyncio.sleep(0)  # now waiting: the next changes are handed over, encoded, and the consumer sleeps on
    w.offer(3, "MODIFIED", obj("a", 3), obj("a", 2))
    w.offer(4, "DELETED", obj("a", 4), obj("a", 3))
    await asyncio.sleep(0)
    assert not nxt.done()
    assert [(t, r) for t, r, _ in sink.taken] == [("MODIFIED", 3), ("DELETED", 4)]
    assert all(e is not None for _, _, e in sink.taken)
    w.terminate()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(nxt, 1)


async def test_a_refused_change_is_queued_and_everything_after_it_follows_it_in_order() -> None:
    sink = Sink()
    w = watcher(sink)
    nxt = asyncio.ensure_future(w.__anext__())
    await asyncio.sleep(0)
    sink.accept = False
    w.offer(2, "MODIFIED", obj("a", 2), obj("a", 1))  # refused (a full connection buffer): queued
    sink.accept = True
    w.offer(3, "MODIFIED", obj("a", 3), obj("a", 2))  # the queue is not empty: queued behind it, not handed over
    assert sink.taken == []
    assert (await nxt).revision == 2
    assert (await w.__anext__()).revision == 3
    nxt = asyncio.ensure_future(w.__anext__())
    await asyncio.sleep(0)  # drained and waiting again: handed over once more
    w.offer(4, "MODIFIED", obj("a", 4), obj("a", 3))
    assert [r for _, r, _ in sink.taken] == [4]
    w.terminate()
    nxt.cancel()


async def test_no_hand_over_while_the_consumer_is_busy_with_an_event() -> None:
    sink = Sink()
    w = watcher(sink)
    w.offer(2, "MODIFIED", obj("a", 2), obj("a", 1))
    assert (await w.__anext__()).revision == 2  # the consumer is writing it now, not waiting
    w.offer(3, "MODIFIED", obj("a", 3), obj("a", 2))
    assert sink.taken == []
    assert (await w.__anext__()).revision == 3


async def test_changes_handed_over_postpone_the_bookmark_which_follows_them() -> None:
    sink = Sink()
    rev = [1]
    w = watcher(sink, bookmarks=True, interval=0.2, rev=rev)
    loop = asyncio.get_running_loop()
    start = loop.time()
    nxt = asyncio.ensure_future(w.__anext__())
    for r in range(2, 6):  # a change every 0.1 s: never silent for the interval
        await asyncio.sleep(0.1)
        rev[0] = r
        w.offer(r, "MODIFIED", obj("a", r), obj("a", r - 1))
    assert not nxt.done()
    bookmark = await asyncio.wait_for(nxt, 2)
    assert bookmark.type == "BOOKMARK" and bookmark.revision == 5
    assert loop.time() - start >= 0.6
    assert [r for _, r, _ in sink.taken] == [2, 3, 4, 5]
    w.terminate()
