"""The fault suite (issue #12, "Done when"): real processes, faults injected under load, then what must hold.

Setup: a three-member etcd cluster on loopback (TLS, client certificates) and two kubellm-apiserver processes on it
with every endpoint in `--etcd-servers`, sharing one install's keys (hack/gen-install.py: serving certificate,
client CA, EncryptionConfiguration), a small etcd deadline (2 s) and request deadline (5 s).

Load, on both servers at once: writers (create, update and delete LLMServices, every acknowledged write recorded
with its resourceVersion and content, and read back at once through the other server: a consistent read sees
it); watchers (one per server, from one starting resourceVersion, resumed from their last resourceVersion whenever
the stream ends or drops); a read-modify-write counter (GET, increment an annotation, PUT with the
resourceVersion, again on 409) spread over both servers.

Faults, in sequence while the load runs: SIGKILL etcd's leader, then restart it; SIGSTOP the member server a
uses for longer than the etcd deadline, then SIGCONT; SIGKILL one API server, then start it again; SIGSTOP two
members (no quorum: every request fails at its deadline), then SIGCONT.

Then: every acknowledged write is in etcd at its resourceVersion with its content, and the last one of each
object is its current state; each watch's events, resumed over every drop, are exactly etcd's own history of the
namespace (etcd's watch from the same revision: nothing lost, nothing twice, in order, same objects); no request
outlived its client deadline (a little over the server's request deadline); both servers are ready again and
acknowledge writes after the last fault; the
counter's value is its acknowledged increments (plus those whose answer was lost but that etcd shows applied,
each one found in etcd's history of the counter, which goes up by exactly one per revision). Last, etcd is
compacted: a watch from before is 410 on both servers, and one from a revision etcd has not reached is 504 Too
large resource version on both.

Waits are deadlines on polled conditions; the pauses between faults only let the load run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fault_cluster import APIServer, EtcdCluster, EtcdReader, Install, unb64

NS = "fault"
GROUP_PATH = "/apis/model.kubellm.io/v1alpha1"
LLMS = f"{GROUP_PATH}/namespaces/{NS}/llmservices"
PREFIX = f"/registry/model.kubellm.io/llmservices/{NS}/"
MARK = "fault.kubellm.io/write"
COUNT = "fault.kubellm.io/count"
ATTEMPT = "fault.kubellm.io/attempt"
COUNTER = "counter"
SENTINEL = "zz-sentinel"
MODEL = "Qwen/Qwen2.5-3B-Instruct"

ETCD_REQUEST_TIMEOUT = 2.0
REQUEST_TIMEOUT = 5.0
CLIENT_DEADLINE = REQUEST_TIMEOUT + 2.0
"""No request may take longer: the server answers by its request deadline (5 s), give or take a busy machine."""
STALL = 12.0
"""How long one etcd member is stopped: six etcd deadlines."""
QUORUM_STALL = 8.0
"""How long etcd has no quorum (two members stopped): four etcd deadlines."""

SERVER_FLAGS = ["--etcd-compaction-interval", "0", "--etcd-request-timeout", f"{ETCD_REQUEST_TIMEOUT:g}s",
                "--etcd-list-timeout", "3s", "--etcd-dial-timeout", "1s", "--etcd-healthcheck-timeout", "1s",
                "--etcd-watch-progress-interval", "2s", "--request-timeout", f"{REQUEST_TIMEOUT:g}s",
                "--log-format", "json"]

LOST = 0
"""A request whose answer never came (the connection dropped or was refused, the client deadline): it may have
been applied. Even a refused connection: aiohttp sends an idempotent request (PUT, DELETE) again once when its
kept-alive connection was closed, so a refusal can be the answer to a second try of a write the server applied
before it was killed."""


def llmservice(name: str, mark: str, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
            "metadata": {"name": name, "namespace": NS, "annotations": {MARK: mark, **annotations}},
            "spec": {"model": MODEL}}


def rv_of(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def mark_of(obj: dict[str, Any]) -> str:
    return str((obj["metadata"].get("annotations") or {}).get(MARK, ""))


def ambiguous(status: int) -> bool:
    """The write may or may not have been applied: no answer, or etcd's outcome unknown to the server."""
    return status == LOST or status >= 500


@dataclass
class Stats:
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    hung: list[str] = field(default_factory=list)
    slowest: float = 0.0


