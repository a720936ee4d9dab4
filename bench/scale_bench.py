"""Scale curves of one kubellm-apiserver: how create, LIST, memory and watch fan-out cost grow with size.

Starts its own etcd (EmbeddedEtcd in a temp dir) and one kubellm-apiserver (with `--workers 1` when the
server has that flag, so RSS is one process's; `--server-args` passes more, and with more workers RSS and CPU are
summed over the supervisor and its workers), and drives them from a load
process (bench/_http_load.py: TLS, JSON, client certificates). Then:

  - for each size in --sizes (cumulative: fill to the first, measure, fill to the next, ...): the create rate
    of that fill (concurrency --concurrency), LIST of the namespace consistent (from the watch cache after a
    revision check, or etcd), resourceVersion=0 (watch cache) and paged (limit 500, a consistent walk from
    etcd), --list-reps times each, with wall time and server and etcd CPU per list; the server's VmRSS and
    VmHWM (/proc/<pid>/status) after the fill and after the lists, and bytes per object (VmRSS growth over
    the fill / objects added, and VmRSS above the empty server / all objects);
  - for each count in --watchers: that many watches (one TLS connection each) on a namespace of their own,
    --watch-events sequential merge patches, delivery delay p50/p99 and server CPU per event.

    .venv/bin/python bench/scale_bench.py                  # sizes 1000,10000,100000; watchers 10,100,1000
    .venv/bin/python bench/scale_bench.py --quick          # sizes 200,1000; watchers 10,50 (about a minute)
    .venv/bin/python bench/scale_bench.py --server-args="--workers 2"

Prints markdown tables (and `--json FILE` writes the raw numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _http_load import Target, host_jiffies, process_tree
from http_bench import ROOT, Acc, RemoteLoad, pct, progress, start_server, stop_server, wait_ready
from side_by_side import peak_rss_mib

from kubellm.app.readiness import tail
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd

LIST_MODES = ("list", "list rv=0", "list paged")
LIST_LABELS = {"list": "consistent", "list rv=0": "resourceVersion=0", "list paged": "paged, limit 500"}
PAGE = 500
NS = "scale"


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, KiB: summed over the supervisor and its workers for a server with --workers N
    (then `processes` says how many there are)."""
    hwm, rss = peak_rss_mib(pid)
    return {"VmRSS": round(rss * 1024), "VmHWM": round(hwm * 1024), "processes": len(process_tree(pid))}


def workers_args() -> list[str]:
    """`--workers 1` if this server has the flag (per-process RSS is then one process's), else nothing."""
    out = subprocess.run([sys.executable, str(ROOT / "cmd" / "kubellm-apiserver"), "--help"], capture_output=True,
                         text=True, timeout=60, check=False, cwd=ROOT)
    return ["--workers", "1"] if "--workers" in out.stdout else []


def raise_nofile() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit; the load process and the server inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def host_busy_since(start: tuple[int, int]) -> float:
    busy, total = host_jiffies()
    return (busy - start[0]) / max(total - start[1], 1)


