"""The clientset's protocol logic against a scripted HTTP server on loopback: retries and Retry-After, typed
errors for every failure a server can answer, deadlines, watch resumption (bookmarks, dropped streams,
410 relists), informers (handlers, tombstones, resync, late handlers, failing handlers), unknown fields kept
through an update, warnings, rate limits, credentials from a kubeconfig exec plugin, and discovery v2/v1.

A real server cannot be made to answer 429, 503 or a 410 on demand; this one can.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web

from kubellm.apis.model.v1alpha1 import LLMService
from kubellm.client import (
    APIError,
    AsyncDynamicClient,
    ClientTimeout,
    Config,
    DeletedFinalStateUnknown,
    EventHandlerFuncs,
    Expired,
    Gone,
    ResourceNotFound,
    ServiceUnavailable,
    Timeout,
    TooManyRequests,
    TransportError,
)
from kubellm.client.aio import ClientSet, SharedInformerFactory
from kubellm.client.backoff import Backoff
from kubellm.client.informers import InformerOptions

GV = "/apis/model.kubellm.io/v1alpha1"
LLMS = f"{GV}/namespaces/ns/llmservices"
FAST = Backoff(initial=0.01, maximum=0.05, jitter=0.0)


def llm(name: str, rv: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv), "uid": f"uid-{name}"},
            "spec": {"model": "Qwen/Qwen2.5-3B-Instruct", **spec}}


def status(code: int, reason: str, message: str = "", **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "code": code, "reason": reason, "message": message or reason}
    if details:
        body["details"] = details
    return body


def json_response(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status_code, content_type="application/json",
                        headers=headers)


@dataclass
class Script:
    """What the server answers, by route; every request is recorded."""

    routes: dict[tuple[str, str], Callable[[web.Request], Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], bytes, dict[str, str]]] = field(default_factory=list)

    def on(self, method: str, path: str) -> Callable[[Callable[[web.Request], Any]], Any]:
        def register(fn: Callable[[web.Request], Any]) -> Any:
            self.routes[(method, path)] = fn
            return fn
        return register

    def seen(self, method: str, path: str) -> list[dict[str, str]]:
        return [q for m, p, q, _, _ in self.requests if m == method and p == path]


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Script]]:
    script = Script()

    async def dispatch(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        script.requests.append((request.method, request.path, dict(request.query), body, dict(request.headers)))
        handler = script.routes.get((request.method, request.path))
        if handler is None:
            return json_response(status(404, "NotFound", f"no route {request.method} {request.path}"), 404)
        result = handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        return result  # type: ignore[no-any-return]

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", script
    finally:
        await runner.cleanup()


def cfg(url: str, **kw: Any) -> Config:
    return Config(host=url, warning_handler=None, **kw)


# --- retries, deadlines, typed errors --------------------------------------------------------------------------


async def test_too_many_requests_is_retried_after_the_delay_it_names(server: tuple[str, Script]) -> None:
    url, script = server
    answers = iter([429, 429, 200])

    @script.on("POST", LLMS)
    def create(request: web.Request) -> web.Response:
        code = next(answers)
        if code == 429:
            return json_response(status(429, "TooManyRequests", "too many requests", retryAfterSeconds=1), 429,
                                 {"Retry-After": "0.05"})
        return json_response(llm("a", 3), 201)

    async with ClientSet(cfg(url)) as clients:
        began = time.monotonic()
        obj = await clients.model_v1alpha1.llmservices("ns").create(LLMService.model_validate(llm("a", 0)))
        assert obj.metadata.resource_version == "3"
        assert time.monotonic() - began >= 0.1
    assert len(script.seen("POST", LLMS)) == 3

    answers = iter([429, 429, 429])
    async with ClientSet(cfg(url, max_retries=1)) as clients:
        with pytest.raises(TooManyRequests) as exc:
            await clients.model_v1alpha1.llmservices("ns").create(LLMService.model_validate(llm("a", 0)))
    assert exc.value.code == 429 and exc.value.retry_after == 0.05
    assert exc.value.status.details is not None and exc.value.status.details.retry_after_seconds == 1


async def test_a_busy_server_is_retried_for_reads_but_not_for_writes(server: tuple[str, Script]) -> None:
    url, script = server
    reads = iter([503, 200])

    @script.on("GET", f"{LLMS}/a")
    def get(request: web.Request) -> web.Response:
        if next(reads) == 503:
            return json_response(status(503, "ServiceUnavailable", "storage is unavailable"), 503,
                                 {"Retry-After": "0"})
        return json_response(llm("a", 3))

    @script.on("PUT", f"{LLMS}/a")
    def put(request: web.Request) -> web.Response:
        return json_response(status(503, "ServiceUnavailable", "storage is unavailable"), 503, {"Retry-After": "0"})

    async with ClientSet(cfg(url)) as clients:
        llms = clients.model_v1alpha1.llmservices("ns")
        obj = await llms.get("a")
        with pytest.raises(ServiceUnavailable) as exc:
            await llms.update(obj)
    assert len(script.seen("GET", f"{LLMS}/a")) == 2 and len(script.seen("PUT", f"{LLMS}/a")) == 1
    assert exc.value.message == "storage is unavailable" and exc.value.retry_after == 0.0


@pytest.mark.parametrize(("code", "body", "cls", "reason"), [
    (504, status(504, "Timeout", "Too large resource version", retryAfterSeconds=1), Timeout, "Timeout"),
    (410, status(410, "Expired", "too old resource version: 1 (5)"), Expired, "Expired"),
    (410, status(410, "Gone", "gone"), Gone, "Gone"),
    (502, b"<html>bad gateway</html>", APIError, "Unknown"),
    (503, b"", ServiceUnavailable, "ServiceUnavailable"),
])
async def test_failures_are_typed_from_status_or_code(server: tuple[str, Script], code: int, body: Any,
                                                      cls: type[APIError], reason: str) -> None:
    url, script = server
    script.on("GET", f"{LLMS}/a")(lambda _: web.Response(
        body=body if isinstance(body, bytes) else orjson.dumps(body), status=code,
        content_type="application/json" if not isinstance(body, bytes) else "text/html"))
    async with ClientSet(cfg(url, max_retries=0)) as clients:
        with pytest.raises(cls) as exc:
            await clients.model_v1alpha1.llmservices("ns").get("a")
    assert type(exc.value) is cls and exc.value.code == code and exc.value.reason == reason
    if isinstance(exc.value, Timeout):
        assert exc.value.too_large_resource_version
    if isinstance(body, bytes) and body:
        assert "bad gateway" in exc.value.message


async def test_every_call_has_a_deadline(server: tuple[str, Script]) -> None:
    url, script = server

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return json_response(llm("a", 1))

    script.on("GET", f"{LLMS}/a")(slow)
    async with ClientSet(cfg(url, timeout=0.3)) as clients:
        began = time.monotonic()
        with pytest.raises(ClientTimeout):
            await clients.model_v1alpha1.llmservices("ns").get("a")
        with pytest.raises(TimeoutError):  # ClientTimeout is a TimeoutError
            await clients.model_v1alpha1.llmservices("ns").get("a", timeout=0.1)
        assert time.monotonic() - began < 2


async def test_a_refused_connection_is_a_transport_error() -> None:
    from kubellm.registry.storage.etcd.embedded import free_port

    async with ClientSet(cfg(f"http://127.0.0.1:{free_port()}", timeout=2)) as clients:
        with pytest.raises(TransportError):
            await clients.model_v1alpha1.llmservices("ns").get("a")


async def test_warnings_reach_the_handler_and_the_rate_limit_spaces_requests(server: tuple[str, Script]) -> None:
    url, script = server
    script.on("GET", f"{LLMS}/a")(lambda _: web.Response(
        body=orjson.dumps(llm("a", 1)), content_type="application/json",
        headers=[("Warning", '299 - "unknown field \\"spec.foo\\""'), ("Warning", '299 - "second"')]))  # type: ignore[arg-type]
    heard: list[str] = []
    async with ClientSet(cfg(url, qps=20, burst=1).replace(warning_handler=heard.append)) as clients:
        began = time.monotonic()
        for _ in range(5):
            await clients.model_v1alpha1.llmservices("ns").get("a")
        elapsed = time.monotonic() - began
    assert heard[:2] == ['unknown field "spec.foo"', "second"]
    assert elapsed >= 0.19  # 4 waits of 1/20 s after the burst of 1


async def test_unknown_fields_are_kept_and_sent_back(server: tuple[str, Script]) -> None:
    url, script = server
    newer = llm("a", 7)
    newer["spec"]["speculativeDecoding"] = {"draftModel": "tiny", "tokens": 4}
    newer["spec"]["autoscaling"] = {"maxReplicas": 3, "scaleToZero": True}
    newer["spec"]["env"] = [{"name": "A", "value": "1", "valueFrom": {"secret": "s"}}]
    newer["metadata"]["shardID"] = "7"
    newer["topLevel"] = [1, 2]
    script.on("GET", f"{LLMS}/a")(lambda _: json_response(newer))

    async def echo(request: web.Request) -> web.Response:
        return json_response(json.loads(await request.read()))

    script.on("PUT", f"{LLMS}/a")(echo)
    async with ClientSet(cfg(url)) as clients:
        llms = clients.model_v1alpha1.llmservices("ns")
        obj = await llms.get("a")
        assert obj.spec.autoscaling is not None and obj.spec.autoscaling.max_replicas == 3
        obj.spec.replicas = 2
        await llms.update(obj)
    sent = orjson.loads(script.requests[-1][3])
    assert sent["spec"]["speculativeDecoding"] == {"draftModel": "tiny", "tokens": 4}
    assert sent["spec"]["autoscaling"]["scaleToZero"] is True and sent["spec"]["autoscaling"]["maxReplicas"] == 3
    assert sent["spec"]["env"] == [{"name": "A", "value": "1", "valueFrom": {"secret": "s"}}]
    assert sent["metadata"]["shardID"] == "7" and sent["topLevel"] == [1, 2] and sent["spec"]["replicas"] == 2
    for key in newer["spec"]:  # nothing received is missing from what was sent
        assert key in sent["spec"]


async def test_a_kubeconfig_exec_plugin_supplies_the_token(server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    script.on("GET", f"{LLMS}/a")(lambda _: json_response(llm("a", 1)))
    plugin = tmp_path / "plugin.py"
    plugin.write_text("import json\nprint(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
                      "'kind': 'ExecCredential', 'status': {'token': 'from-the-plugin'}}))\n")
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "c", "cluster": {"server": url}}, {"name": "x", "cluster": {"server": "http://x"}}],
        "users": [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                   "command": sys.executable, "args": [str(plugin)],
                                                   "interactiveMode": "Never"}}},
                  {"name": "t", "user": {"token": "static"}}],
        "contexts": [{"name": "plugin", "context": {"cluster": "c", "user": "u"}},
                     {"name": "other", "context": {"cluster": "x", "user": "t"}}]}))
    config = Config.from_kubeconfig(kubeconfig, context="plugin")
    assert config.host == url
    async with ClientSet(config.replace(warning_handler=None)) as clients:
        await clients.model_v1alpha1.llmservices("ns").get("a")
    assert script.requests[-1][4]["Authorization"] == "Bearer from-the-plugin"
    other = Config.from_kubeconfig(kubeconfig)  # the current context
    assert other.host == "http://x" and other.authorization is not None and other.authorization() == "Bearer static"


async def test_a_token_file_is_read_again(server: tuple[str, Script], tmp_path: Path) -> None:
    url, script = server
    script.on("GET", f"{LLMS}/a")(lambda _: json_response(llm("a", 1)))
    token = tmp_path / "token"
    token.write_text("one\n")
    async with ClientSet(cfg(url, token_file=str(token))) as clients:
        llms = clients.model_v1alpha1.llmservices("ns")
        await llms.get("a")
        token.write_text("two\n")
        clients.transport.credentials._checked -= 3600  # as if a minute had passed
        await llms.get("a")
    assert [r[4]["Authorization"] for r in script.requests] == ["Bearer one", "Bearer two"]


# --- watches ----------------------------------------------------------------------------------------------------


def watch_line(kind: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


def bookmark(rv: int) -> dict[str, Any]:
    return {"kind": "LLMService", "apiVersion": "model.kubellm.io/v1alpha1", "metadata": {"resourceVersion": str(rv)}}


def scripted_history(script: Script, flaky_relist: bool = False) -> asyncio.Event:
    """List: a, c at 1. Watch from 1: a modified (2), a bookmark at 5, then the connection is cut. Watch from
    5: 410 as an ERROR event. List again (`flaky_relist`: after one 503): a at 6 and b at 6 (c was deleted
    meanwhile), at 7. Watch from 7: open, silent. Returns an event set when the last watch is open."""
    lists = iter([[llm("a", 1), llm("c", 1)], [llm("a", 6, replicas=2), llm("b", 6)]])
    list_rvs = iter(["1", "7"])
    last_open = asyncio.Event()
    list_calls = 0

    @script.on("GET", f"{GV}/llmservices")
    async def list_or_watch(request: web.Request) -> web.StreamResponse:
        nonlocal list_calls
        if request.query.get("watch") != "true":
            list_calls += 1
            if flaky_relist and list_calls == 2:
                return json_response(status(503, "ServiceUnavailable", "storage is unavailable"), 503)
            return json_response({"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMServiceList",
                                  "metadata": {"resourceVersion": next(list_rvs)}, "items": next(lists)})
        resp = web.StreamResponse()
        await resp.prepare(request)
        rv = request.query.get("resourceVersion")
        if rv == "1":
            await resp.write(watch_line("MODIFIED", llm("a", 2, replicas=1)))
            await resp.write(watch_line("BOOKMARK", bookmark(5)))
            await asyncio.sleep(0.05)  # let the events leave before the connection drops
            assert request.transport is not None
            request.transport.abort()
            return resp
        if rv == "5":
            await resp.write(watch_line("ERROR", status(410, "Expired", "too old resource version: 5 (6)")))
            return resp
        last_open.set()
        await asyncio.sleep(30)
        return resp

    return last_open


async def test_watch_resumes_from_bookmarks_and_relists_after_410(server: tuple[str, Script]) -> None:
    url, script = server
    last_open = scripted_history(script, flaky_relist=True)
    events: list[tuple[str, str, str]] = []
    async with ClientSet(cfg(url)) as clients:
        watch = clients.model_v1alpha1.llmservices().watch(backoff=FAST, bookmarks=True)

        async def consume() -> None:
            async for ev in watch:
                events.append((ev.type, ev.object.metadata.name or "", ev.object.metadata.resource_version or ""))

        task = asyncio.create_task(consume())
        await asyncio.wait_for(last_open.wait(), 10)
        await asyncio.sleep(0.05)
        task.cancel()
    assert events == [("ADDED", "a", "1"), ("ADDED", "c", "1"), ("MODIFIED", "a", "2"), ("BOOKMARK", "", "5"),
                      ("MODIFIED", "a", "6"), ("ADDED", "b", "6"), ("DELETED", "c", "1")]
    watches = [q for q in script.seen("GET", f"{GV}/llmservices") if q.get("watch") == "true"]
    assert [q["resourceVersion"] for q in watches] == ["1", "5", "7"]
    lists = [q for q in script.seen("GET", f"{GV}/llmservices") if q.get("watch") != "true"]
    assert len(lists) == 3  # the first list, a relist answered 503, and its retry
    assert all(q["allowWatchBookmarks"] == "true" for q in watches)


async def test_watch_raises_410_when_asked_not_to_relist(server: tuple[str, Script]) -> None:
    url, script = server
    scripted_history(script)
    async with ClientSet(cfg(url)) as clients:
        seen = []
        with pytest.raises(Expired):
            async for ev in clients.model_v1alpha1.llmservices().watch(backoff=FAST, relist_on_expired=False):
                seen.append(ev.type)
    assert seen == ["ADDED", "ADDED", "MODIFIED"]


async def test_informer_mirrors_through_drops_and_410(server: tuple[str, Script]) -> None:
    url, script = server
    last_open = scripted_history(script)
    heard: list[tuple[str, Any]] = []
    async with ClientSet(cfg(url)) as clients:
        factory = SharedInformerFactory(clients, options=InformerOptions(backoff=lambda: Backoff(0.01, 0.05)))
        llms = factory.model_v1alpha1.llmservices()
        informer = llms.informer()
        assert factory.model_v1alpha1.llmservices().informer() is informer  # shared
        reg = informer.add_event_handler(EventHandlerFuncs(
            add=lambda o: heard.append(("add", o.metadata.name)),
            update=lambda old, new: heard.append(("update", (old.metadata.resource_version,
                                                             new.metadata.resource_version))),
            delete=lambda o: heard.append(("delete", o))))
        factory.start()
        assert (await factory.wait_for_cache_sync(5)) == {llms.ref: True}
        await asyncio.wait_for(last_open.wait(), 10)
        await asyncio.sleep(0.05)
        lister = llms.lister()
        assert sorted(o.metadata.name or "" for o in lister.list()) == ["a", "b"]
        assert lister.llmservices("ns").get("a").spec.replicas == 2  # type: ignore[union-attr]
        assert lister.llmservices("other").list() == [] and lister.llmservices("ns").get("c") is None
        assert reg.has_synced() and informer.has_synced()
        assert informer.stats.lists == 2 and informer.stats.relists_after_expired == 1
        assert informer.last_sync_resource_version == "7"
        await factory.shutdown()
    assert heard[:4] == [("add", "a"), ("add", "c"), ("update", ("1", "2")), ("update", ("2", "6"))]
    assert heard[4] == ("add", "b")
    tomb = heard[5][1]
    assert isinstance(tomb, DeletedFinalStateUnknown) and tomb.key == "ns/c" and tomb.obj.metadata.name == "c"
    lists = [q for q in script.seen("GET", f"{GV}/llmservices") if q.get("watch") != "true"]
    assert lists[0] == {"resourceVersion": "0"}  # the first list from the cache, unpaged
    assert lists[1] == {"limit": "500"}  # after 410: consistent, paged


async def test_handlers_fail_alone_resync_and_join_late(server: tuple[str, Script]) -> None:
    url, script = server
    script.on("GET", f"{GV}/llmservices")(lambda r: json_response(
        {"kind": "LLMServiceList", "metadata": {"resourceVersion": "3"}, "items": [llm("a", 2), llm("b", 3)]})
        if r.query.get("watch") != "true" else _silent_watch(r))
    async with ClientSet(cfg(url)) as clients:
        factory = SharedInformerFactory(clients)
        informer = factory.model_v1alpha1.llmservices().informer()
        good: list[str] = []
        resyncs: list[str] = []

        def explode(obj: Any) -> None:
            raise RuntimeError("handler bug")

        async def slow_add(obj: Any) -> None:
            await asyncio.sleep(0.01)
            good.append(obj.metadata.name)

        bad = informer.add_event_handler(EventHandlerFuncs(add=explode))
        informer.add_event_handler(EventHandlerFuncs(add=slow_add))
        informer.add_event_handler(EventHandlerFuncs(update=lambda old, new: resyncs.append(new.metadata.name)
                                                     if old is new else None), resync_period=0.1)
        factory.start()
        rags = factory.model_v1alpha1.ragservices().informer()  # asked for after start: not started yet
        assert await factory.wait_for_cache_sync(5) == {informer.source.ref: True}
        assert not rags.started and not rags.has_synced()
        late: list[tuple[str, bool]] = []
        late_reg = informer.add_event_handler(_Recording(late))
        await asyncio.sleep(0.35)
        assert sorted(good) == ["a", "b"] and bad.failures == 2
        assert sorted(late) == [("a", True), ("b", True)] and late_reg.has_synced()
        assert resyncs.count("a") >= 2 and resyncs.count("b") >= 2
        assert informer.running
        await factory.shutdown()


class _Recording:
    def __init__(self, out: list[tuple[str, bool]]) -> None:
        self.out = out

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        self.out.append((obj.metadata.name, is_in_initial_list))

    def on_update(self, old: Any, new: Any) -> None:
        pass

    def on_delete(self, obj: Any) -> None:
        pass


async def _silent_watch(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    await asyncio.sleep(30)
    return resp


# --- discovery ----------------------------------------------------------------------------------------------------

AGGREGATED = {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "items": [
    {"metadata": {"name": "apps"}, "versions": [{"version": "v1", "resources": [
        {"resource": "deployments", "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
         "scope": "Namespaced", "singularResource": "deployment", "verbs": ["get", "list"], "shortNames": ["deploy"],
         "subresources": [{"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1",
                                                                    "kind": "Scale"}, "verbs": ["get"]}]}]}]}]}
CORE_AGGREGATED = {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "items": [
    {"versions": [{"version": "v1", "resources": [
        {"resource": "services", "responseKind": {"group": "", "version": "v1", "kind": "Service"},
         "scope": "Namespaced", "singularResource": "service", "verbs": ["get"], "shortNames": ["svc"]}]}]}]}


async def test_discovery_prefers_v2_and_falls_back_to_v1(server: tuple[str, Script]) -> None:
    url, script = server
    v2 = {"on": True}

    def api(request: web.Request) -> web.Response:
        if v2["on"] and "apidiscovery.k8s.io" in request.headers.get("Accept", ""):
            return json_response(CORE_AGGREGATED)
        return json_response({"kind": "APIVersions", "versions": ["v1"]})

    def apis(request: web.Request) -> web.Response:
        if v2["on"] and "apidiscovery.k8s.io" in request.headers.get("Accept", ""):
            return json_response(AGGREGATED)
        return json_response({"kind": "APIGroupList", "groups": [
            {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
            {"name": "broken.example.com", "versions": [{"groupVersion": "broken.example.com/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": "broken.example.com/v1", "version": "v1"}}]})

    script.on("GET", "/api")(api)
    script.on("GET", "/apis")(apis)
    script.on("GET", "/api/v1")(lambda _: json_response({"kind": "APIResourceList", "groupVersion": "v1",
                                                         "resources": [{"name": "services", "singularName": "service",
                                                                        "namespaced": True, "kind": "Service",
                                                                        "verbs": ["get"], "shortNames": ["svc"]}]}))
    script.on("GET", "/apis/apps/v1")(lambda _: json_response({"kind": "APIResourceList", "groupVersion": "apps/v1",
                                                               "resources": [
        {"name": "deployments", "singularName": "deployment", "namespaced": True, "kind": "Deployment",
         "verbs": ["get", "list"], "shortNames": ["deploy"]},
        {"name": "deployments/scale", "singularName": "", "namespaced": True, "kind": "Scale", "group": "autoscaling",
         "version": "v1", "verbs": ["get"]}]}))
    script.on("GET", "/apis/broken.example.com/v1")(lambda _: json_response(status(503, "ServiceUnavailable"), 503))

    for aggregated in (True, False):
        v2["on"] = aggregated
        async with AsyncDynamicClient(cfg(url, max_retries=0)) as dyn:
            deploy = await dyn.resource(api_version="apps/v1", kind="Deployment", namespace="default")
            assert dyn.discovery.aggregated is aggregated
            assert deploy.ref.plural == "deployments" and deploy.ref.namespaced
            assert deploy.info.subresources["scale"].group == "autoscaling"
            by_short = await dyn.resource(resource="deploy")
            assert by_short.ref == deploy.ref
            svc = await dyn.resource(api_version="v1", resource="svc")
            assert svc.ref.path("default", "x") == "/api/v1/namespaces/default/services/x"
            fetched = len(script.seen("GET", "/apis"))
            with pytest.raises(ResourceNotFound):
                await dyn.resource(api_version="apps/v1", kind="StatefulSet")
            assert len(script.seen("GET", "/apis")) == fetched + 1  # a miss refreshes once


def test_in_cluster_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.config import incluster_config

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("sa-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    config = Config.in_cluster()
    assert config.host == "https://10.96.0.1:443" and config.ca_file == str(ca)
    assert config.authorization is not None and config.authorization() == "bearer sa-token"
    assert not config.insecure_skip_tls_verify
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    from kubellm.client import ConfigError

    with pytest.raises(ConfigError):
        Config.in_cluster()
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(ConfigError):
        Config.load()


async def test_one_kept_alive_connection_serves_sequential_calls(server: tuple[str, Script]) -> None:
    url, script = server
    peers: set[Any] = set()

    def get(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        return json_response(llm("a", 1))

    script.on("GET", f"{LLMS}/a")(get)
    async with ClientSet(cfg(url)) as clients:
        for _ in range(20):
            await clients.model_v1alpha1.llmservices("ns").get("a")
        assert len(peers) == 1  # every sequential call on the same connection
        await asyncio.gather(*(clients.model_v1alpha1.llmservices("ns").get("a") for _ in range(5)))
    assert 1 < len(peers) <= 5  # concurrent calls open more, from the same pool
    assert len(script.requests) == 25