@dataclass(frozen=True)
class Ack:
    """An acknowledged write: `rv` 0 for a delete (its revision is not in the answer)."""

    name: str
    rv: int
    mark: str
    deleted: bool = False
    at: float = 0.0
    server: str = ""


@dataclass
class Ledger:
    acks: list[Ack] = field(default_factory=list)
    uncertain: dict[str, str] = field(default_factory=dict)
    """Objects whose last write has no answer: name → the content it would have set."""
    stale_reads: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    counter_acked: dict[str, int] = field(default_factory=dict)
    """Acknowledged increments: attempt → resourceVersion."""
    counter_uncertain: set[str] = field(default_factory=set)
    conflicts: int = 0


class Api:
    """One server's API, as a client sees it: every request under the client deadline, timed and counted."""

    def __init__(self, server: APIServer, install: Install, stats: Stats) -> None:
        self.server = server
        self.stats = stats
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=install.ssl_context("serving-ca", "admin"), limit=50))

    async def close(self) -> None:
        await self.session.close()

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        started = time.monotonic()
        self.stats.requests += 1
        status = LOST
        try:
            async with self.session.request(method, self.server.url + path, json=body,
                                            timeout=aiohttp.ClientTimeout(total=CLIENT_DEADLINE)) as r:
                status = r.status
                data = await r.read()
            try:
                return status, json.loads(data)
            except ValueError:
                return status, data.decode(errors="replace")
        except TimeoutError:
            self.stats.hung.append(f"{self.server.name} {method} {path}: no answer in {CLIENT_DEADLINE:g}s")
            return LOST, None
        except (aiohttp.ClientError, OSError):
            return LOST, None
        finally:
            took = time.monotonic() - started
            self.stats.slowest = max(self.stats.slowest, took)
            self.stats.statuses[f"{method} {status}"] += 1
            if took > CLIENT_DEADLINE:
                self.stats.hung.append(f"{self.server.name} {method} {path}: {took:.1f}s")


async def pause_after(status: int) -> None:
    if status == LOST or status >= 500:
        await asyncio.sleep(0.2)


async def writer(wid: str, api: Api, other: Api, ledger: Ledger, stop: asyncio.Event) -> None:
    """Objects `<wid>-<i>`: created, updated three times, every third one deleted; an object whose write has no
    certain answer is left as it is (its last content is recorded as uncertain) and the writer moves on."""

    async def read_back(name: str, rv: int) -> None:
        status, body = await other.request("GET", f"{LLMS}/{name}")
        if status == 200 and rv_of(body) < rv:
            ledger.stale_reads.append(f"{other.server.name} read {name} at {rv_of(body)} after {rv} was acked")
        elif status == 404:
            ledger.stale_reads.append(f"{other.server.name} did not find {name} acked at {rv}")

    for i in itertools.count():
        if stop.is_set():
            return
        name = f"{wid}-{i}"
        mark = f"{name}/0"
        status, body = await api.request("POST", LLMS, llmservice(name, mark))
        if status != 201:
            if ambiguous(status):
                ledger.uncertain[name] = mark
            else:
                ledger.unexpected.append(f"create {name}: {status} {body}")
            await pause_after(status)
            continue
        ledger.acks.append(Ack(name, rv_of(body), mark, at=time.monotonic(), server=api.server.name))
        await read_back(name, rv_of(body))
        current = body
        for k in range(1, 4):
            mark = f"{name}/{k}"
            current["metadata"]["annotations"][MARK] = mark
            status, body = await api.request("PUT", f"{LLMS}/{name}", current)
            if status != 200:
                break
            ledger.acks.append(Ack(name, rv_of(body), mark, at=time.monotonic(), server=api.server.name))
            await read_back(name, rv_of(body))
            current = body
        else:
            if i % 3 == 0:
                mark = ""
                status, body = await api.request(
                    "DELETE", f"{LLMS}/{name}",
                    {"preconditions": {"resourceVersion": current["metadata"]["resourceVersion"]}})
                if status == 200:
                    ledger.acks.append(Ack(name, 0, "", deleted=True, at=time.monotonic(),
                                           server=api.server.name))
                    continue
            else:
                continue
        if ambiguous(status):
            ledger.uncertain[name] = mark
        else:
            ledger.unexpected.append(f"write {name}: {status} {body}")
        await pause_after(status)


