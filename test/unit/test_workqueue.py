"""The work queue (client-go's util/workqueue semantics): dedupe, one worker per key, re-queue of keys added
while processed, per-key exponential backoff with a cap, the overall token bucket, delayed adds, shutdown
and drain, and the client-go metrics. Time is a manual clock: nothing here waits for real time to pass."""

from __future__ import annotations

import asyncio
import random

import pytest
from clocks import ManualClock, settle, until
from prometheus_client import CollectorRegistry

from kubellm.controller.runtime import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    Metrics,
    Queue,
    RateLimitingQueue,
    default_controller_rate_limiter,
)


async def drain_now(q: Queue[str]) -> list[str]:
    """Every item waiting right now, in order (each marked done)."""
    out = []
    while len(q):
        item = await q.get()
        assert item is not None
        out.append(item)
        q.done(item)
    return out


async def test_adds_are_deduplicated_and_ordered() -> None:
    q: Queue[str] = Queue("t")
    for key in ["a", "b", "a", "c", "b", "a"]:
        q.add(key)
    assert len(q) == 3
    assert await drain_now(q) == ["a", "b", "c"]


async def test_a_key_added_while_processing_comes_back_after_done_once() -> None:
    q: Queue[str] = Queue("t")
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0, "a key being processed must not be handed out again"
    q.add("b")
    assert await q.get() == "b"
    q.done("b")
    q.done("a")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_many_workers_never_hold_one_key_and_lose_no_update() -> None:
    q: Queue[str] = Queue("t")
    keys = [f"k{i}" for i in range(5)]
    version = dict.fromkeys(keys, 0)
    processed = dict.fromkeys(keys, -1)
    holding: set[str] = set()
    overlaps: list[str] = []
    concurrency = 0
    peak = 0
    rnd = random.Random(7)

    async def worker() -> None:
        nonlocal concurrency, peak
        while (key := await q.get()) is not None:
            if key in holding:
                overlaps.append(key)
            holding.add(key)
            concurrency += 1
            peak = max(peak, concurrency)
            seen = version[key]
            for _ in range(rnd.randint(0, 3)):
                await asyncio.sleep(0)
            processed[key] = max(processed[key], seen)
            holding.discard(key)
            concurrency -= 1
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(8)]
    for _ in range(2000):
        key = rnd.choice(keys)
        version[key] += 1
        q.add(key)
        if rnd.random() < 0.5:
            await asyncio.sleep(0)
    await until(lambda: len(q) == 0 and not q.processing)
    q.shut_down()
    await asyncio.gather(*workers)
    assert overlaps == []
    assert peak > 1, "the test must actually run workers concurrently"
    assert processed == version, "every key's last add was processed after it happened"


async def test_exponential_backoff_grows_per_key_and_is_capped() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(0.005, 1.0)
    delays = [limiter.when("a") for _ in range(10)]
    assert delays[:8] == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64])
    assert delays[8:] == [1.0, 1.0]
    assert limiter.num_requeues("a") == 10
    assert limiter.when("b") == pytest.approx(0.005), "backoff is per key"
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.005)
    for _ in range(200):  # no overflow far past the cap
        assert limiter.when("c") <= 1.0


async def test_the_default_limiter_is_5ms_doubling_to_1000s() -> None:
    clock = ManualClock()
    limiter = default_controller_rate_limiter(clock)
    delays = []
    for _ in range(30):
        delays.append(limiter.when("a"))
        clock.advance(1.0)  # keep the overall bucket full: this is the per-key part
    assert delays[0] == pytest.approx(0.005)
    assert delays[10] == pytest.approx(0.005 * 1024)
    assert max(delays) == 1000.0 and delays[-1] == 1000.0


async def test_the_token_bucket_limits_the_overall_rate() -> None:
    clock = ManualClock()
    bucket: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=100, clock=clock)
    assert [bucket.when(f"k{i}") for i in range(100)] == [0.0] * 100
    assert bucket.when("x") == pytest.approx(0.1)
    assert bucket.when("y") == pytest.approx(0.2)
    clock.advance(1.0)  # ten tokens earned: the two owed, then eight more
    assert [bucket.when(f"z{i}") for i in range(8)] == [0.0] * 8
    assert bucket.when("w") == pytest.approx(0.1)
    clock.advance(100.0)  # never more than the burst saved up
    assert [bucket.when(f"v{i}") for i in range(100)] == [0.0] * 100
    assert bucket.when("u") > 0


async def test_max_of_takes_the_longest_wait_and_forgets_everywhere() -> None:
    clock = ManualClock()
    exp: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    bucket: BucketRateLimiter[str] = BucketRateLimiter(qps=1, burst=2, clock=clock)
    limiter = MaxOfRateLimiter(exp, bucket)
    assert limiter.when("a") == pytest.approx(0.005)
    assert limiter.when("b") == pytest.approx(0.005)
    assert limiter.when("c") == pytest.approx(1.0), "the bucket is empty: its wait wins over 5 ms"
    assert limiter.num_requeues("a") == 1
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0


