"""LLMService controller benchmark: N LLMServices (1 replica, 1 GPU each) placed on member GPU clusters by a real
kubellm-controller-manager, measured in one run until every one is Serving.

Starts, all as child processes on loopback (kubellm.devcluster):
  - --members member clusters (default 4: ten control planes do not fit a 2-core machine, see bench/RESULTS.md),
    each a real etcd + kube-apiserver + kube-controller-manager + kube-scheduler and the node simulator
    (kubellm-nodesim) playing the kubelet and the GPUs (pods Ready --ready-delay seconds after they run), with
    enough GPU nodes of --gpus-per-node GPUs for its share of the replicas plus --headroom;
  - a kubellm-apiserver (its embedded etcd), the members registered as Clusters;
  - kubellm-controller-manager with its defaults (--manager-arg adds flags).

Then, in order:
  1. the API's update-rate baseline, before the manager runs, from one client (this process): --llms LLMServices
     created in a namespace of their own, merge patches of a label on each at the controller's concurrency
     (--workers) and at 32, server-side applies of their status (what the controller writes) at --workers; then
     deleted;
  2. the manager started, the Clusters Ready with their GPU inventory, --idle-seconds of CPU with nothing to do;
  3. the run: --llms LLMServices created (--create-concurrency) while a watch (a dynamic informer in this
     process) records when each first shows `status.phase == Serving`; the run ends when all do (or --timeout
     seconds after the first create). By default each LLMService names one member in
     `spec.placement.clusterAffinity.clusterNames`, round-robin (`--placement spread`); `--placement default`
     leaves the choice to the controller. Measured meanwhile: the manager's reconciles, queue and reconcile
     times (its /metrics), its CPU (utime+stime from /proc) and RSS (sampled each second, and VmHWM), the CPU
     of every other process by component and of the whole machine (/proc/stat: other work on the machine shows
     as "everything else"), KubeLLM's and the members' kube-apiservers' requests by verb and resource
     (`apiserver_request_total`), and the Clusters' Ready transitions;
  4. --steady-seconds with everything Serving: the manager's reconcile rate and CPU when nothing changes.

    .venv/bin/python bench/controller_bench.py --llms 1000 --members 4
    .venv/bin/python bench/controller_bench.py --llms 1000 --members 4 --manager-arg=--concurrent-syncs=llmservice=16 \
        --manager-arg=--kube-api-qps=100 --manager-arg=--kube-api-burst=200
    .venv/bin/python bench/controller_bench.py --llms 1000 --members 4 --trace /tmp/trace.json    # where time goes
    .venv/bin/python bench/controller_bench.py --llms 1000 --members 4 --profile /tmp/cm.prof     # CPU hot spots

`--trace` runs the manager through a small wrapper (MANAGER_WRAPPER) that times every API call it makes (by
target, verb and resource, with the time spent in the client's rate limiter) and the reconciler's steps, and
prints them after the run; its overhead is a few microseconds per call. `--profile` runs it under cProfile on
CPU time (slower: for hot spots, not for the numbers). Every child dies with this process (PR_SET_PDEATHSIG) and
all are stopped at the end; `--keep` keeps the logs and the state directory (kept anyway when the run is not
complete).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _http_load import CLK_TCK, proc_cpu
from samples import llmservice

from kubellm.app.readiness import wait_until_ready
from kubellm.client import Config, EventHandlerFuncs, ResourceRef
from kubellm.client import errors as client_errors
from kubellm.client.dynamic import AsyncDynamicClient
from kubellm.client.informers import AsyncDynamicInformerFactory
from kubellm.client.rest.transport import Transport
from kubellm.devcluster import MemberCluster, MemberOptions, NodePool, Process, StartupError, wait_until
from kubellm.devcluster.binaries import ROOT

LLMS = ResourceRef("model.kubellm.io", "v1alpha1", "llmservices", "LLMService", True)
CLUSTERS = ResourceRef("cluster.kubellm.io", "v1alpha1", "clusters", "Cluster", False)
NAMESPACE = "bench"
BASELINE_NAMESPACE = "baseline"
RUN_LABEL = "kubellm.io/bench-run"
CONTROLLER = "llmservice"
FIELD_MANAGER = "kubellm-bench"
Obj = dict[str, Any]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def progress(msg: str) -> None:
    print(f"# {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def bench_llm(name: str, namespace: str, cluster: str | None) -> Obj:
    """bench/samples.py's LLMService with one replica of one GPU and no autoscaling, optionally pinned to a
    cluster."""
    obj = llmservice(name, namespace)
    obj["metadata"]["labels"][RUN_LABEL] = "1"
    spec = obj["spec"]
    spec.pop("autoscaling", None)
    spec["replicas"] = 1
    spec["resources"] = {"gpu": 1}
    if cluster:
        spec["placement"] = {"clusterAffinity": {"clusterNames": [cluster]}}
    return obj


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


# --- processes and /proc --------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, pids in groups.items():
        total = 0.0
        for pid in pids:
            with contextlib.suppress(OSError):
                total += proc_cpu(pid)
        out[name] = total
    return out


# --- metrics ---------------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str, prefixes: tuple[str, ...]) -> Samples:
    """The samples of Prometheus text whose names start with one of `prefixes`."""
    out: Samples = {}
    for line in text.splitlines():
        if not line.startswith(prefixes):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
        try:
            out[(m.group(1), labels)] = float(m.group(3))
        except ValueError:
            continue
    return out


def metric(samples: Samples, family: str, /, **want: str) -> float:
    """The sum of `family`'s samples whose labels include `want`."""
    total = 0.0
    for (n, labels), value in samples.items():
        if n == family and all(dict(labels).get(k) == v for k, v in want.items()):
            total += value
    return total


