"""The Event recorder's bounds, without an API server: the per-object spam filter (client-go's token bucket), the
bounded queue, the bounded caches, and giving up on an unreachable API after `max_tries` (writing and
aggregation against a real API server: test/e2e/test_event_recorder.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from clocks import ManualClock, until
from prometheus_client import CollectorRegistry

from kubellm.client import Config
from kubellm.client.rest.transport import Transport
from kubellm.controller.runtime import EventBroadcaster, EventOptions, Metrics, ObjectRef


@pytest.fixture
async def unreachable() -> AsyncIterator[Transport]:
    transport = Transport(Config(host="http://127.0.0.1:9", timeout=2.0, connect_timeout=1.0, max_retries=0))
    yield transport
    await transport.close()


def llm(name: str) -> dict[str, Any]:
    return {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"}}


def dropped(metrics: Metrics, reason: str) -> float:
    return metrics.registry.get_sample_value("kubellm_events_dropped_total", {"reason": reason}) or 0.0


async def test_a_hot_loop_is_rate_limited_per_object(unreachable: Transport) -> None:
    clock = ManualClock()
    metrics = Metrics(CollectorRegistry())
    b = EventBroadcaster(unreachable, clock=clock, metrics=metrics, options=EventOptions(spam_burst=25))
    rec = b.new_recorder("c")
    for i in range(100):
        rec.warning(llm("hot"), "Failed", f"attempt {i}")
    rec.normal(llm("other"), "Placed", "fine")  # another object has its own bucket
    assert b._queue.qsize() == 26
    assert dropped(metrics, "rate_limited") == 75
    clock.advance(300)  # one more every five minutes
    rec.warning(llm("hot"), "Failed", "again")
    rec.warning(llm("hot"), "Failed", "and again")
    assert b._queue.qsize() == 27 and dropped(metrics, "rate_limited") == 76
    other = b.new_recorder("d")  # the source is part of the key
    other.warning(llm("hot"), "Failed", "from elsewhere")
    assert b._queue.qsize() == 28


async def test_the_queue_and_caches_are_bounded(unreachable: Transport) -> None:
    metrics = Metrics(CollectorRegistry())
    b = EventBroadcaster(unreachable, metrics=metrics, options=EventOptions(queue_size=3, cache_size=10))
    rec = b.new_recorder("c")
    for i in range(50):
        rec.normal(llm(f"o{i}"), "Placed", "fine")
    assert b._queue.qsize() == 3
    assert dropped(metrics, "queue_full") == 47
    assert len(b._buckets) == 10


async def test_events_need_a_kind_a_name_and_a_known_type(unreachable: Transport) -> None:
    b = EventBroadcaster(unreachable)
    rec = b.new_recorder("c")
    rec.normal({"metadata": {"name": "x"}}, "Placed", "no kind")
    assert b._queue.qsize() == 0
    rec.normal({"metadata": {"name": "x"}}, "Placed", "kind given", api_version="v1", kind="Namespace")
    rec.normal(ObjectRef("v1", "Namespace", "y"), "Placed", "a reference")
    assert b._queue.qsize() == 2
    with pytest.raises(ValueError):
        rec.event(llm("x"), "Info", "Placed", "bad type")  # type: ignore[arg-type]
    long = "m" * 5000
    rec.warning(llm("x"), "R" * 300, long)
    pending = b._queue.get_nowait(), b._queue.get_nowait(), b._queue.get_nowait()
    assert len(pending[2].reason) == 128 and len(pending[2].message) == 1024


async def test_an_unreachable_api_is_tried_max_tries_times(unreachable: Transport) -> None:
    clock = ManualClock()
    metrics = Metrics(CollectorRegistry())
    b = EventBroadcaster(unreachable, clock=clock, metrics=metrics,
                         options=EventOptions(max_tries=3, retry_delay=1.0, call_timeout=2.0))
    b.start()
    b.new_recorder("c").warning(llm("x"), "Failed", "boom")
    for delay in (1.0, 2.0):
        await until(lambda: clock.sleepers == 1, timeout=10)
        assert clock.next_wakeup() == pytest.approx(delay)
        clock.advance(delay)
    await until(lambda: dropped(metrics, "unavailable") == 1, timeout=10)
    assert b.written == 0
    await b.shutdown(timeout=1)