async def test_delayed_adds_wait_on_the_clock() -> None:
    clock = ManualClock()
    q: RateLimitingQueue[str] = RateLimitingQueue("t", clock=clock)
    q.add_after("a", 5.0)
    q.add_after("b", 10.0)
    q.add_after("b", 2.0)  # the earlier time wins
    q.add_after("c", 1.0)
    q.add_after("c", 4.0)  # a later time does not postpone it
    q.add_after("now", 0)
    assert await drain_now(q) == ["now"]
    assert q.waiting == 3
    clock.advance(0.999)
    await settle()
    assert len(q) == 0
    clock.advance(0.001)
    await settle()
    assert await drain_now(q) == ["c"]
    clock.advance(1.0)
    await settle()
    assert await drain_now(q) == ["b"]
    clock.advance(2.9)
    await settle()
    assert len(q) == 0
    clock.advance(0.1)
    await settle()
    assert await drain_now(q) == ["a"]
    assert q.waiting == 0
    clock.advance(100.0)
    await settle()
    assert len(q) == 0, "each delayed add is handed out once"


async def test_rate_limited_adds_back_off_and_forget_resets() -> None:
    clock = ManualClock()
    metrics = Metrics(CollectorRegistry())
    q: RateLimitingQueue[str] = RateLimitingQueue(
        "rl", ItemExponentialFailureRateLimiter(1.0, 8.0), metrics=metrics.queue("rl", clock), clock=clock)
    expected = [1.0, 2.0, 4.0, 8.0, 8.0]
    for delay in expected:
        q.add_rate_limited("a")
        await settle()
        assert len(q) == 0
        assert clock.next_wakeup() == pytest.approx(delay)
        clock.advance(delay)
        await settle()
        assert await drain_now(q) == ["a"]
    assert q.num_requeues("a") == 5
    assert metrics.registry.get_sample_value("workqueue_retries_total", {"name": "rl"}) == 5
    q.forget("a")
    q.add_rate_limited("a")
    await settle()
    assert clock.next_wakeup() == pytest.approx(1.0)


async def test_shutdown_wakes_waiting_workers_and_ignores_adds() -> None:
    q: Queue[str] = Queue("t")
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle()
    assert not any(g.done() for g in getters)
    q.shut_down()
    assert await asyncio.gather(*getters) == [None, None, None]
    q.add("late")
    assert len(q) == 0
    assert await q.get() is None


async def test_shutdown_with_drain_waits_for_the_keys_in_flight() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue("t")
    for key in ["a", "b", "c"]:
        q.add(key)
    a, b = await q.get(), await q.get()
    assert (a, b) == ("a", "b")
    q.add("a")  # dirty while processing: not handed out again after shutdown
    drain = asyncio.create_task(q.shut_down_with_drain(timeout=30))
    await settle()
    assert not drain.done()
    assert await q.get() is None, "nothing new is handed out once shutting down"
    q.done("a")
    await settle()
    assert not drain.done(), "b is still in flight"
    q.done("b")
    assert await drain is True
    assert not q.processing


async def test_shutdown_with_drain_gives_up_at_its_deadline() -> None:
    q: Queue[str] = Queue("t")
    q.add("stuck")
    assert await q.get() == "stuck"
    assert await q.shut_down_with_drain(timeout=0.01) is False


async def test_shutdown_drops_delayed_keys() -> None:
    clock = ManualClock()
    q: RateLimitingQueue[str] = RateLimitingQueue("t", clock=clock)
    q.add_after("later", 1.0)
    q.shut_down()
    clock.advance(10)
    await settle()
    assert len(q) == 0 and q.waiting == 0
    q.add_rate_limited("x")
    assert q.waiting == 0


async def test_metrics_follow_client_go() -> None:
    clock = ManualClock()
    metrics = Metrics(CollectorRegistry())
    q: RateLimitingQueue[str] = RateLimitingQueue("m", metrics=metrics.queue("m", clock), clock=clock)

    def sample(name: str, suffix: str = "") -> float | None:
        return metrics.registry.get_sample_value(name + suffix, {"name": "m"})

    q.add("a")
    q.add("b")
    q.add("a")
    assert sample("workqueue_depth") == 2
    assert sample("workqueue_adds_total") == 2
    clock.advance(3.0)
    assert await q.get() == "a"
    assert sample("workqueue_depth") == 1
    assert sample("workqueue_queue_duration_seconds", "_sum") == pytest.approx(3.0)
    clock.advance(2.0)
    assert await q.get() == "b"
    clock.advance(1.0)
    assert sample("workqueue_unfinished_work_seconds") == pytest.approx(3.0 + 1.0)
    assert sample("workqueue_longest_running_processor_seconds") == pytest.approx(3.0)
    q.done("a")
    q.done("b")
    assert sample("workqueue_work_duration_seconds", "_count") == 2
    assert sample("workqueue_work_duration_seconds", "_sum") == pytest.approx(3.0 + 1.0)
    assert sample("workqueue_unfinished_work_seconds") == 0
    assert sample("workqueue_longest_running_processor_seconds") == 0
    assert sample("workqueue_depth") == 0
