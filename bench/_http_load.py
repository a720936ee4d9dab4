"""Load generator for bench/http_bench.py: HTTPS traffic to KubeLLM and bare traffic to etcd's gateway.

It runs in its own process (spawned by http_bench.py, driven over a pipe) or in the benchmark's own
process (`--in-process`). Every measurement brackets exactly the measured interval with CPU readings
of three processes: the API server and etcd (utime+stime from /proc/<pid>/stat) and this process
(`time.process_time()`), so each side's CPU per operation is reported separately.

Everything talks to 127.0.0.1 only. Only aiohttp and orjson are imported (not kubellm), so the load
process stays small.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import os
import signal
import ssl
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import orjson
from samples import llmservice

CLK_TCK = os.sysconf("SC_CLK_TCK")
GROUP_VERSION = "model.kubellm.io/v1alpha1"
RESOURCE = "llmservices"
ETCD_RESOURCE_PREFIX = "/registry/model.kubellm.io/llmservices/"
RAW_PREFIX = "/rawbench/"  # outside the server's /registry prefix: its watches never see raw traffic
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"
USER_AGENT = "kubellm-http-bench/1.0"


def process_tree(pid: int) -> list[int]:
    """A process and its descendants alive now (a server with --workers: the supervisor and its workers)."""
    pids, i = [pid], 0
    while i < len(pids):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pids[i]}/task"):
                with open(f"/proc/{pids[i]}/task/{task}/children") as f:
                    pids += [int(c) for c in f.read().split()]
        i += 1
    return pids


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a process and its descendants (alive ones, and those it has
    waited for), from /proc/<pid>/stat."""
    total = 0.0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue  # exited between the listing and now
        fields = data[data.rindex(b")") + 2:].split()  # fields[0] is field 3 (state): utime is 14, stime 15
        total += sum(int(v) for v in fields[11:15]) / CLK_TCK  # utime, stime, cutime, cstime
    return total


def die_with_parent() -> None:
    """Ask the kernel to SIGTERM this process when its parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def sample(name: str, namespace: str) -> dict[str, Any]:
    return llmservice(name, namespace)


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    url: str  # https://127.0.0.1:<port>
    ca_file: str
    cert_file: str
    key_file: str
    etcd: str  # http://127.0.0.1:<port>
    server_pid: int
    etcd_pid: int
    concurrency: int


def host_jiffies() -> tuple[int, int]:
    """The whole machine's (busy, total) CPU time in clock ticks since boot, from /proc/stat (idle and
    iowait are not busy)."""
    with open("/proc/stat", "rb") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - fields[3] - fields[4], total


class Meter:
    """CPU of server, etcd and this process, the machine's busy and total CPU, and wall time, at one instant."""

    __slots__ = ("client", "etcd", "host_busy", "host_total", "server", "wall")

    def __init__(self, target: Target) -> None:
        self.wall = time.perf_counter()
        self.client = time.process_time()
        self.server = proc_cpu(target.server_pid)
        self.etcd = proc_cpu(target.etcd_pid)
        self.host_busy, self.host_total = host_jiffies()

    def since(self, start: Meter) -> dict[str, float]:
        return {"wall": self.wall - start.wall, "client_cpu": self.client - start.client,
                "server_cpu": self.server - start.server, "etcd_cpu": self.etcd - start.etcd,
                "host_busy": self.host_busy - start.host_busy, "host_total": self.host_total - start.host_total}