async def incrementer(wid: str, api: Api, ledger: Ledger, stop: asyncio.Event) -> None:
    for j in itertools.count():
        if stop.is_set():
            return
        status, obj = await api.request("GET", f"{LLMS}/{COUNTER}")
        if status != 200:
            await pause_after(status)
            continue
        annotations = obj["metadata"]["annotations"]
        attempt = f"{wid}-{j}"
        annotations[COUNT] = str(int(annotations[COUNT]) + 1)
        annotations[ATTEMPT] = attempt
        status, body = await api.request("PUT", f"{LLMS}/{COUNTER}", obj)
        if status == 200:
            ledger.counter_acked[attempt] = rv_of(body)
        elif status == 409:
            ledger.conflicts += 1
        elif ambiguous(status):
            ledger.counter_uncertain.add(attempt)
        else:
            ledger.unexpected.append(f"increment {attempt}: {status} {body}")
        await pause_after(status)


@dataclass
class Watch:
    """A watch of the namespace from `start`, resumed from its last resourceVersion (events and bookmarks) when
    its stream ends or drops, until the sentinel object comes."""

    api: Api
    start: int
    events: list[tuple[str, str, int, str]] = field(default_factory=list)
    streams: int = 0
    """Watch requests that started a stream: every one after the first resumed from the last resourceVersion."""
    refused: list[str] = field(default_factory=list)

    async def run(self) -> None:
        rv = self.start
        session = self.api.session
        while True:
            url = (f"{self.api.server.url}{LLMS}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}"
                   f"&timeoutSeconds=15")
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5,
                                                                          sock_read=30)) as r:
                    if r.status != 200:
                        self.refused.append(f"{r.status} {(await r.text())[:300]}")
                        await asyncio.sleep(0.2)
                        continue
                    self.streams += 1
                    async for line in r.content:
                        if not line.strip():
                            continue
                        ev = json.loads(line)
                        obj = ev["object"]
                        if ev["type"] == "ERROR":
                            self.refused.append(f"ERROR {obj}")
                            break
                        rv = rv_of(obj)
                        if ev["type"] == "BOOKMARK":
                            continue
                        self.events.append((ev["type"], obj["metadata"]["name"], rv, mark_of(obj)))
                        if obj["metadata"]["name"] == SENTINEL:
                            return
            except (aiohttp.ClientError, OSError, TimeoutError):
                await asyncio.sleep(0.2)