async def size_step(load: RemoteLoad, pids: dict[str, int], step: int, have: int, size: int,
                    args: argparse.Namespace, baseline_kib: int) -> dict[str, Any]:
    before = status_kib(pids["server"])
    fill = await load.call("run", 7200, op="create", n=size - have, rnd=step, ns=NS, concurrency=args.concurrency,
                           timeout=7000)
    if fill["errors"]:
        raise RuntimeError(f"filling to {size}: {fill['errors']} errors, first: {fill['first_error']}")
    created = Acc()
    created.add(fill)
    after_fill = status_kib(pids["server"])
    progress(f"filled to {size:,} at {created.result()['ops']:,.0f}/s; server VmRSS {after_fill['VmRSS'] / 1024:,.0f} "
             "MiB")
    lists: dict[str, Acc] = {mode: Acc() for mode in LIST_MODES}
    t0 = host_jiffies()
    for _ in range(args.list_reps):
        for mode in LIST_MODES:
            m = await load.call("list_once", 1800, ns=NS, mode=mode, page=PAGE, timeout=1700)
            if m["items"] != size:
                raise RuntimeError(f"{mode} returned {m['items']} items, expected {size}")
            lists[mode].add(m)
    after = status_kib(pids["server"])
    return {
        "size": size, "added": size - have, "create": {**created.result(), "host": fill["host_busy"] /
                                                       max(fill["host_total"], 1)},
        "lists": {mode: a.result() for mode, a in lists.items()}, "list_host": host_busy_since(t0),
        "list_bytes": lists["list"].extra.get("bytes", 0), "pages": -(-size // PAGE),
        "rss": {"before": before, "after_fill": after_fill, "after_lists": after,
                "etcd": status_kib(pids["etcd"])},
        "bytes_per_object": (after_fill["VmRSS"] - before["VmRSS"]) * 1024 / max(size - have, 1),
        "bytes_per_object_total": (after_fill["VmRSS"] - baseline_kib) * 1024 / size,
    }


async def watch_step(load: RemoteLoad, watchers: int, args: argparse.Namespace) -> dict[str, Any]:
    m: dict[str, Any] = await load.call("watch_fanout", 3600, ns=f"watch-{watchers}", watchers=watchers,
                                        events=args.watch_events, timeout=3000)
    d = sorted(x * 1000 for x in m.pop("delays")) or [float("nan")]
    last = sorted(x * 1000 for x in m.pop("last")) or [float("nan")]
    n = max(m["n"], 1)
    return {**m, "p50": statistics.median(d), "p99": pct(d, 0.99), "max": d[-1],
            "last_p50": statistics.median(last), "last_p99": pct(last, 0.99),
            "server_ms_per_event": m["server_cpu"] * 1000 / n, "etcd_ms_per_event": m["etcd_cpu"] * 1000 / n,
            "client_ms_per_event": m["client_cpu"] * 1000 / n,
            "server_us_per_delivery": m["server_cpu"] * 1e6 / max(m["deliveries"], 1),
            "host": m["host_busy"] / max(m["host_total"], 1)}


async def shutdown(load: RemoteLoad | None, server: subprocess.Popen[bytes] | None, etcd: EmbeddedEtcd) -> None:
    if load is not None:
        with contextlib.suppress(Exception):
            await load.close()
    await asyncio.to_thread(stop_server, server)
    await etcd.stop()


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    extra = [*workers_args(), *shlex.split(args.server_args)]
    tmp = Path(tempfile.mkdtemp(prefix="kubellm-scale-bench-"))
    log, etcd = tmp / "apiserver.log", EmbeddedEtcd(tmp / "etcd")
    server: subprocess.Popen[bytes] | None = None
    load: RemoteLoad | None = None
    report: dict[str, Any] = {"args": vars(args), "server_args": extra, "loadavg_start": os.getloadavg(),
                              "steps": [], "watch": []}
    keep = args.keep
    try:
        endpoint = await etcd.start()
        assert etcd.process is not None
        state = tmp / "state"
        server = start_server(state, endpoint, log, extra)
        url = await wait_ready(state, server, log)
        pki = state / "pki"
        target = Target(url=url, ca_file=str(pki / "serving-ca.crt"), cert_file=str(pki / "admin.crt"),
                        key_file=str(pki / "admin.key"), etcd=endpoint, server_pid=server.pid,
                        etcd_pid=etcd.process.pid, concurrency=args.concurrency)
        load = RemoteLoad(target)
        await load.start()
        pids = {"server": server.pid, "etcd": etcd.process.pid}
        progress(f"server pid {server.pid} at {url} ({' '.join(extra) or 'no extra args'}), etcd pid "
                 f"{etcd.process.pid}, load pid {load.pid}; state in {tmp}")
        await load.call("run", 300, op="create", n=50, rnd=999, ns="warm", concurrency=args.concurrency)  # warm up
        baseline = status_kib(server.pid)["VmRSS"]
        report["rss_empty"] = baseline
        t0 = time.perf_counter()
        host0 = host_jiffies()
        have = 0
        for step, size in enumerate(args.sizes):
            report["steps"].append(await size_step(load, pids, step, have, size, args, baseline))
            have = size
            progress(f"size {size:,} measured ({time.perf_counter() - t0:.0f}s)")
        for w in args.watchers:
            report["watch"].append(await watch_step(load, w, args))
            progress(f"{w} watchers measured ({time.perf_counter() - t0:.0f}s)")
        report["host_busy"] = host_busy_since(host0)
        report["loadavg_end"] = os.getloadavg()
    except Exception:
        keep = True
        progress(f"server log tail ({log}):\n{tail(log, 2000)}" if server is not None else "the server did not start")
        raise
    finally:
        await shutdown(load, server, etcd)
        progress(f"kept {tmp}") if keep else shutil.rmtree(tmp, ignore_errors=True)
    return report


def size_table(r: dict[str, Any]) -> str:
    out = ["| objects | create/s (server + etcd CPU ms/create) | LIST consistent ms (server + etcd CPU ms) "
           "| LIST rv=0 ms (server CPU ms) | LIST paged ms (pages; ms/page; server + etcd CPU ms) "
           "| µs/object consistent / rv=0 / paged | VmRSS after fill / VmHWM after lists MiB "
           "| bytes/object (step; all) | etcd VmRSS MiB |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in r["steps"]:
        c, li = s["create"], s["lists"]
        lc, l0, lp = li["list"], li["list rv=0"], li["list paged"]
        n = s["size"]
        rss = s["rss"]
        out.append(
            f"| {n:,} | {c['ops']:,.0f}/s ({c['server']:.2f} + {c['etcd']:.2f}) "
            f"| {lc['mean']:,.0f} ({lc['server']:,.0f} + {lc['etcd']:,.0f}) | {l0['mean']:,.0f} ({l0['server']:,.0f}) "
            f"| {lp['mean']:,.0f} ({s['pages']}; {lp['mean'] / s['pages']:.1f}; {lp['server']:,.0f} + "
            f"{lp['etcd']:,.0f}) | {lc['mean'] * 1000 / n:.1f} / {l0['mean'] * 1000 / n:.1f} / "
            f"{lp['mean'] * 1000 / n:.1f} | {rss['after_fill']['VmRSS'] / 1024:,.0f} / "
            f"{rss['after_lists']['VmHWM'] / 1024:,.0f} | {s['bytes_per_object']:,.0f}; "
            f"{s['bytes_per_object_total']:,.0f} | {rss['etcd']['VmRSS'] / 1024:,.0f} |")
    return "\n".join(out)


def watch_table(r: dict[str, Any]) -> str:
    out = ["| watchers | events | delivery p50 / p99 / max ms | last watcher per event p50 / p99 ms "
           "| server CPU ms/event (µs/delivery) | load CPU ms/event | missed | machine busy |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w in r["watch"]:
        out.append(f"| {w['watchers']:,} | {w['n']} | {w['p50']:.2f} / {w['p99']:.2f} / {w['max']:.1f} "
                   f"| {w['last_p50']:.2f} / {w['last_p99']:.2f} | {w['server_ms_per_event']:.2f} "
                   f"({w['server_us_per_delivery']:.0f}) | {w['client_ms_per_event']:.2f} | {w['missed']} "
                   f"| {w['host']:.0%} |")
    return "\n".join(out)


def print_report(r: dict[str, Any], args: argparse.Namespace) -> None:
    procs = r["steps"][0]["rss"]["after_fill"]["processes"]
    print(f"\nkubellm-apiserver {' '.join(r['server_args'])} ({procs} process{'es' if procs > 1 else ''}: RSS and CPU "
          f"are their sums); LLMServices of ~1 KiB, one namespace, created at "
          f"concurrency {args.concurrency}; LIST means of {args.list_reps}; TLS, JSON, client certificates\n")
    print(size_table(r))
    print(f"\nWatch fan-out, {args.watch_events} sequential merge patches, one TLS connection per watch:\n")
    print(watch_table(r))
    print(f"\nmachine busy over the run {r['host_busy']:.0%} of {os.cpu_count()} cores (/proc/stat); load average "
          f"{' '.join(f'{x:.2f}' for x in r['loadavg_start'])} at start, "
          f"{' '.join(f'{x:.2f}' for x in r['loadavg_end'])} at the end")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000", help="cumulative object counts, comma-separated")
    p.add_argument("--watchers", default="10,100,1000", help="watcher counts, comma-separated")
    p.add_argument("--watch-events", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--list-reps", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="sizes 200,1000, watchers 10,50, 30 events, 2 list reps")
    p.add_argument("--server-args", default="", help="extra kubellm-apiserver arguments (one shell-quoted string)")
    p.add_argument("--timeout", type=float, default=5400, help="abort the whole run after this many seconds")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (etcd data, server log)")
    p.add_argument("--json", metavar="FILE", help="also write the raw numbers here")
    args = p.parse_args()
    if args.quick:
        args.sizes, args.watchers, args.watch_events, args.list_reps = "200,1000", "10,50", 30, 2
    args.sizes = [int(x) for x in str(args.sizes).split(",")]
    args.watchers = [int(x) for x in str(args.watchers).split(",")]
    if args.sizes != sorted(set(args.sizes)) or args.sizes[0] <= 0:
        p.error("--sizes must be increasing and positive (the fill is cumulative)")
    raise_nofile()
    report = asyncio.run(bounded(args))
    if args.json:
        Path(args.json).write_text(json.dumps(report))
    print_report(report, args)
    return 1 if any(w["missed"] for w in report["watch"]) else 0


async def bounded(args: argparse.Namespace) -> dict[str, Any]:
    """amain within --timeout; SIGTERM cancels it (and so stops the processes it started)."""
    me = asyncio.current_task()
    assert me is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, me.cancel)
    async with asyncio.timeout(args.timeout):
        return await amain(args)


if __name__ == "__main__":
    sys.exit(main())