class LoadGen:
    def __init__(self, target: Target) -> None:
        self.t = target
        self.api = f"{target.url}/apis/{GROUP_VERSION}"
        self.ssl = ssl.create_default_context(cafile=target.ca_file)
        self.ssl.load_cert_chain(target.cert_file, target.key_file)
        self.session: aiohttp.ClientSession | None = None
        self.raw_session: aiohttp.ClientSession | None = None
        self.latest: dict[tuple[int, int], dict[str, Any]] = {}  # object after the last write, for PUT

    # ----- plumbing ---------------------------------------------------------------------------------

    async def start(self) -> None:
        c = self.t.concurrency
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=c, ssl=self.ssl, keepalive_timeout=300),
            timeout=aiohttp.ClientTimeout(total=600), headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.raw_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=c, keepalive_timeout=300), timeout=aiohttp.ClientTimeout(total=120),
            headers={"Content-Type": "application/json"})

    async def close(self) -> None:
        for s in (self.session, self.raw_session):
            if s is not None:
                await s.close()
        self.session = self.raw_session = None

    def objects(self, ns: str, name: str = "") -> str:
        base = f"{self.api}/namespaces/{ns}/{RESOURCE}"
        return f"{base}/{name}" if name else base

    async def request(self, method: str, url: str, *, body: Any = None, content_type: str = "application/json",
                      params: dict[str, str] | None = None, accept: str | None = None, expect: int = 200) -> Any:
        assert self.session is not None
        headers = {}
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        async with self.session.request(method, url, data=data, params=params, headers=headers) as r:
            raw = await r.read()
            if r.status != expect:
                raise BenchError(f"{method} {r.url} -> {r.status}: {raw[:300]!r}")
        return orjson.loads(raw)

    async def request_raw(self, url: str, params: dict[str, str] | None = None,
                          accept: str | None = None) -> bytes:
        """GET and return the body unparsed (for timing LIST to the last byte)."""
        assert self.session is not None
        headers = {"Accept": accept} if accept else None
        async with self.session.get(url, params=params, headers=headers) as r:
            raw = await r.read()
            if r.status != 200:
                raise BenchError(f"GET {r.url} -> {r.status}: {raw[:300]!r}")
        return raw

    async def etcd_call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.raw_session is not None
        async with self.raw_session.post(f"{self.t.etcd}/v3{method}", data=orjson.dumps(payload)) as r:
            raw = await r.read()
            if r.status != 200:
                raise BenchError(f"etcd {method} -> {r.status}: {raw[:300]!r}")
        out: dict[str, Any] = orjson.loads(raw)
        return out

    async def _measure(self, n: int, op: Callable[[int], Awaitable[None]], concurrency: int,
                       timeout: float) -> dict[str, Any]:
        lat: list[float] = []
        errs: list[str] = []
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                t = time.perf_counter()
                try:
                    await op(i)
                except Exception as exc:  # counted and reported, never silently dropped
                    errs.append(f"{type(exc).__name__}: {exc}"[:400])
                    continue
                lat.append(time.perf_counter() - t)

        start = Meter(self.t)
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout)
        out: dict[str, Any] = Meter(self.t).since(start)
        out.update(n=n, ok=len(lat), errors=len(errs), first_error=errs[0] if errs else "", lat=lat)
        return out

    # ----- per-request operations -------------------------------------------------------------------

    async def run(self, op: str, n: int, rnd: int, ns: str = "bench", concurrency: int = 0,
                  timeout: float = 600) -> dict[str, Any]:
        """Measure `n` requests of one kind at the configured concurrency; objects are o-<rnd>-<i>."""
        fn: Callable[[int], Awaitable[None]]

        if op == "raw put":
            async def fn(i: int) -> None:
                await self.etcd_call("/kv/put", {"key": b64(f"{RAW_PREFIX}put/{rnd}/{i}"),
                                                 "value": b64(orjson.dumps(sample(f"o-{rnd}-{i}", ns)))})
        elif op == "raw txn create":
            async def fn(i: int) -> None:
                k = b64(f"{RAW_PREFIX}txn/{rnd}/{i}")
                resp = await self.etcd_call("/kv/txn", {
                    "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
                    "success": [{"request_put": {"key": k, "value": b64(orjson.dumps(sample(f"o-{rnd}-{i}", ns)))}}]})
                if not resp.get("succeeded"):
                    raise BenchError("raw txn create: key exists")
        elif op == "raw range":
            async def fn(i: int) -> None:
                resp = await self.etcd_call("/kv/range", {"key": b64(f"{RAW_PREFIX}txn/{rnd}/{i}")})
                if not resp.get("kvs"):
                    raise BenchError("raw range: key not found")
        elif op == "create":
            async def fn(i: int) -> None:
                await self.request("POST", self.objects(ns), body=sample(f"o-{rnd}-{i}", ns), expect=201)
        elif op == "get":
            async def fn(i: int) -> None:
                await self.request("GET", self.objects(ns, f"o-{rnd}-{i}"))
        elif op == "get rv=0":
            params = {"resourceVersion": "0"}

            async def fn(i: int) -> None:
                await self.request("GET", self.objects(ns, f"o-{rnd}-{i}"), params=params)
        elif op == "merge patch":
            async def fn(i: int) -> None:
                self.latest[(rnd, i)] = await self.request(
                    "PATCH", self.objects(ns, f"o-{rnd}-{i}"), body={"spec": {"replicas": 3}},
                    content_type="application/merge-patch+json")
        elif op == "update":
            async def fn(i: int) -> None:
                obj = self.latest.pop((rnd, i), None)
                if obj is None:  # no earlier patch: read it, as a client would
                    obj = await self.request("GET", self.objects(ns, f"o-{rnd}-{i}"))
                obj["spec"]["replicas"] = 4  # carries metadata.resourceVersion: an optimistic-locked replace
                await self.request("PUT", self.objects(ns, f"o-{rnd}-{i}"), body=obj)
        else:
            raise ValueError(f"unknown operation {op!r}")
        return await self._measure(n, fn, concurrency or self.t.concurrency, timeout)

    async def fill(self, ns: str, count: int, timeout: float = 1200) -> dict[str, Any]:
        """Create `count` objects l-<i> in `ns` (for LIST); measured like any create."""
        async def fn(i: int) -> None:
            await self.request("POST", self.objects(ns), body=sample(f"l-{i:06d}", ns), expect=201)
        return await self._measure(count, fn, self.t.concurrency, timeout)

    # ----- LIST -------------------------------------------------------------------------------------

    async def list_once(self, ns: str, mode: str, page: int = 500, timeout: float = 300) -> dict[str, Any]:
        """One LIST of the namespace; wall time to the last byte of the last page. Returns items and bytes.

        modes: "list" (consistent), "list rv=0", "list table", "list paged" (limit/continue walk),
        "raw range" (bare etcd range of the same keys, values left encoded, as the raw baseline)."""
        items = 0
        size = 0
        start = Meter(self.t)
        if mode in ("list", "list rv=0", "list table"):
            params = {"resourceVersion": "0"} if mode == "list rv=0" else None
            raw = await asyncio.wait_for(self.request_raw(self.objects(ns), params=params,
                                                          accept=TABLE_ACCEPT if mode == "list table" else None),
                                         timeout)
            end = Meter(self.t)
            size = len(raw)
            doc = orjson.loads(raw)
            items = len(doc["rows"] if mode == "list table" else doc["items"])
        elif mode == "list paged":
            cont = ""
            pages = 0
            while True:
                params = {"limit": str(page)}
                if cont:
                    params["continue"] = cont
                raw = await asyncio.wait_for(self.request_raw(self.objects(ns), params=params), timeout)
                size += len(raw)
                doc = orjson.loads(raw)
                items += len(doc["items"])
                pages += 1
                cont = doc["metadata"].get("continue", "")
                if not cont:
                    break
            end = Meter(self.t)
        elif mode == "raw range":
            prefix = f"{ETCD_RESOURCE_PREFIX}{ns}/"
            assert self.raw_session is not None
            async with self.raw_session.post(f"{self.t.etcd}/v3/kv/range", data=orjson.dumps(
                    {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})) as r:
                raw = await r.read()
            end = Meter(self.t)
            doc = orjson.loads(raw)
            size = len(raw)
            items = len(doc.get("kvs") or [])
        else:
            raise ValueError(f"unknown list mode {mode!r}")
        out: dict[str, Any] = end.since(start)
        out.update(n=1, ok=1, errors=0, first_error="", lat=[out["wall"]], items=items, bytes=size)
        return out

    # ----- watch fan-out ----------------------------------------------------------------------------

    async def watch_fanout(self, ns: str, watchers: int, events: int, deliver_timeout: float = 5.0,
                           timeout: float = 600) -> dict[str, Any]:
        """`watchers` streaming watches (one connection each) and `events` sequential merge patches.

        Each write waits until every watcher has its event (or `deliver_timeout`) before the next, so a
        delay is one event's fan-out, not a queue. A watcher stamps each chunk on arrival and parses later;
        the delay of a (watcher, event) pair is arrival of the event's last byte minus the moment the
        writer had read the PATCH response."""
        name = "w-0"
        created = await self.request("POST", self.objects(ns), body=sample(name, ns), expect=201)
        rv0 = created["metadata"]["resourceVersion"]
        wsession = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=self.ssl, force_close=True),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=30),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
        chunks: list[list[tuple[float, bytes]]] = [[] for _ in range(watchers)]
        lines = [0] * watchers
        state = {"total": 0, "want": 0}
        progressed = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []

        async def open_watch(w: int) -> aiohttp.ClientResponse:
            resp = await wsession.get(self.objects(ns), params={"watch": "true", "resourceVersion": rv0})
            if resp.status != 200:
                body = await resp.read()
                raise BenchError(f"watch {w} -> {resp.status}: {body[:300]!r}")
            return resp

        async def read(w: int, resp: aiohttp.ClientResponse) -> None:
            mine = chunks[w]
            content = resp.content
            while True:
                chunk = await content.readany()
                t = time.perf_counter()
                if not chunk:
                    return
                mine.append((t, chunk))
                nl = chunk.count(b"\n")
                if nl:
                    lines[w] += nl
                    state["total"] += nl
                    if state["total"] >= state["want"]:
                        progressed.set()

        writes: list[tuple[str, float]] = []
        stalls = 0
        try:
            # Headers arrive only after the server's etcd watch is established (store.watch awaits it).
            responses = await asyncio.wait_for(asyncio.gather(*(open_watch(w) for w in range(watchers))), 120)
            tasks = [asyncio.create_task(read(w, r)) for w, r in enumerate(responses)]
            await asyncio.sleep(0.2)
            url = self.objects(ns, name)
            start = Meter(self.t)
            deadline = time.monotonic() + timeout
            for k in range(events):
                if time.monotonic() > deadline:
                    raise BenchError(f"watch fan-out did not finish in {timeout}s")
                progressed.clear()
                state["want"] = watchers * (k + 1)
                obj = await self.request("PATCH", url, body={"spec": {"replicas": k % 7 + 1}},
                                         content_type="application/merge-patch+json")
                t_ret = time.perf_counter()
                writes.append((obj["metadata"]["resourceVersion"], t_ret))
                while state["total"] < state["want"]:
                    try:
                        await asyncio.wait_for(progressed.wait(), deliver_timeout)
                    except TimeoutError:
                        stalls += 1
                        break
                    progressed.clear()
            end = Meter(self.t)
            await asyncio.sleep(0.5)  # late events still count as delivered (with their delay), not missed
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            await wsession.close()
        # The server's watch handlers notice a closed client only when they next write: one more change
        # lets them end now instead of holding their etcd watches (and delaying the server's shutdown).
        with contextlib.suppress(Exception):
            await self.request("PATCH", self.objects(ns, name), body={"spec": {"replicas": 0}},
                               content_type="application/merge-patch+json")

        delays: list[float] = []
        last: list[float] = [float("-inf")] * len(writes)  # per event: the delay of its last watcher
        missed = 0
        unexpected = 0
        for w in range(watchers):
            got: dict[str, float] = {}
            buf = b""
            for t, chunk in chunks[w]:
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    ev = orjson.loads(line)
                    if ev.get("type") != "MODIFIED":
                        unexpected += 1
                        continue
                    got[ev["object"]["metadata"]["resourceVersion"]] = t
            for k, (rv, t_ret) in enumerate(writes):
                if rv in got:
                    delays.append(got.pop(rv) - t_ret)
                    last[k] = max(last[k], delays[-1])
                else:
                    missed += 1
            unexpected += len(got)
        out: dict[str, Any] = end.since(start)
        out.update(n=len(writes), watchers=watchers, deliveries=len(delays), missed=missed, unexpected=unexpected,
                   stalls=stalls, delays=delays, last=[x for x in last if x != float("-inf")])
        return out


def child_main(conn: Connection, target: Target) -> None:
    """The load process: run LoadGen methods sent as (name, kwargs) until "exit" or EOF."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    loop = asyncio.new_event_loop()
    gen = LoadGen(target)
    try:
        loop.run_until_complete(gen.start())
        while True:
            try:
                method, kwargs = conn.recv()
            except (EOFError, OSError):
                break
            if method == "exit":
                break
            try:
                value = loop.run_until_complete(getattr(gen, method)(**kwargs))
                conn.send(("ok", value))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(gen.close())
        loop.close()
