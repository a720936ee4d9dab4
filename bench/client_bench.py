"""Clientset benchmark: an informer's initial sync against `kubectl get -o json` and the official client's
DynamicClient list of the same objects, and the event rate one informer sustains under a stream of patches.

Starts its own etcd and kubellm-apiserver (as bench/http_bench.py does), creates --objects LLMServices in one
namespace, then measures in --rounds interleaved rounds (the order rotates each round):

  - `kubectl get llms -n bench -o json` (a subprocess, output discarded; discovery cache warmed first);
    kubectl reads in chunks of 500 (consistent reads from etcd);
  - the official `kubernetes` client: `DynamicClient(...).resources.get(...).get(namespace=...)`, one
    consistent unpaged list decoded into its ResourceInstance (discovery done before timing);
  - a KubeLLM informer, from `factory.start()` until `wait_for_cache_sync()` returns and until a handler has
    been called for every object: as client-go does, its first list reads the server's cache
    (resourceVersion=0);
  - the same informer with a consistent first list (resourceVersion="", pages of 500 from etcd), to compare
    like with like.

Then the event rate: one informer (a handler recording each event) while --patchers concurrent writers in a
separate process merge-patch random objects for --patch-seconds; reported: patches/s the server took, events/s
the informer delivered, missed events, the delay from a patch's response to its handler call (CLOCK_MONOTONIC
is shared between processes), and the informer process's CPU per event. Finally the informer's ceiling
without a network: recorded watch lines decoded, stored and dispatched in-process.

    .venv/bin/python bench/client_bench.py            # --objects 10000 --rounds 3 --patch-seconds 15
    .venv/bin/python bench/client_bench.py --quick    # 1,000 objects, 1 round, 5 s of patches
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from _http_load import proc_cpu
from http_bench import start_server, stop_server, tail, wait_ready
from samples import llmservice

from kubellm.apis.model.v1alpha1 import LLMService
from kubellm.client import Config, EventHandlerFuncs, InformerOptions
from kubellm.client import codec as client_codec
from kubellm.client.aio import ClientSet, SharedInformerFactory
from kubellm.client.resource import WatchEvent
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd

NAMESPACE = "bench"


def progress(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


# --- filling -----------------------------------------------------------------------------------------------------


async def fill(config: Config, count: int, concurrency: int = 32) -> float:
    """Create `count` LLMServices; their creation rate."""
    async with ClientSet(config) as clients:
        llms = clients.model_v1alpha1.llmservices(NAMESPACE)
        names = iter(range(count))
        began = time.perf_counter()

        async def worker() -> None:
            for i in names:
                await llms.create(LLMService.model_validate(llmservice(f"llm-{i:05d}", NAMESPACE)))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - began)


# --- the contenders --------------------------------------------------------------------------------------------


def kubectl_list(kubeconfig: Path, cache: Path) -> tuple[float, int]:
    began = time.perf_counter()
    proc = subprocess.run(["kubectl", "--cache-dir", str(cache), "get", "llms", "-n", NAMESPACE, "-o", "json"],
                          env={**os.environ, "KUBECONFIG": str(kubeconfig)}, capture_output=True, check=True,
                          timeout=600)
    elapsed = time.perf_counter() - began
    return elapsed, len(orjson.loads(proc.stdout)["items"])


class Official:
    """The official client's DynamicClient, discovery done once before any timing."""

    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        from kubernetes import client, config, dynamic

        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        self.api = client.ApiClient(cfg)
        self.dyn = dynamic.DynamicClient(self.api, cache_file=str(cache / "official-discovery.json"))
        self.resource = self.dyn.resources.get(api_version="model.kubellm.io/v1alpha1", kind="LLMService")

    def list(self) -> tuple[float, float, int]:
        cpu = time.process_time()
        began = time.perf_counter()
        result = self.resource.get(namespace=NAMESPACE)
        elapsed = time.perf_counter() - began
        return elapsed, time.process_time() - cpu, len(result.items)

    def close(self) -> None:
        self.api.close()


