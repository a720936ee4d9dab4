"""CacheWatcher's synchronous hand-over to a consumer's sink (WatchOptions.sink): order, fallback, bookmarks; and
the HTTP handler's sink."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from kubellm.registry.storage.cacher.cacher import key_of
from kubellm.registry.storage.cacher.watcher import CacheWatcher
from kubellm.registry.storage.interface import Event, Obj, WatchOptions
from kubellm.server.handlers import LineSink


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


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.buffered = 0
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.written.append(data)


def line_sink(transport: Transport, *, chunked: bool) -> LineSink:
    request = SimpleNamespace(transport=transport)
    resp = SimpleNamespace(compression=False, headers={"Transfer-Encoding": "chunked"} if chunked else {})
    sink = LineSink()
    sink.start(request, resp)  # type: ignore[arg-type]
    return sink


def test_the_line_sink_writes_what_the_handler_would_framed_as_the_response_is() -> None:
    for chunked in (True, False):
        t = Transport()
        sink = line_sink(t, chunked=chunked)
        assert sink(Event("MODIFIED", {}, 3, b'{"a":1}'))
        line = b'{"type":"MODIFIED","object":{"a":1}}\n'
        assert t.written == [b"%x\r\n%b\r\n" % (len(line), line) if chunked else line]
        assert sink(Event("DELETED", {}, 4, b'{"a":1}'))
        assert t.written[-1].endswith(b'{"type":"DELETED","object":{"a":1}}\n' + (b"\r\n" if chunked else b""))


def test_the_line_sink_refuses_when_it_cannot_write_at_once() -> None:
    t = Transport()
    sink = line_sink(t, chunked=True)
    assert not sink(Event("ADDED", {}, 2))  # nothing encoded: the handler encodes it
    t.buffered = 10  # a reader behind: its events keep to the handler's flow control
    assert not sink(Event("ADDED", {}, 2, b"{}"))
    t.buffered, t.closing = 0, True
    assert not sink(Event("ADDED", {}, 2, b"{}"))
    t.closing = False
    sink.stop()  # the handler is ending the stream
    assert not sink(Event("ADDED", {}, 2, b"{}"))
    assert t.written == []
    assert not LineSink()(Event("ADDED", {}, 2, b"{}"))  # not started


def test_the_line_sink_never_raises_into_the_dispatch() -> None:
    class Broken(Transport):
        def write(self, data: bytes) -> None:
            raise RuntimeError("closed under it")

    t = Broken()
    sink = line_sink(t, chunked=True)
    assert not sink(Event("ADDED", {}, 2, b"{}"))
    assert not sink(Event("ADDED", {}, 3, b"{}"))  # given up: the handler's own write ends the stream
