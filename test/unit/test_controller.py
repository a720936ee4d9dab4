"""Controller semantics: errors back off per key, a TerminalError is recorded and left alone until the object
changes, requeue-after polls, workers never share a key, reconciles have a deadline, and shutdown lets the
reconciles in flight finish (or cancels them at its deadline). Informer notifications come from a small
in-memory informer; time is a manual clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from clocks import ManualClock, settle, until
from prometheus_client import CollectorRegistry

from kubellm.client import ResourceRef
from kubellm.client.informers import Indexer
from kubellm.controller.runtime import (
    Controller,
    ControllerOptions,
    EnqueueHandler,
    Metrics,
    RateLimitingQueue,
    Result,
    TerminalError,
    generation_changed,
    indexed_keys,
    key_of,
    owner_keys,
)

LLMS = ResourceRef("model.kubellm.io", "v1alpha1", "llmservices", "LLMService", True)


def llm(name: str, ns: str = "ns", generation: int = 1, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "generation": generation,
                         "resourceVersion": str(generation), **meta}}


class Source:
    ref = LLMS


class MemoryInformer:
    """What a controller uses of an informer, fed by the test."""

    name = "llmservices (test)"

    def __init__(self) -> None:
        self.indexer: Indexer[dict[str, Any]] = Indexer(key_of)
        self.source = Source()
        self.handlers: list[Any] = []
        self.started = False

    def add_event_handler(self, handler: Any) -> Any:
        self.handlers.append(handler)
        return handler

    def remove_event_handler(self, handler: Any) -> None:
        self.handlers.remove(handler)

    def start(self) -> None:
        self.started = True

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        return True

    def has_synced(self) -> bool:
        return True

    def put(self, obj: dict[str, Any]) -> None:
        old = self.indexer.put(key_of(obj), obj)
        for h in self.handlers:
            h.on_add(obj, False) if old is None else h.on_update(old, obj)


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, str, str, dict[str, str]]] = []

    def warning(self, obj: Any, reason: str, message: str, **kwargs: str) -> None:
        self.recorded.append(("Warning", key_of(obj), reason, message, kwargs))


class Scripted:
    """A reconciler that answers from a script per key (an exception is raised, anything else returned)."""

    def __init__(self, script: dict[str, list[Any]] | None = None) -> None:
        self.script = script or {}
        self.calls: list[str] = []
        self.terminal: list[tuple[str, str]] = []

    async def reconcile(self, key: str) -> Result | None:
        self.calls.append(key)
        answers = self.script.get(key) or [None]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def on_terminal_error(self, key: str, error: TerminalError) -> None:
        self.terminal.append((key, error.reason))


def sample(metrics: Metrics, metric: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(metric, labels)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


async def test_errors_back_off_per_key_then_success_forgets(clock: ManualClock, metrics: Metrics) -> None:
    boom = RuntimeError("member unreachable")
    r = Scripted({"ns/a": [boom, boom, boom, Result()]})
    c = Controller("t", r, options=ControllerOptions(base_delay=1.0, max_delay=100.0), metrics=metrics, clock=clock)
    c.enqueue("ns/a")
    c.start_workers()
    for expected_calls, backoff in ((1, 1.0), (2, 2.0), (3, 4.0)):
        await until(lambda n=expected_calls: len(r.calls) == n and not c.queue.processing)
        await settle()
        assert clock.next_wakeup() == pytest.approx(backoff)
        clock.advance(backoff - 0.001)
        await settle()
        assert len(r.calls) == expected_calls, "retried before its backoff"
        clock.advance(0.001)
    await until(lambda: len(r.calls) == 4 and not c.queue.processing)
    assert c.queue.num_requeues("ns/a") == 0, "success forgets the backoff"
    assert sample(metrics, "controller_runtime_reconcile_errors_total", controller="t") == 3
    assert sample(metrics, "controller_runtime_reconcile_total", controller="t", result="error") == 3
    assert sample(metrics, "controller_runtime_reconcile_total", controller="t", result="success") == 1
    assert sample(metrics, "workqueue_retries_total", name="t") == 3
    await c.shutdown()


async def test_terminal_error_is_recorded_and_waits_for_a_change(clock: ManualClock, metrics: Metrics) -> None:
    r = Scripted({"ns/bad": [TerminalError("spec.model names no model", reason="InvalidModel"), Result()]})
    events = Events()
    informer = MemoryInformer()
    c = Controller("t", r, recorder=events, metrics=metrics, clock=clock)  # type: ignore[arg-type]
    c.watch_primary(informer)  # type: ignore[arg-type]
    await c.start()
    assert informer.started
    informer.put(llm("bad"))
    await until(lambda: r.calls == ["ns/bad"] and not c.queue.processing)
    assert events.recorded == [("Warning", "ns/bad", "InvalidModel", "spec.model names no model",
                                {"api_version": "model.kubellm.io/v1alpha1", "kind": "LLMService"})]
    assert r.terminal == [("ns/bad", "InvalidModel")]
    assert sample(metrics, "controller_runtime_terminal_reconcile_errors_total", controller="t") == 1
    assert sample(metrics, "controller_runtime_reconcile_errors_total", controller="t") == 1
    clock.advance(10_000)
    await settle()
    assert r.calls == ["ns/bad"] and len(c.queue) == 0 and c.queue.waiting == 0, "not retried"
    informer.put(llm("bad", generation=2))  # the object changed: reconciled again
    await until(lambda: r.calls == ["ns/bad", "ns/bad"] and not c.queue.processing)
    assert sample(metrics, "controller_runtime_reconcile_total", controller="t", result="success") == 1
    await c.shutdown()


async def test_requeue_after_polls_and_requeue_backs_off(clock: ManualClock) -> None:
    r = Scripted({"ns/poll": [Result(requeue_after=30.0)], "ns/again": [Result(requeue=True), Result()]})
    c = Controller("t", r, options=ControllerOptions(base_delay=2.0), clock=clock)
    c.enqueue("ns/poll")
    c.enqueue("ns/again")
    c.start_workers()
    await until(lambda: sorted(r.calls) == ["ns/again", "ns/poll"] and not c.queue.processing)
    clock.advance(2.0)
    await until(lambda: r.calls.count("ns/again") == 2)
    clock.advance(27.9)
    await settle()
    assert r.calls.count("ns/poll") == 1
    clock.advance(0.1)
    await until(lambda: r.calls.count("ns/poll") == 2)
    clock.advance(30.0)
    await until(lambda: r.calls.count("ns/poll") == 3)
    assert r.calls.count("ns/again") == 2
    await c.shutdown()


async def test_workers_share_no_key(clock: ManualClock) -> None:
    holding: set[str] = set()
    overlaps: list[str] = []
    peak = 0

    class Slow:
        calls = 0

        async def reconcile(self, key: str) -> None:
            nonlocal peak
            if key in holding:
                overlaps.append(key)
            holding.add(key)
            peak = max(peak, len(holding))
            self.calls += 1
            for _ in range(3):
                await asyncio.sleep(0)
            holding.discard(key)

    r = Slow()
    c = Controller("t", r, options=ControllerOptions(workers=4), clock=clock)
    c.start_workers()
    for i in range(400):
        c.enqueue(f"ns/k{i % 6}")
        if i % 3 == 0:
            await asyncio.sleep(0)
    await until(lambda: len(c.queue) == 0 and not c.queue.processing)
    assert overlaps == []
    assert peak == 4
    await c.shutdown()


async def test_shutdown_lets_reconciles_in_flight_finish(clock: ManualClock) -> None:
    gate = asyncio.Event()
    finished: list[str] = []

    class Gated:
        async def reconcile(self, key: str) -> None:
            await gate.wait()
            finished.append(key)

    c = Controller("t", Gated(), options=ControllerOptions(workers=2), clock=clock)
    for key in ("ns/a", "ns/b", "ns/c"):
        c.enqueue(key)
    c.start_workers()
    await until(lambda: len(c.queue.processing) == 2)
    stopping = asyncio.create_task(c.shutdown(timeout=30))
    await settle()
    assert not stopping.done(), "shutdown waits for the reconciles in flight"
    c.enqueue("ns/d")
    gate.set()
    assert await stopping is True
    assert sorted(finished) == ["ns/a", "ns/b"], "nothing new starts once shutting down"
    assert not c.running


async def test_shutdown_cancels_at_its_deadline_and_closes_the_reconciler(clock: ManualClock) -> None:
    cancelled: list[str] = []

    class Stuck:
        closed = False

        async def reconcile(self, key: str) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(key)
                raise

        async def close(self) -> None:
            self.closed = True

    r = Stuck()
    c = Controller("t", r, clock=clock)
    c.enqueue("ns/a")
    c.start_workers()
    await until(lambda: bool(c.queue.processing))
    assert await c.shutdown(timeout=0.05) is False
    assert cancelled == ["ns/a"] and not c.queue.processing
    assert r.closed


async def test_a_reconcile_past_its_deadline_is_retried(clock: ManualClock, metrics: Metrics) -> None:
    class Hangs:
        calls = 0

        async def reconcile(self, key: str) -> None:
            self.calls += 1
            await asyncio.Event().wait()

    r = Hangs()
    c = Controller("t", r, options=ControllerOptions(reconcile_timeout=0.05), metrics=metrics, clock=clock)
    c.enqueue("ns/a")
    c.start_workers()
    await until(lambda: c.queue.waiting == 1)
    assert sample(metrics, "controller_runtime_reconcile_errors_total", controller="t") == 1
    assert c.queue.num_requeues("ns/a") == 1
    await c.shutdown(timeout=0.05)


async def test_enqueue_helpers_map_owners_related_objects_and_filter() -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue("t")
    owned = llm("qwen-gpu-a", ownerReferences=[
        {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService", "name": "qwen", "uid": "u1",
         "controller": True},
        {"apiVersion": "cluster.kubellm.io/v1alpha1", "kind": "Cluster", "name": "gpu-a", "uid": "u2"}])
    EnqueueHandler(q, owner_keys("LLMService", "model.kubellm.io")).on_add(owned, False)
    EnqueueHandler(q, owner_keys("Cluster", controller_only=False, owner_namespaced=False)).on_add(owned, False)
    EnqueueHandler(q, owner_keys("LLMService", "other.io")).on_add(owned, False)
    assert [await q.get(), await q.get()] == ["ns/qwen", "gpu-a"]
    assert len(q) == 0

    placed = MemoryInformer()
    placed.indexer.add_indexers({"cluster": lambda o: o["metadata"].get("labels", {}).get("cluster", "").split()})
    placed.put(llm("x", labels={"cluster": "gpu-a"}))
    placed.put(llm("y", labels={"cluster": "gpu-b gpu-a"}))
    placed.put(llm("z", labels={"cluster": "gpu-c"}))
    handler = EnqueueHandler(q, indexed_keys(placed, "cluster", lambda c: [c["metadata"]["name"]]))  # type: ignore[arg-type]
    handler.on_delete({"metadata": {"name": "gpu-a"}})
    assert sorted([await q.get(), await q.get()]) == ["ns/x", "ns/y"] and len(q) == 0

    spec_only = EnqueueHandler(
        q, update_predicate=generation_changed, predicate=lambda o: o["metadata"]["name"] != "skip"
    )
    spec_only.on_update(llm("a", generation=1), llm("a", generation=1, annotations={"status": "written"}))
    spec_only.on_add(llm("skip"), False)
    assert len(q) == 0
    spec_only.on_update(llm("a", generation=1), llm("a", generation=2))
    obj = llm("b")
    spec_only.on_update(obj, obj)  # a resync passes
    assert [await q.get(), await q.get()] == ["ns/a", "ns/b"]