async def informer_sync(config: Config, initial_rv: str) -> dict[str, float]:
    """Seconds from start to a synced store and to a handler that has seen every object; client CPU."""
    async with ClientSet(config) as clients:
        factory = SharedInformerFactory(clients, options=InformerOptions(initial_resource_version=initial_rv))
        informer = factory.model_v1alpha1.llmservices().informer()
        added = 0

        def on_add(obj: LLMService) -> None:
            nonlocal added
            added += 1

        reg = informer.add_event_handler(EventHandlerFuncs(add=on_add))
        cpu = time.process_time()
        began = time.perf_counter()
        factory.start()
        await factory.wait_for_cache_sync(600)
        synced = time.perf_counter() - began
        while not reg.has_synced():  # noqa: ASYNC110 - the registration has no event to wait on
            await asyncio.sleep(0.001)
        handled = time.perf_counter() - began
        used = time.process_time() - cpu
        count = len(informer.indexer)
        await factory.shutdown()
        assert added == count
        return {"sync": synced, "handled": handled, "cpu": used, "count": count}


# --- event rate --------------------------------------------------------------------------------------------------


def patcher_main(kubeconfig: str, names: list[str], seconds: float, concurrency: int, conn: Any) -> None:
    """In a child process: merge patches as fast as the server takes them; (resourceVersion, monotonic time of
    the response) of each, sent back on `conn`."""

    async def run() -> list[tuple[int, float]]:
        done: list[tuple[int, float]] = []
        async with ClientSet(Config.from_kubeconfig(kubeconfig)) as clients:
            llms = clients.model_v1alpha1.llmservices(NAMESPACE)
            stop = time.monotonic() + seconds
            rnd = random.Random(7)

            async def worker() -> None:
                while time.monotonic() < stop:
                    patch = {"metadata": {"annotations": {"tick": str(rnd.random())}}}
                    obj = await llms.patch(rnd.choice(names), patch)
                    done.append((int(obj.metadata.resource_version or 0), time.monotonic()))

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done

    conn.send(asyncio.run(run()))
    conn.close()


async def event_rate(config: Config, kubeconfig: Path, names: list[str], seconds: float,
                     patchers: int) -> dict[str, Any]:
    received: dict[int, float] = {}
    async with ClientSet(config) as clients:
        factory = SharedInformerFactory(clients)
        informer = factory.model_v1alpha1.llmservices().informer()

        def on_update(old: LLMService, new: LLMService) -> None:
            received[int(new.metadata.resource_version or 0)] = time.monotonic()

        informer.add_event_handler(EventHandlerFuncs(update=on_update))
        factory.start()
        await factory.wait_for_cache_sync(600)
        events0 = informer.stats.events
        parent, child = mp.get_context("spawn").Pipe()
        proc = mp.get_context("spawn").Process(target=patcher_main,
                                               args=(str(kubeconfig), names, seconds, patchers, child))
        cpu = time.process_time()
        began = time.monotonic()
        proc.start()  # the CPU of this process from here on is the informer's (the writers are in the child)
        done: list[tuple[int, float]] = await asyncio.to_thread(parent.recv)
        await asyncio.to_thread(proc.join)
        last = max((rv for rv, _ in done), default=0)
        deadline = time.monotonic() + 30
        while last not in received and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a dict
            await asyncio.sleep(0.01)
        used = time.process_time() - cpu
        del began
        first = min((t for _, t in done), default=0.0)
        window = max(received.values(), default=first) - first
        events = informer.stats.events - events0
        await factory.shutdown()
    delays = sorted((received[rv] - t) * 1000 for rv, t in done if rv in received)
    missed = sum(1 for rv, _ in done if rv not in received)
    return {"patches": len(done), "patch_rate": len(done) / seconds, "events": events,
            "event_rate": events / window if window else 0.0, "missed": missed,
            "p50": statistics.median(delays) if delays else float("nan"),
            "p99": delays[min(len(delays) - 1, int(len(delays) * 0.99))] if delays else float("nan"),
            "max": delays[-1] if delays else float("nan"), "cpu_ms_per_event": used * 1000 / max(events, 1)}