def by_labels(before: Samples, after: Samples, name: str, keys: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    """Deltas of `name` summed by the values of `keys`."""
    out: dict[tuple[str, ...], float] = defaultdict(float)
    for (n, labels), value in after.items():
        if n != name:
            continue
        d = dict(labels)
        out[tuple(d.get(k, "") for k in keys)] += value - before.get((n, labels), 0.0)
    return {k: v for k, v in out.items() if v}


MANAGER_PREFIXES = ("controller_runtime_", "workqueue_", "kubellm_events_dropped_total")
APISERVER_PREFIXES = ("apiserver_request_total{",)


def scrape_manager(url: str) -> Samples:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        return parse_metrics(r.read().decode(), MANAGER_PREFIXES)


async def scrape_api(transport: Transport) -> Samples:
    resp = await transport.request("GET", "/metrics", accept="text/plain", timeout=30)
    return parse_metrics(resp.body.decode(errors="replace"), APISERVER_PREFIXES)


# --- the API's update rate from one client ----------------------------------------------------------------------


async def drive(count: int, concurrency: int, op: Callable[[int], Awaitable[object]]) -> dict[str, float]:
    """`op(i)` for i in range(count) at `concurrency`: rate and latency."""
    items = iter(range(count))
    latencies: list[float] = []

    async def worker() -> None:
        for i in items:
            began = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return {"ops": count, "concurrency": concurrency, "rate": count / elapsed, "p50_ms": pct(latencies, 0.5) * 1000,
            "p99_ms": pct(latencies, 0.99) * 1000}


async def baseline(client: AsyncDynamicClient, count: int, workers: int) -> dict[str, dict[str, float]]:
    """What KubeLLM's API takes from one client, on `count` LLMServices of a namespace of their own."""
    llms = client.resource_for(LLMS, BASELINE_NAMESPACE)
    names = [f"base-{i:05d}" for i in range(count)]
    out: dict[str, dict[str, float]] = {}
    out["create (c=16)"] = await drive(count, 16, lambda i: llms.create(bench_llm(names[i], BASELINE_NAMESPACE, None)))
    out[f"merge patch of a label (c={workers})"] = await drive(
        count, workers, lambda i: llms.patch(names[i], {"metadata": {"labels": {"tick": "a"}}}))
    out["merge patch of a label (c=32)"] = await drive(
        count, 32, lambda i: llms.patch(names[i], {"metadata": {"labels": {"tick": "b"}}}))
    status = {"phase": "Pending", "message": "bench", "replicas": 1, "readyReplicas": 0}
    out[f"server-side apply of status (c={workers})"] = await drive(count, workers, lambda i: llms.apply(
        {"apiVersion": LLMS.api_version, "kind": "LLMService",
         "metadata": {"name": names[i], "namespace": BASELINE_NAMESPACE}, "status": status},
        field_manager=FIELD_MANAGER, force=True, subresource="status"))
    await llms.delete_collection(label_selector=f"{RUN_LABEL}=1")
    return out


# --- the run -------------------------------------------------------------------------------------------------


class Watcher:
    """When each LLMService of the run first showed each phase, from a dynamic informer."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.first: dict[str, dict[str, float]] = defaultdict(dict)
        self.serving: dict[str, float] = {}
        self.updates = 0
        self.done = asyncio.Event()

    def seen(self, obj: Obj) -> None:
        name = str(obj["metadata"]["name"])
        phase = str((obj.get("status") or {}).get("phase") or "")
        now = time.monotonic()
        self.first[name].setdefault(phase, now)
        if phase == "Serving" and name not in self.serving:
            self.serving[name] = now
            if len(self.serving) >= self.count:
                self.done.set()

    def handlers(self) -> EventHandlerFuncs[Obj]:
        def update(_old: Obj, new: Obj) -> None:
            self.updates += 1
            self.seen(new)

        return EventHandlerFuncs(add=self.seen, update=update)


async def wait_clusters(client: AsyncDynamicClient, names: list[str], gpus: int, timeout: float,
                        processes: tuple[Process, ...]) -> None:
    deadline = time.monotonic() + timeout
    clusters = client.resource_for(CLUSTERS)
    last = ""
    while time.monotonic() < deadline:
        for p in processes:
            p.check()
        ok = 0
        for name in names:
            c = await clusters.get(name)
            st = c.get("status") or {}
            ready = any(x.get("type") == "Ready" and x.get("status") == "True" for x in st.get("conditions") or [])
            free = sum(int(g.get("available") or 0) for g in st.get("gpus") or [])
            ok += ready and free >= gpus
            if not ready:
                last = f"{name}: {st.get('conditions')}"
        if ok == len(names):
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the Clusters were not Ready with {gpus} free GPUs each within {timeout}s: {last}")


async def run_phase(args: argparse.Namespace, config: Config, members: list[MemberCluster], manager: Process,
                    metrics_url: str, groups: dict[str, list[int]]) -> dict[str, Any]:
    r: dict[str, Any] = {}
    names = [m.name for m in members]
    per_member = math.ceil(args.llms / len(members))
    assert manager.pid is not None
    pid = manager.pid
    async with AsyncDynamicClient(config) as client:
        await wait_clusters(client, names, per_member if args.placement == "spread" else 1, 120, (manager,))
        progress("Clusters Ready with their GPUs")
        watcher = Watcher(args.llms)
        factory = AsyncDynamicInformerFactory(client.transport, namespace=NAMESPACE, label_selector=f"{RUN_LABEL}=1")
        factory.for_resource(LLMS).informer().add_event_handler(watcher.handlers())
        cluster_factory = AsyncDynamicInformerFactory(client.transport)
        readiness: dict[str, str] = {}
        transitions: list[tuple[float, str, str, str]] = []  # t, cluster, Ready status, reason

        def cluster_seen(obj: Obj) -> None:
            conditions = (obj.get("status") or {}).get("conditions") or []
            ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
            name, now = str(obj["metadata"]["name"]), str(ready.get("status"))
            if readiness.get(name, now) != now:
                transitions.append((time.monotonic(), name, now, str(ready.get("reason"))))
            readiness[name] = now

        cluster_factory.for_resource(CLUSTERS).informer().add_event_handler(
            EventHandlerFuncs(add=cluster_seen, update=lambda _old, new: cluster_seen(new)))
        factory.start()
        cluster_factory.start()
        await factory.wait_for_cache_sync(60)
        await cluster_factory.wait_for_cache_sync(60)
        if args.idle_seconds > 0:
            progress(f"{args.idle_seconds}s idle (the manager and members with no LLMService)")
            c0, b0 = cpu_snapshot(groups), machine_cpu()
            await asyncio.sleep(args.idle_seconds)
            c1, b1 = cpu_snapshot(groups), machine_cpu()
            r["idle"] = {"seconds": args.idle_seconds, "cpu": {k: c1[k] - c0[k] for k in c0},
                         "machine_busy_s": b1[0] - b0[0]}
        member_transports = [Transport(Config.from_kubeconfig(m.kubeconfig)) for m in members]
        kubellm_before = await scrape_api(client.transport)
        members_before = [await scrape_api(t) for t in member_transports]
        manager_before = await asyncio.to_thread(scrape_manager, metrics_url)
        r["manager_rss_before_mib"] = status_kib(pid, "VmRSS") / 1024
        cpu0, (busy0, total0) = cpu_snapshot(groups), machine_cpu()
        t0 = time.monotonic()
        timeline: list[tuple[float, float, int, float]] = []  # t, reconciles, serving, depth
        rss_max = 0

        async def sample() -> None:
            nonlocal rss_max
            tick = 0
            while True:
                manager.check()  # StartupError with its log's end if it exited
                rss_max = max(rss_max, status_kib(pid, "VmRSS"))
                if tick % args.scrape_every == 0:
                    with_m = await asyncio.to_thread(scrape_manager, metrics_url)
                    timeline.append((time.monotonic() - t0,
                                     metric(with_m, "controller_runtime_reconcile_total", controller=CONTROLLER),
                                     len(watcher.serving), metric(with_m, "workqueue_depth", name=CONTROLLER)))
                if tick % 10 == 0:
                    progress(f"t={time.monotonic() - t0:5.1f}s serving {len(watcher.serving)}/{args.llms}"
                             + (f", reconciles {timeline[-1][1]:.0f}, queue depth {timeline[-1][3]:.0f}"
                                if timeline else ""))
                tick += 1
                await asyncio.sleep(1.0)

        sampler = asyncio.create_task(sample())
        created: dict[str, float] = {}
        llms = client.resource_for(LLMS, NAMESPACE)
        run_names = [f"llm-{i:05d}" for i in range(args.llms)]

        async def create(i: int) -> None:
            cluster = names[i % len(names)] if args.placement == "spread" else None
            began = time.monotonic()
            await llms.create(bench_llm(run_names[i], NAMESPACE, cluster))
            created[run_names[i]] = began

        progress(f"creating {args.llms} LLMServices (concurrency {args.create_concurrency})")
        r["create"] = await drive(args.llms, args.create_concurrency, create)
        r["created_s"] = time.monotonic() - t0
        all_serving = asyncio.create_task(watcher.done.wait())
        await asyncio.wait({all_serving, sampler}, timeout=max(1.0, args.timeout - r["created_s"]),
                           return_when=asyncio.FIRST_COMPLETED)
        if sampler.done():
            all_serving.cancel()
            sampler.result()  # the manager exited: raise what the sampler found
        all_serving.cancel()
        r["complete"] = watcher.done.is_set()
        t1 = time.monotonic()
        cpu1, (busy1, total1) = cpu_snapshot(groups), machine_cpu()
        manager_after = await asyncio.to_thread(scrape_manager, metrics_url)
        sampler.cancel()
        rss_max = max(rss_max, status_kib(pid, "VmRSS"))
        kubellm_after = await scrape_api(client.transport)
        members_after = [await scrape_api(t) for t in member_transports]
        r["wall_s"] = t1 - t0
        r["serving"] = len(watcher.serving)
        ttss = [watcher.serving[n] - created[n] for n in watcher.serving if n in created]
        r["tts"] = {"p50": pct(ttss, 0.5), "p90": pct(ttss, 0.9), "p99": pct(ttss, 0.99), "max": max(ttss, default=0)}
        r["all_serving_s"] = max(watcher.serving.values(), default=t0) - t0
        r["first_serving_s"] = min(watcher.serving.values(), default=t0) - t0
        r["status_updates_seen"] = watcher.updates
        phases = Counter(p for f in watcher.first.values() for p in f)
        r["phases_seen"] = dict(phases)
        r["cpu"] = {k: cpu1[k] - cpu0[k] for k in cpu0}
        r["machine_busy_s"], r["machine_total_s"] = busy1 - busy0, total1 - total0
        r["manager_rss_max_mib"] = rss_max / 1024
        r["manager_hwm_mib"] = status_kib(pid, "VmHWM") / 1024
        r["reconciles"] = {res: metric(manager_after, "controller_runtime_reconcile_total", controller=CONTROLLER,
                                       result=res)
                           - metric(manager_before, "controller_runtime_reconcile_total", controller=CONTROLLER,
                                    result=res) for res in ("success", "error", "requeue", "requeue_after")}
        r["cluster_reconciles"] = (metric(manager_after, "controller_runtime_reconcile_total", controller="cluster")
                                   - metric(manager_before, "controller_runtime_reconcile_total", controller="cluster"))

        def delta(family: str, /, **labels: str) -> float:
            return metric(manager_after, family, **labels) - metric(manager_before, family, **labels)

        r["queue_adds"] = delta("workqueue_adds_total", name=CONTROLLER)
        r["retries"] = delta("workqueue_retries_total", name=CONTROLLER)
        r["reconcile_time_mean_ms"] = 1000 * delta("controller_runtime_reconcile_time_seconds_sum",
                                                   controller=CONTROLLER) / max(1.0, delta(
                                                       "controller_runtime_reconcile_time_seconds_count",
                                                       controller=CONTROLLER))
        r["queue_wait_mean_ms"] = 1000 * delta("workqueue_queue_duration_seconds_sum", name=CONTROLLER) / max(
            1.0, delta("workqueue_queue_duration_seconds_count", name=CONTROLLER))
        r["events_dropped"] = delta("kubellm_events_dropped_total")
        rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(timeline) if b[0] > a[0]]
        r["peak_reconcile_rate"] = max(rates, default=0.0)
        r["max_queue_depth"] = max((t[3] for t in timeline), default=0.0)
        r["timeline"] = timeline
        r["cluster_transitions"] = [(t - t0, n, st, reason) for t, n, st, reason in transitions]
        r["kubellm_requests"] = by_labels(kubellm_before, kubellm_after, "apiserver_request_total",
                                          ("verb", "resource", "subresource"))
        member_requests: dict[tuple[str, ...], float] = defaultdict(float)
        for before, after in zip(members_before, members_after):
            deltas = by_labels(before, after, "apiserver_request_total", ("verb", "resource", "subresource"))
            for k, v in deltas.items():
                member_requests[k] += v
        r["member_requests"] = dict(member_requests)

        if args.steady_seconds > 0 and r["complete"]:
            progress(f"all Serving; {args.steady_seconds}s of steady state")
            s0, c0 = await asyncio.to_thread(scrape_manager, metrics_url), cpu_snapshot(groups)
            b0 = machine_cpu()
            await asyncio.sleep(args.steady_seconds)
            s1, c1 = await asyncio.to_thread(scrape_manager, metrics_url), cpu_snapshot(groups)
            b1 = machine_cpu()
            r["steady"] = {"seconds": args.steady_seconds,
                           "reconciles": metric(s1, "controller_runtime_reconcile_total", controller=CONTROLLER)
                           - metric(s0, "controller_runtime_reconcile_total", controller=CONTROLLER),
                           "cpu": {k: c1[k] - c0[k] for k in c0}, "machine_busy_s": b1[0] - b0[0]}
        await factory.shutdown()
        await cluster_factory.shutdown()
        for t in member_transports:
            await t.close()
    return r


# --- instrumenting the manager (--trace, --profile) ---------------------------------------------------------------

MANAGER_WRAPPER = r"""
import asyncio, collections, contextvars, cProfile, functools, json, sys, time
out_path, profile_path = sys.argv[1], sys.argv[2]
sys.argv = [sys.argv[3], *sys.argv[4:]]
calls = collections.defaultdict(lambda: [0, 0.0, 0.0])  # key -> count, wall s, rate limiter wait s
funcs = collections.defaultdict(lambda: [0, 0.0])  # name -> count, wall s
waited = contextvars.ContextVar("waited", default=None)
if out_path:
    from kubellm.client.rest import transport as T
    from kubellm.controller import members as M
    from kubellm.controller.llmservice import controller as C, reconciler as R, resources as RS, status as ST

    def kind(path):
        parts = [p for p in path.split("?")[0].split("/") if p]
        parts = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else parts
        if len(parts) > 2 and parts[0] == "namespaces":
            parts = parts[2:]
        return "/".join([parts[0], parts[2]] if len(parts) > 2 else parts[:1])

    orig_wait, orig_request = T.RateLimiter.wait, T.Transport.request

    async def wait(self, deadline):
        began = time.perf_counter()
        try:
            return await orig_wait(self, deadline)
        finally:
            box = waited.get()
            if box is not None:
                box[0] += time.perf_counter() - began

    async def request(self, method, path, **kw):
        box, began, outcome = [0.0], time.perf_counter(), "ok"
        token = waited.set(box)
        try:
            return await orig_request(self, method, path, **kw)
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            waited.reset(token)
            c = calls[(self.config.host, method, kind(path), outcome)]
            c[0] += 1; c[1] += time.perf_counter() - began; c[2] += box[0]

    T.RateLimiter.wait, T.Transport.request = wait, request

    def timed(owner, name, label):
        f = getattr(owner, name, None)
        if f is None:  # the controller changed: time what exists
            return
        if asyncio.iscoroutinefunction(f):
            @functools.wraps(f)
            async def w(*a, **k):
                began = time.perf_counter()
                try:
                    return await f(*a, **k)
                finally:
                    e = funcs[label]; e[0] += 1; e[1] += time.perf_counter() - began
        else:
            @functools.wraps(f)
            def w(*a, **k):
                began = time.perf_counter()
                try:
                    return f(*a, **k)
                finally:
                    e = funcs[label]; e[0] += 1; e[1] += time.perf_counter() - began
        setattr(owner, name, w)

    for n in ("reconcile", "_apply_metadata", "_record", "_sync", "_sync_one", "_held", "_apply", "_report",
              "_write_status", "_remove"):
        timed(R.LLMServiceReconciler, n, "reconciler." + n)
    try:
        from kubellm.controller import ownership as O
        timed(O, "live", "ownership.live")
    except ImportError:
        pass
    for n in ("place", "as_json", "current_placement", "placement_fingerprint", "contains"):
        timed(R, n, n)
    timed(RS, "llm_objects", "resources.llm_objects")
    timed(ST, "overall", "status.overall")
    timed(M.Member, "instance_objects", "Member.instance_objects")
    try:
        from kubellm.controller import applier as A
        timed(A, "apply_owned", "applier.apply_owned")
        timed(A, "ensure_namespace", "applier.ensure_namespace")
    except ImportError:
        pass
    timed(M.Members, "connect", "Members.connect")
    for n in ("clusters_of", "cluster_changed", "spec_or_deletion", "owner_key"):
        timed(C, n, "controller." + n)
prof = cProfile.Profile(time.process_time) if profile_path else None  # CPU time: waits and steal do not count
code = 0
try:
    from kubellm.controller.manager.main import main
    if prof is not None:
        prof.enable()
    code = main()
finally:
    if prof is not None:
        prof.disable()
        prof.dump_stats(profile_path)
    if out_path:
        with open(out_path, "w") as f:
            json.dump({"calls": [[*k, *v] for k, v in calls.items()],
                       "funcs": [[k, *v] for k, v in funcs.items()]}, f)
sys.exit(code)
"""


# --- orchestration --------------------------------------------------------------------------------------------


def manager_line(log: Path, event: str) -> dict[str, Any] | None:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("event") == event:
            return data
    return None


async def register(config: Config, members: list[MemberCluster]) -> None:
    async with AsyncDynamicClient(config) as client:
        for m in members:
            await client.resource_for(CLUSTERS).create(m.cluster_manifest())


async def run_baseline(config: Config, count: int, workers: int) -> dict[str, dict[str, float]]:
    async with AsyncDynamicClient(config) as client:
        return await baseline(client, count, workers)


def revision() -> str:
    """The commit the manager's code comes from, and whether kubellm/ has changes not committed."""

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes in kubellm/"
                                                   if git("status", "--porcelain", "kubellm") else "")


