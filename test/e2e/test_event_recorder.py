"""The controllers' EventRecorder against the real API server: core/v1 Events that `kubectl describe` shows,
repeats aggregated into one Event's count (and written anew once the Event is gone), cluster-scoped
objects' Events in `default`, and a hot loop cut off by the per-object spam filter."""

from __future__ import annotations

import time
from collections.abc import Callable

from conftest import APIServer
from prometheus_client import CollectorRegistry

from kubellm.apis.core.v1 import Event
from kubellm.apis.meta.v1 import ObjectMeta
from kubellm.apis.model.v1alpha1 import LLMService, LLMServiceSpec
from kubellm.client import Config
from kubellm.client.aio import ClientSet
from kubellm.controller.runtime import EventBroadcaster, EventOptions, Metrics


async def written(b: EventBroadcaster, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while b.written < count:
        assert time.monotonic() < deadline, f"{b.written} of {count} events written"
        await b._queue.join()


async def events_about(clients: ClientSet, namespace: str, name: str, accept: Callable[[Event], bool] = lambda e: True
                       ) -> list[Event]:
    listed = await clients.core_v1.events(namespace).list(field_selector={"involvedObject.name": name})
    return sorted((e for e in listed.items if accept(e)), key=lambda e: e.reason)


async def test_events_are_written_aggregated_and_rate_limited(apiserver: APIServer) -> None:
    config = Config.from_kubeconfig(apiserver.kubeconfig)
    async with ClientSet(config) as clients:
        llms = clients.model_v1alpha1.llmservices("recorded")
        told = await llms.create(LLMService(metadata=ObjectMeta(name="told"),
                                            spec=LLMServiceSpec(model="Qwen/Qwen2.5-3B-Instruct")))
        hot = await llms.create(LLMService(metadata=ObjectMeta(name="hot"),
                                           spec=LLMServiceSpec(model="Qwen/Qwen2.5-3B-Instruct")))
        namespace = await clients.core_v1.namespaces().get("recorded")
        metrics = Metrics(CollectorRegistry())
        b = EventBroadcaster(clients.transport, metrics=metrics, options=EventOptions(spam_burst=10))
        b.start()
        rec = b.new_recorder("llmservice-controller", "manager-1")
        for _ in range(3):
            rec.warning(told, "ProbeFailed", "member gpu-a unreachable")
        rec.normal(told, "Placed", "placed 1 replica on gpu-a")
        rec.normal(namespace, "Seen", "a cluster-scoped object")
        for i in range(30):
            rec.warning(hot, "Failed", f"attempt {i}")
        await written(b, 3 + 1 + 1 + 10)

        placed, probe_failed = await events_about(clients, "recorded", "told")
        assert (probe_failed.reason, probe_failed.type, probe_failed.count) == ("ProbeFailed", "Warning", 3)
        assert probe_failed.message == "member gpu-a unreachable"
        assert probe_failed.first_timestamp and probe_failed.last_timestamp
        assert probe_failed.first_timestamp <= probe_failed.last_timestamp
        ref = probe_failed.involved_object
        assert (ref.api_version, ref.kind, ref.name, ref.namespace, ref.uid) == (
            "model.kubellm.io/v1alpha1", "LLMService", "told", "recorded", told.metadata.uid)
        assert ref.resource_version == told.metadata.resource_version
        assert probe_failed.source.component == "llmservice-controller"
        assert (probe_failed.reporting_component, probe_failed.reporting_instance) == (
            "llmservice-controller", "manager-1")
        assert (placed.reason, placed.type, placed.count) == ("Placed", "Normal", 1)

        [seen] = await events_about(clients, "default", "recorded", lambda e: e.involved_object.kind == "Namespace")
        assert seen.metadata.namespace == "default" and seen.involved_object.namespace == ""

        hot_events = await events_about(clients, "recorded", "hot")
        assert len(hot_events) == 10
        assert metrics.registry.get_sample_value("kubellm_events_dropped_total", {"reason": "rate_limited"}) == 20

        described = apiserver.kubectl("describe", "llms", "told", "-n", "recorded").stdout
        assert "ProbeFailed" in described and "(x3 over" in described and "member gpu-a unreachable" in described
        assert "llmservice-controller" in described

        # the Event is gone (expired, deleted): the next repeat writes it anew
        await clients.core_v1.events("recorded").delete(probe_failed.metadata.name or "")
        rec.warning(told, "ProbeFailed", "member gpu-a unreachable")
        await written(b, 16)
        again = await events_about(clients, "recorded", "told", lambda e: e.reason == "ProbeFailed")
        assert [e.count for e in again] == [1] and again[0].metadata.name != probe_failed.metadata.name
        await b.shutdown()