async def informer_ceiling(config: Config, count: int, freeze: bool) -> dict[str, float]:
    """Watch lines decoded, stored and dispatched to a handler, in-process (no network): events/s. With `freeze`,
    the objects alive at that point are moved out of the cyclic GC's reach first (`gc.freeze()`), as a
    long-running controller with a large cache may do after its informers synced."""
    async with ClientSet(config) as clients:
        objs, _ = await clients.model_v1alpha1.llmservices(NAMESPACE).ops.list_all(resource_version="0")
        factory = SharedInformerFactory(clients)
        informer = factory.model_v1alpha1.llmservices().informer()
        handled = 0

        def on_update(old: LLMService, new: LLMService) -> None:
            nonlocal handled
            handled += 1

        informer.add_event_handler(EventHandlerFuncs(update=on_update))
        informer._replace(objs, "1")  # as after a list, without the network
        lines = []
        for i in range(count):
            data = client_codec.encode(objs[i % len(objs)])
            data["metadata"]["resourceVersion"] = str(1000 + i)
            lines.append(orjson.dumps({"type": "MODIFIED", "object": data}))
        decode = informer.source.codec.decode
        for reg in informer._registrations:
            reg.start()
        del objs
        if freeze:
            gc.collect()
            gc.freeze()
        cpu = time.process_time()
        began = time.perf_counter()
        for line in lines:
            event = orjson.loads(line)
            informer._handle(WatchEvent(event["type"], decode(event["object"])))
        stored = time.perf_counter() - began
        while handled < count:  # noqa: ASYNC110 - yielding to the handler task
            await asyncio.sleep(0)
        elapsed = time.perf_counter() - began
        used = time.process_time() - cpu
        if freeze:
            gc.unfreeze()
        for reg in informer._registrations:
            if reg.task is not None:
                reg.task.cancel()
    return {"events": count, "stored_per_s": count / stored, "handled_per_s": count / elapsed,
            "cpu_us_per_event": used * 1e6 / count}


# --- the run -----------------------------------------------------------------------------------------------------


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="kubellm-client-bench-"))
    etcd = EmbeddedEtcd(tmp / "etcd")
    server: subprocess.Popen[bytes] | None = None
    log = tmp / "apiserver.log"
    report: dict[str, Any] = {"rounds": []}
    failed = False
    try:
        endpoint = await etcd.start()
        state = tmp / "state"
        server = start_server(state, endpoint, log, [])
        await wait_ready(state, server, log)
        kubeconfig = state / "admin.kubeconfig"
        config = Config.from_kubeconfig(kubeconfig)
        cache = tmp / "cache"
        cache.mkdir()
        progress(f"server pid {server.pid}; filling {args.objects} LLMServices")
        report["fill_rate"] = await fill(config, args.objects)
        progress(f"filled at {report['fill_rate']:.0f}/s; warming kubectl's and the official client's discovery")
        kubectl_list(kubeconfig, cache)
        official = Official(kubeconfig, cache)
        report["object_bytes"] = len(orjson.dumps(llmservice("llm-00000", NAMESPACE)))
        contenders = ["kubectl", "official", "informer", "informer-consistent"]
        for r in range(args.rounds):
            order = contenders[r % 4:] + contenders[:r % 4]
            row: dict[str, Any] = {}
            for name in order:
                cpu0 = proc_cpu(server.pid)
                if name == "kubectl":
                    elapsed, count = await asyncio.to_thread(kubectl_list, kubeconfig, cache)
                    row[name] = {"seconds": elapsed, "count": count}
                elif name == "official":
                    elapsed, cpu, count = official.list()
                    row[name] = {"seconds": elapsed, "client_cpu": cpu, "count": count}
                else:
                    res = await informer_sync(config, "0" if name == "informer" else "")
                    row[name] = {"seconds": res["sync"], "handled": res["handled"], "client_cpu": res["cpu"],
                                 "count": res["count"]}
                row[name]["server_cpu"] = proc_cpu(server.pid) - cpu0
                assert row[name]["count"] == args.objects, (name, row[name])
                progress(f"round {r + 1} {name}: {row[name]['seconds']:.3f}s")
            report["rounds"].append(row)
        official.close()
        names = [f"llm-{i:05d}" for i in range(args.objects)]
        progress(f"event rate: {args.patchers} patchers for {args.patch_seconds}s")
        report["events"] = await event_rate(config, kubeconfig, names, args.patch_seconds, args.patchers)
        progress("informer ceiling in-process")
        report["ceiling"] = await informer_ceiling(config, min(args.objects, 20000), freeze=False)
        report["ceiling_frozen"] = await informer_ceiling(config, min(args.objects, 20000), freeze=True)
    except Exception:
        failed = True
        if server is not None:
            progress(f"server log tail ({log}):\n{tail(log, 2000)}")
        raise
    finally:
        await asyncio.to_thread(stop_server, server)
        await etcd.stop()
        if not failed:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            progress(f"kept {tmp}")
    return report