async def until(what: str, check: Callable[[], Any], timeout: float) -> None:
    """Poll the blocking `check` (in a thread, so the load keeps running) until it is true."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g}s"
        await asyncio.sleep(0.2)


async def until_async(what: str, check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g}s"
        await asyncio.sleep(0.2)


async def watch_start(api: Api, resource_version: int) -> tuple[int, Any, str]:
    """How a watch from `resource_version` starts: its HTTP status and Status, or the first event's Status when
    the stream starts with an ERROR event (then its code); and which of the two it was."""
    url = f"{api.server.url}{LLMS}?watch=1&resourceVersion={resource_version}&timeoutSeconds=5"
    async with api.session.get(url, timeout=aiohttp.ClientTimeout(total=CLIENT_DEADLINE)) as r:
        if r.status != 200:
            return r.status, await r.json(content_type=None), "response"
        line = await r.content.readline()
        event = json.loads(line) if line.strip() else {}
        if event.get("type") == "ERROR":
            return int(event["object"]["code"]), event["object"], "ERROR event"
        return 200, event, "stream"


async def initial_state_has(api: Api, name: str) -> bool:
    """Whether a watch from resourceVersion 0 starts with `name` among its ADDED events (they come at once; nothing
    is written meanwhile, so the object is in them or never comes)."""
    url = f"{api.server.url}{LLMS}?watch=1&resourceVersion=0&timeoutSeconds=5"
    async with api.session.get(url, timeout=aiohttp.ClientTimeout(total=CLIENT_DEADLINE)) as r:
        assert r.status == 200, await r.text()
        async for line in r.content:
            if line.strip() and json.loads(line)["object"]["metadata"].get("name") == name:
                return True
    return False


def etcd_event(ev: dict[str, Any]) -> tuple[str, str, int, str]:
    kv = ev["kv"]
    name = unb64(kv["key"]).removeprefix(PREFIX)
    rev = int(kv["mod_revision"])
    if ev.get("type") == "DELETE":  # a watch's DELETED event carries the last state, at the deletion's revision
        return "DELETED", name, rev, mark_of(json.loads(unb64(ev["prev_kv"]["value"])))
    obj = json.loads(unb64(kv["value"]))
    kind = "ADDED" if kv["create_revision"] == kv["mod_revision"] else "MODIFIED"
    return kind, name, rev, mark_of(obj)


def first_difference(got: list[Any], want: list[Any]) -> str:
    for i, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"at {i}: watch {a}, etcd {b}; before: {got[max(0, i - 3):i]}"
    return f"lengths: watch {len(got)}, etcd {len(want)}; tails {got[-3:]} / {want[-3:]}"


@pytest.mark.fault
async def test_acknowledged_writes_watches_and_a_counter_survive_etcd_and_apiserver_faults(tmp_path: Path) -> None:
    began = time.monotonic()
    install = Install.generate(tmp_path / "install")
    etcd = EtcdCluster(tmp_path / "etcd", install)
    await asyncio.to_thread(etcd.start)
    shared = ["--etcd-servers", etcd.endpoints, "--etcd-cafile", str(install.pki("etcd-ca.crt")),
              "--etcd-certfile", str(install.pki("etcd-client.crt")),
              "--etcd-keyfile", str(install.pki("etcd-client.key")),
              "--tls-cert-file", str(install.pki("apiserver.crt")),
              "--tls-private-key-file", str(install.pki("apiserver.key")),
              "--client-ca-file", str(install.pki("client-ca.crt")),
              "--encryption-provider-config", str(install.encryption_config), *SERVER_FLAGS]
    servers = [APIServer(n, tmp_path / f"server-{n}", shared, install.pki("serving-ca.crt")) for n in ("a", "b")]
    stats = Stats()
    ledger = Ledger()
    apis: list[Api] = []
    reader = EtcdReader(etcd)
    tasks: list[asyncio.Task[None]] = []
    try:
        for s in servers:
            s.start()
        for s in servers:
            await until(f"server {s.name} ready", s.ready, 90)
        apis = [Api(s, install, stats) for s in servers]
        a, b = apis
        status, body = await a.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                                      "metadata": {"name": NS}})
        assert status == 201, body
        status, body = await b.request("POST", LLMS, llmservice(COUNTER, "", **{COUNT: "0", ATTEMPT: ""}))
        assert status == 201, body
        counter_created = rv_of(body)
        status, listed = await a.request("GET", LLMS)
        assert status == 200, listed
        start = int(listed["metadata"]["resourceVersion"])
        setup_took = time.monotonic() - began

        stop = asyncio.Event()
        watches = [Watch(api, start) for api in apis]
        watching = [asyncio.create_task(w.run()) for w in watches]
        tasks += watching
        load = [asyncio.create_task(writer(f"w{api.server.name}{n}", api, apis[1 - i], ledger, stop))
                for i, api in enumerate(apis) for n in range(2)]
        load += [asyncio.create_task(incrementer(f"c{api.server.name}{n}", api, ledger, stop))
                 for api in apis for n in range(2)]
        tasks += load

        async def run_load(seconds: float) -> None:
            await asyncio.sleep(seconds)  # the load runs; nothing is decided by this pause
            for t in load:
                if t.done():
                    t.result()  # a crashed load task fails the test with its own traceback

        async def both_ready() -> None:
            for s in servers:
                await until(f"server {s.name} ready again", s.ready, 60)

        await run_load(4)
        # 1. kill -9 etcd's leader, then restart it
        leader = await asyncio.to_thread(etcd.leader)
        faults = [f"killed leader {leader.name}"]
        leader.kill()
        await run_load(4)
        etcd.restart(leader)
        await until(f"etcd {leader.name} back", lambda: etcd._alive(leader) and leader.healthy(etcd.ctx), 60)
        await run_load(3)
        # 2. stall the member server a's calls go to (b's too, most often), longer than the etcd deadline
        on = [s.etcd_endpoint(etcd.endpoints.split(",")) for s in servers]
        stalled = next(m for m in etcd.members if m.endpoint == on[0])
        faults.append(f"stalled {stalled.name} ({'both servers' if on[0] == on[1] else 'server a'} on it)")
        stalled.signal(signal.SIGSTOP)
        stall = (time.monotonic(), time.monotonic() + STALL)
        await run_load(STALL)
        stalled.signal(signal.SIGCONT)
        await until(f"etcd {stalled.name} healthy after the stall", lambda: stalled.healthy(etcd.ctx), 60)
        await both_ready()
        await run_load(3)
        # 3. kill -9 one API server, then start it again (what its supervisor does)
        killed = servers[0]
        killed.kill()
        await run_load(3)
        killed.start()
        await until("server a ready after its restart", killed.ready, 90)
        await run_load(3)
        # 4. no quorum: two members stalled; every request fails at its deadline, then all is well by itself
        quorum = etcd.members[1:]
        faults.append(f"stalled {', '.join(m.name for m in quorum)} (no quorum)")
        for m in quorum:
            m.signal(signal.SIGSTOP)
        await run_load(QUORUM_STALL)
        for m in quorum:
            m.signal(signal.SIGCONT)
        for m in quorum:
            await until(f"etcd {m.name} healthy after the stall", lambda m=m: m.healthy(etcd.ctx), 60)
        await both_ready()
        recovered = time.monotonic()
        await run_load(4)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*load), 60)
        load_ended = time.monotonic()

        # every server ready again, nobody having touched them
        await both_ready()
        status, body = await b.request("POST", LLMS, llmservice(SENTINEL, "end"))
        assert status == 201, body
        end = rv_of(body)
        await asyncio.wait_for(asyncio.gather(*watching), 60)
        # what was just written on b is there for reads that promise it, on both servers: a get and a list not
        # older than its resourceVersion, and a watch from 0 (its initial state is as new as etcd's revision)
        for api in apis:
            status, got = await api.request("GET", f"{LLMS}/{SENTINEL}?resourceVersion={end}")
            assert status == 200 and rv_of(got) == end, (api.server.name, status, got)
            status, listed = await api.request("GET", f"{LLMS}?resourceVersion={end}")
            assert status == 200 and SENTINEL in {o["metadata"]["name"] for o in listed["items"]}, api.server.name
            assert int(listed["metadata"]["resourceVersion"]) >= end, listed["metadata"]
            assert await initial_state_has(api, SENTINEL), api.server.name

        # --- what etcd holds ---------------------------------------------------------------------------
        history = [etcd_event(ev) async for ev in reader.history(PREFIX, start, end)]
        assert history[-1][1] == SENTINEL, history[-3:]

        # every acknowledged write is in etcd at its revision with its content
        missing = []
        for ack in ledger.acks:
            if ack.deleted:
                continue
            kv = await reader.get(PREFIX + ack.name, ack.rv)
            if kv is None or int(kv["mod_revision"]) != ack.rv or mark_of(json.loads(unb64(kv["value"]))) != ack.mark:
                missing.append((ack, kv and (kv["mod_revision"], unb64(kv["value"])[:200])))
        assert not missing, missing[:5]
        deletes = {(name, "DELETED") for kind, name, _, _ in history if kind == "DELETED"}
        assert {(ack.name, "DELETED") for ack in ledger.acks if ack.deleted} <= deletes
        # and the last acknowledged write of each object is its current state (unless a later write of it has
        # no certain answer: then it is that one or the acknowledged one)
        last: dict[str, Ack] = {}
        for ack in ledger.acks:
            last[ack.name] = ack
        current = {name: mark_of(json.loads(unb64(kv["value"]))) for name, kv in
                   [(k.removeprefix(PREFIX), await reader.get(k)) for k in await reader.keys(PREFIX)] if kv}
        wrong = []
        for name, ack in last.items():
            now = current.get(name, "")
            allowed = {"" if ack.deleted else ack.mark}
            if name in ledger.uncertain:
                allowed.add(ledger.uncertain[name])
            if now not in allowed:
                wrong.append((name, now, allowed))
        assert not wrong, wrong[:5]
        took_anyway = sum(1 for name, mark in ledger.uncertain.items() if current.get(name, "") == mark)

        # a consistent list on either server is etcd's current state
        for api in apis:
            status, listed = await api.request("GET", LLMS)
            assert status == 200, listed
            seen = {o["metadata"]["name"]: mark_of(o) for o in listed["items"]}
            assert seen == current, api.server.name

        # --- watches: exactly etcd's history, across every resume --------------------------------------
        for w in watches:
            assert w.events == history, f"server {w.api.server.name}: {first_difference(w.events, history)}"
            assert not w.refused, w.refused[:5]

        # --- the counter -------------------------------------------------------------------------------
        kv = await reader.get(PREFIX + COUNTER)
        assert kv is not None
        value = int(json.loads(unb64(kv["value"]))["metadata"]["annotations"][COUNT])
        applied = []
        async for ev in reader.history(PREFIX + COUNTER, counter_created, int(kv["mod_revision"])):
            if value == 0:
                break
            annotations = json.loads(unb64(ev["kv"]["value"]))["metadata"]["annotations"]
            applied.append((int(annotations[COUNT]), annotations[ATTEMPT], int(ev["kv"]["mod_revision"])))
        assert [n for n, _, _ in applied] == list(range(1, value + 1)), "the counter skipped or repeated a value"
        attempts = {attempt: rev for _, attempt, rev in applied}
        assert len(attempts) == value
        lost = {a: rev for a, rev in ledger.counter_acked.items() if attempts.get(a) != rev}
        assert not lost, f"acknowledged increments not in etcd at their revision: {lost}"
        unknown = set(attempts) - set(ledger.counter_acked) - ledger.counter_uncertain
        assert not unknown, f"increments nobody made: {unknown}"
        applied_uncertain = set(attempts) & ledger.counter_uncertain
        assert value == len(ledger.counter_acked) + len(applied_uncertain)

        # --- deadlines, cross-server reads, progress, logs ---------------------------------------------------
        assert not stats.hung, stats.hung[:10]
        assert not ledger.stale_reads, ledger.stale_reads[:5]
        assert not ledger.unexpected, ledger.unexpected[:5]
        during_stall = [ack for ack in ledger.acks if stall[0] + 2 * ETCD_REQUEST_TIMEOUT < ack.at < stall[1]]
        assert during_stall, "no write was acknowledged while one etcd member was stalled (no failover)"
        for s in servers:
            assert any(ack.server == s.name and ack.at > recovered for ack in ledger.acks), s.name
            assert not s.errors(), s.errors()[:5]

        # --- compaction and the future, on both servers ------------------------------------------------
        revision = await reader.revision()
        await reader.compact(revision)
        answers = []
        for api in apis:
            status, body, via = await watch_start(api, start)
            # as kube-apiserver answers it: the stream starts, its first event is an ERROR with 410 Expired
            assert (status, body["reason"], via) == (410, "Expired", "ERROR event"), (api.server.name, status, body)
            answers.append(f"{api.server.name}: compacted {status} {body['reason']} ({via})")
            future = revision + 100_000
            status, body, via = await watch_start(api, future)
            assert status == 504 and body["message"].startswith(f"Too large resource version: {future}"), (
                api.server.name, status, body)
            assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge", body
            answers.append(f"{api.server.name}: future {status} ({via})")
            # so is a get or a list from the future: not the older state of now
            for path in (f"{LLMS}/{COUNTER}", LLMS):
                status, body = await api.request("GET", f"{path}?resourceVersion={future}")
                assert status == 504 and body["message"].startswith(f"Too large resource version: {future}"), (
                    api.server.name, path, status, body)

        print(f"\nfault suite: {faults}; setup {setup_took:.1f}s, load {load_ended - began - setup_took:.1f}s, "
              f"total {time.monotonic() - began:.1f}s; requests {stats.requests} (slowest {stats.slowest:.2f}s), "
              f"{dict(sorted(stats.statuses.items()))}; acknowledged writes {len(ledger.acks)} "
              f"({len(during_stall)} during the stall), unanswered {len(ledger.uncertain)} ({took_anyway} of them "
              f"applied); history events {len(history)}, watches resumed {[w.streams - 1 for w in watches]} times; "
              f"counter {value} = "
              f"{len(ledger.counter_acked)} acknowledged + {len(applied_uncertain)} unanswered but applied "
              f"(of {len(ledger.counter_uncertain)} unanswered), {ledger.conflicts} conflicts retried; {answers}")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for api in apis:
            await api.close()
        await reader.close()
        for s in servers:
            s.stop()
        etcd.stop()