def main_run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="kubellm-controller-bench-"))
    members: list[MemberCluster] = []
    processes: list[Process] = []
    report: dict[str, Any] = {"args": vars(args), "revision": revision()}
    ok = False
    try:
        per_member = math.ceil(args.llms / args.members)
        nodes = args.nodes_per_member or math.ceil(per_member * (1 + args.headroom) / args.gpus_per_node)
        report["nodes_per_member"] = nodes
        report["member_start_s"] = []
        progress(f"starting {args.members} members of {nodes} nodes x {args.gpus_per_node} GPUs in {tmp}")
        for i in range(args.members):  # from this thread: children die with the thread that started them
            opts = MemberOptions(name=f"gpu-{i:02d}", pools=(NodePool(count=nodes, gpus=args.gpus_per_node),),
                                 ready_delay=args.ready_delay,
                                 extra_controller_manager_args=tuple(args.member_kcm_arg))
            member = MemberCluster(tmp / "members" / opts.name, opts)
            members.append(member)
            began = time.monotonic()
            member.start(timeout=180)
            report["member_start_s"].append(time.monotonic() - began)
            progress(f"member {opts.name} up in {report['member_start_s'][-1]:.1f}s")
        state = tmp / "kubellm"
        state.mkdir()
        server = Process("kubellm-apiserver", [sys.executable, str(ROOT / "cmd" / "kubellm-apiserver"),
                                               "--state-dir", str(state), "--log-format", "json"],
                         tmp / "apiserver.log")
        processes.append(server)
        server.start()
        assert server.popen is not None and server.pid is not None
        wait_until_ready(state, server.popen, server.log, timeout=90)
        config = Config.from_kubeconfig(state / "admin.kubeconfig")
        asyncio.run(register(config, members))
        workers = args.workers
        progress(f"baseline: the API's update rate from one client on {args.llms} LLMServices")
        report["baseline"] = asyncio.run(run_baseline(config, args.llms, workers))
        argv = [str(ROOT / "cmd" / "kubellm-controller-manager"), "--kubeconfig",
                str(state / "controller-manager.kubeconfig"), "--log-format", "json", "--health-port", "0",
                "--metrics-port", "0", *args.manager_arg]
        instrumented = bool(args.profile or args.trace)
        if instrumented:
            argv = ["-c", MANAGER_WRAPPER, str(args.trace or ""), str(args.profile or ""), *argv]
        manager = Process("kubellm-controller-manager", [sys.executable, *argv], tmp / "controller-manager.log")
        processes.append(manager)
        manager.start()
        assert manager.pid is not None
        serving = wait_until(lambda: manager_line(manager.log, "serving health and metrics"), 60,
                             "the manager's metrics URL", processes=(manager,))
        wait_until(lambda: manager_line(manager.log, "controllers running"), 120, "the manager's controllers running",
                   processes=(manager,))
        metrics_url = str(serving["metrics"])
        progress(f"manager pid {manager.pid}, metrics {metrics_url}")
        etcd = children(server.pid)
        groups: dict[str, list[int]] = {"controller manager": [manager.pid], "kubellm-apiserver": [server.pid],
                                        "kubellm etcd": etcd, "this benchmark (creates + watch)": [os.getpid()]}
        for m in members:
            for p in m.control_plane.processes:
                if p.pid is not None:
                    groups.setdefault(f"members' {p.name.split(' ', 1)[1]}", []).append(p.pid)
        report["run"] = asyncio.run(run_phase(args, config, members, manager, metrics_url, groups))
        report["member_rss_mib"] = {}
        for m in members:
            for comp, rss in m.rss_bytes().items():
                report["member_rss_mib"][comp] = report["member_rss_mib"].get(comp, 0) + rss / 2**20
        if instrumented:
            manager.stop(timeout=60)  # SIGTERM: the manager returns and the wrapper writes what it measured
            report["hosts"] = {m.url: m.name for m in members}
        ok = report["run"]["complete"]
    finally:
        for p in reversed(processes):
            p.stop()
        for m in reversed(members):
            m.stop()
        if args.keep or not ok:
            progress(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return report


# --- the report ----------------------------------------------------------------------------------------------


def print_report(report: dict[str, Any], args: argparse.Namespace) -> None:
    r = report["run"]
    wall = r["wall_s"]
    reconciles = sum(r["reconciles"].values())
    print(f"\n{args.llms:,} LLMServices (1 replica, 1 GPU each; placement {args.placement}) on {args.members} member "
          f"clusters of {report['nodes_per_member']} nodes x {args.gpus_per_node} GPUs; simulator ready delay "
          f"{args.ready_delay}s; manager args: {' '.join(args.manager_arg) or '(defaults)'}; code at "
          f"{report['revision']}\n")
    print(f"members started in {sum(report['member_start_s']):.0f}s "
          f"({min(report['member_start_s']):.0f}-{max(report['member_start_s']):.0f}s each)\n")
    print("| | |\n|---|---:|")
    incomplete = "" if r["complete"] else f"(NOT complete: {r['serving']} Serving after {wall:.0f} s) "
    print(f"| all {args.llms:,} Serving, from the first create | **{r['all_serving_s']:.1f} s** {incomplete}|")
    print(f"| created in (concurrency {args.create_concurrency}) | {r['created_s']:.1f} s "
          f"({r['create']['rate']:.0f}/s) |")
    print(f"| first Serving | {r['first_serving_s']:.1f} s |")
    tts = r["tts"]
    print(f"| time to Serving per LLMService p50 / p90 / p99 / max | {tts['p50']:.1f} / {tts['p90']:.1f} / "
          f"{tts['p99']:.1f} / {tts['max']:.1f} s |")
    print(f"| reconciles (llmservice) over the run | {reconciles:,.0f} "
          f"({', '.join(f'{k} {v:.0f}' for k, v in r['reconciles'].items() if v)}) |")
    print(f"| reconcile rate, mean over the run / peak {args.scrape_every} s | {reconciles / wall:.1f}/s / "
          f"{r['peak_reconcile_rate']:.1f}/s |")
    print(f"| queue adds / retries / max depth | {r['queue_adds']:,.0f} / {r['retries']:,.0f} / "
          f"{r['max_queue_depth']:.0f} |")
    print(f"| mean reconcile time / mean wait in queue | {r['reconcile_time_mean_ms']:.1f} ms / "
          f"{r['queue_wait_mean_ms']:.0f} ms |")
    print(f"| LLMService status updates seen by a watch | {r['status_updates_seen']:,} "
          f"({r['status_updates_seen'] / args.llms:.1f} per LLMService) |")
    print(f"| cluster controller reconciles | {r['cluster_reconciles']:.0f} |")
    print(f"| Events dropped by the manager | {r['events_dropped']:.0f} |")
    cm = r["cpu"]["controller manager"]
    print(f"| controller manager CPU | {cm:.1f} s ({cm / wall:.2f} cores; {cm * 1000 / max(reconciles, 1):.1f} ms "
          f"per reconcile) |")
    print(f"| controller manager RSS before / max during / VmHWM | {r['manager_rss_before_mib']:.0f} / "
          f"{r['manager_rss_max_mib']:.0f} / {r['manager_hwm_mib']:.0f} MiB |")

    base = report["baseline"]
    print("\nThe API's update rate from one client (before the manager started, members idle), "
          f"{args.llms:,} LLMServices:\n")
    print("| operation | ops/s | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for name, b in base.items():
        print(f"| {name} | {b['rate']:.0f} | {b['p50_ms']:.1f} | {b['p99_ms']:.1f} |")
    key = f"merge patch of a label (c={args.workers})"
    writes = sum(v for (verb, res, _), v in r["kubellm_requests"].items()
                 if res == "llmservices" and verb in ("APPLY", "PATCH", "PUT"))
    mean, peak = reconciles / wall / base[key]["rate"], r["peak_reconcile_rate"] / base[key]["rate"]
    print(f"\nreconcile rate {reconciles / wall:.1f}/s (mean) against the API's {base[key]['rate']:.0f} merge "
          f"patches/s at c={args.workers}: **{mean:.2f}x**; peak {args.scrape_every} s {peak:.2f}x. The controller's "
          f"LLMService writes: {writes:,.0f} ({writes / wall:.1f}/s)\n")

    print("CPU over the run (wall {:.1f} s; machine busy {:.1f} of {:.1f} core-seconds):\n".format(
        wall, r["machine_busy_s"], r["machine_total_s"]))
    idle, steady = r.get("idle"), r.get("steady")

    def cores(phase: dict[str, Any] | None, name: str) -> str:
        if phase is None:
            return "-"
        if name == "":
            return f"{phase['machine_busy_s'] / phase['seconds']:.2f}"
        return f"{phase['cpu'][name] / phase['seconds']:.2f}"

    print("| process(es) | CPU s | cores | idle before, cores | above idle, CPU s | all Serving after, cores |")
    print("|---|---:|---:|---:|---:|---:|")
    ours = 0.0
    for name, sec in sorted(r["cpu"].items(), key=lambda kv: -kv[1]):
        ours += sec
        above = f"{sec - idle['cpu'][name] / idle['seconds'] * wall:.1f}" if idle else "-"
        print(f"| {name} | {sec:.1f} | {sec / wall:.2f} | {cores(idle, name)} | {above} | {cores(steady, name)} |")
    other = max(0.0, r["machine_busy_s"] - ours)
    print(f"| everything else on the machine | {other:.1f} | {other / wall:.2f} | - | - | - |")
    print(f"| the whole machine (2 cores) | {r['machine_busy_s']:.1f} | {r['machine_busy_s'] / wall:.2f} | "
          f"{cores(idle, '')} | - | {cores(steady, '')} |")

    print("\nKubeLLM requests over the run (verb resource/subresource: count):\n")
    for (verb, res, sub), n in sorted(r["kubellm_requests"].items(), key=lambda kv: -kv[1]):
        print(f"- {verb} {res}{'/' + sub if sub else ''}: {n:,.0f}")
    print("\nMember kube-apiservers' requests over the run, all members (100 or more):\n")
    for (verb, res, sub), n in sorted(r["member_requests"].items(), key=lambda kv: -kv[1]):
        if n >= 100:
            print(f"- {verb} {res}{'/' + sub if sub else ''}: {n:,.0f}")
    print("\nCluster Ready transitions during the run: " + ("; ".join(
        f"{t:.0f}s {n} {st} ({reason})" for t, n, st, reason in r["cluster_transitions"]) or "none"))
    print("\nmembers' RSS at the end (MiB, all members): " + ", ".join(
        f"{k} {v:.0f}" for k, v in report["member_rss_mib"].items()))
    buckets: dict[int, list[float]] = {}  # the first sample of every 10 s
    for t in r["timeline"]:
        buckets.setdefault(int(t[0]) // 10, t)
    print("\ntimeline (s: Serving, reconciles, queue depth): " + "; ".join(
        f"{t[0]:.0f}: {t[2]}, {t[1]:.0f}, {t[3]:.0f}" for t in buckets.values()))
    if "steady" in r:
        s = r["steady"]
        print(f"\nsteady state, all Serving, {s['seconds']:.0f} s: {s['reconciles'] / s['seconds']:.1f} reconciles/s, "
              f"manager {s['cpu']['controller manager'] / s['seconds']:.2f} cores "
              f"({1000 * s['cpu']['controller manager'] / max(1.0, s['reconciles']):.1f} ms per reconcile), machine "
              f"busy {s['machine_busy_s'] / s['seconds']:.2f} cores")


def print_trace(path: Path, hosts: dict[str, str], wall: float) -> None:
    data = json.loads(path.read_text())
    print(f"\nmanager trace ({path}): API calls by target, verb and resource, over the manager's life\n")
    print("| target | verb | resource | outcome | calls | mean ms | of which rate limiter ms | total s |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    rows: dict[tuple[str, str, str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for host, verb, res, outcome, n, total, waited in data["calls"]:
        row = rows[("members" if host.rstrip("/") in hosts else "KubeLLM", verb, res, outcome)]
        row[0] += n
        row[1] += total
        row[2] += waited
    for (target, verb, res, outcome), (n, total, waited) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
        print(f"| {target} | {verb} | {res} | {outcome} | {n:,.0f} | {1000 * total / n:.1f} | {1000 * waited / n:.1f} "
              f"| {total:.1f} |")
    print("\n| step | calls | mean ms | total s |\n|---|---:|---:|---:|")
    for name, n, total in sorted(data["funcs"], key=lambda f: -f[2]):
        print(f"| {name} | {n:,} | {1000 * total / n:.2f} | {total:.1f} |")


def _short(file: str) -> str:
    """A profiled file's path relative to the checkout or to site-packages."""
    return file.split("site-packages/")[-1].removeprefix(f"{ROOT}/")


def print_profile(path: Path, top: int = 30) -> None:
    stats = pstats.Stats(str(path))
    print(f"\nmanager profile (cProfile on CPU time, {path}); top {top} by own time:\n")
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in entries.values())
    rows = sorted(entries.items(), key=lambda kv: -kv[1][2])[:top]
    print("| function | calls | own s | own % | cumulative s |\n|---|---:|---:|---:|---:|")
    for (file, line, func), (_cc, nc, tt, ct, _callers) in rows:
        print(f"| {_short(file)}:{line} {func} | {nc:,} | {tt:.2f} | {100 * tt / total:.1f} | {ct:.2f} |")
    print(f"\ntop {top} by cumulative time, kubellm only:\n")
    rows = sorted(((k, v) for k, v in entries.items() if "kubellm/" in k[0]), key=lambda kv: -kv[1][3])[:top]
    print("| function | calls | own s | cumulative s |\n|---|---:|---:|---:|")
    for (file, line, func), (_cc, nc, tt, ct, _callers) in rows:
        print(f"| {_short(file)}:{line} {func} | {nc:,} | {tt:.2f} | {ct:.2f} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--llms", type=int, default=1000)
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--gpus-per-node", type=int, default=8)
    p.add_argument("--nodes-per-member", type=int, default=0, help="0: enough for the member's share plus --headroom")
    p.add_argument("--headroom", type=float, default=0.1, help="spare GPUs per member, a fraction of its share")
    p.add_argument("--ready-delay", type=float, default=1.0, help="the simulator's seconds from Running to Ready")
    p.add_argument("--placement", choices=["spread", "default"], default="spread",
                   help="spread: each LLMService names one member, round-robin; default: the controller decides")
    p.add_argument("--create-concurrency", type=int, default=16)
    p.add_argument("--scrape-every", type=int, default=5,
                   help="seconds between scrapes of the manager's /metrics during the run (each costs it CPU)")
    p.add_argument("--workers", type=int, default=8, help="the controller's workers, for the baseline's concurrency")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds from the first create")
    p.add_argument("--steady-seconds", type=float, default=30.0, help="then measure this long with all Serving")
    p.add_argument("--idle-seconds", type=float, default=10.0,
                   help="first measure this long with the manager running and no LLMService")
    p.add_argument("--manager-arg", action="append", default=[], help="extra kubellm-controller-manager flag")
    p.add_argument("--member-kcm-arg", action="append", default=[], help="extra members' kube-controller-manager flag")
    p.add_argument("--profile", type=Path, default=None, help="run the manager under cProfile, writing here")
    p.add_argument("--trace", type=Path, default=None,
                   help="time the manager's API calls (and rate limiter waits) and reconciler steps, writing here")
    p.add_argument("--keep", action="store_true", help="keep the state directory and logs")
    args = p.parse_args()
    args.profile = args.profile.resolve() if args.profile else None
    args.trace = args.trace.resolve() if args.trace else None
    try:
        report = main_run(args)
    except (client_errors.ClientError, StartupError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print_report(report, args)
    if args.trace:
        print_trace(args.trace, report.get("hosts", {}), report["run"]["wall_s"])
    if args.profile:
        print_profile(args.profile)
    return 0 if report["run"]["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