def print_report(r: dict[str, Any], args: argparse.Namespace) -> None:
    rows = r["rounds"]
    names = {"kubectl": "`kubectl get llms -o json` (chunks of 500, consistent)",
             "official": "official client DynamicClient list (consistent, unpaged)",
             "informer": "KubeLLM informer sync (first list resourceVersion=0)",
             "informer-consistent": "KubeLLM informer sync (consistent list, pages of 500)"}
    print(f"\n{args.objects:,} LLMServices of about {r['object_bytes']} bytes in one namespace (created at "
          f"{r['fill_rate']:.0f}/s), {len(rows)} interleaved rounds; seconds are wall time, CPU seconds per run\n")
    print("| contender | mean s | min s | max s | all objects handled s | client CPU s | server CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    means: dict[str, float] = {}
    for key, label in names.items():
        secs = [row[key]["seconds"] for row in rows]
        means[key] = statistics.mean(secs)
        handled = f"{statistics.mean(row[key]['handled'] for row in rows):.3f}" if "handled" in rows[0][key] else "-"
        client = (f"{statistics.mean(row[key]['client_cpu'] for row in rows):.2f}"
                  if "client_cpu" in rows[0][key] else "-")
        server = statistics.mean(row[key]["server_cpu"] for row in rows)
        print(f"| {label} | {means[key]:.3f} | {min(secs):.3f} | {max(secs):.3f} | {handled} | {client} | "
              f"{server:.2f} |")
    print("\n| ratio (informer sync time / baseline) | resourceVersion=0 | consistent |")
    print("|---|---:|---:|")
    for base in ("kubectl", "official"):
        print(f"| vs {names[base].split(' (')[0]} | {means['informer'] / means[base]:.2f}x | "
              f"{means['informer-consistent'] / means[base]:.2f}x |")
    e = r["events"]
    print(f"\nevent rate: {args.patchers} concurrent merge-patch writers in another process for {args.patch_seconds}s, "
          "one informer with one handler\n")
    print("| patches | patches/s | events delivered | events/s | missed | delay p50 ms | p99 ms | max ms | "
          "informer CPU ms/event |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {e['patches']:,} | {e['patch_rate']:.0f} | {e['events']:,} | {e['event_rate']:.0f} | {e['missed']} | "
          f"{e['p50']:.2f} | {e['p99']:.2f} | {e['max']:.2f} | {e['cpu_ms_per_event']:.3f} |")
    print(f"\ninformer ceiling without network: {r['ceiling']['events']:,} recorded MODIFIED lines of these objects "
          "decoded, stored and dispatched to one handler, in-process\n")
    print("| cyclic GC | events/s stored | events/s through the handler | CPU µs/event |")
    print("|---|---:|---:|---:|")
    for key, label in (("ceiling", "default"), ("ceiling_frozen", "gc.freeze() after the sync")):
        c = r[key]
        print(f"| {label} | {c['stored_per_s']:,.0f} | {c['handled_per_s']:,.0f} | {c['cpu_us_per_event']:.0f} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--patch-seconds", type=float, default=15.0)
    p.add_argument("--patchers", type=int, default=32)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.objects, args.rounds, args.patch_seconds = 1000, 1, 5.0
    if shutil.which("kubectl") is None:
        print("kubectl is required", file=sys.stderr)
        return 2
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    report = asyncio.run(amain(args))
    print_report(report, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
