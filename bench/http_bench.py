"""HTTP benchmark of the whole KubeLLM stack, measured the way kube-apiserver was (TLS, JSON, concurrency 32).

Starts its own etcd (EmbeddedEtcd in a temp dir) and a `kubellm-apiserver` process pointed at it, and
drives them from a load-generator process (bench/_http_load.py; `--in-process` to run it here). In one
run, with interleaved rounds, it measures:

  - raw etcd baseline: a bare aiohttp client on etcd's JSON gateway (put, txn create, range);
  - HTTP create (POST), merge patch, update (PUT with resourceVersion), consistent GET, GET resourceVersion=0;
  - LIST of --list-size objects: whole (consistent and resourceVersion=0), in pages of 500 (full walk),
    once as a Table, against a bare etcd range of the same keys;
  - watch fan-out: --watchers streaming watches, sequential merge patches, delay from the PATCH response
    to each watcher's receipt of the event (matched on resourceVersion), and missed events.

For each: ops/s, p50/p99 latency, and CPU per operation of the server, of etcd and of the client, each
read from /proc/<pid>/stat (or process_time) over exactly the measured interval. Prints markdown with
ratios against raw etcd. The comparison with kube-apiserver is bench/side_by_side.py (both servers on
one etcd, in the same run). Run:

    .venv/bin/python bench/http_bench.py   # --ops 1000 --rounds 5 --concurrency 32 --list-size 10000 --list-reps 5
    .venv/bin/python bench/http_bench.py --quick   # smoke run, well under a minute
    .venv/bin/python bench/http_bench.py --profile /tmp/prof   # plus py-spy hot spots of the server per operation

All traffic is on 127.0.0.1. Processes are cleaned up on failure, timeout (--timeout) and Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _http_load import LoadGen, Target, child_main, die_with_parent, proc_cpu

from kubellm.app.readiness import tail, wait_until_ready
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd

ROOT = Path(__file__).resolve().parents[1]

HTTP_OPS = ("create", "get", "get rv=0", "merge patch", "update")
RAW_OPS = ("raw put", "raw txn create", "raw range")
LIST_MODES = ("raw range", "list", "list rv=0", "list paged")


# ----- processes ------------------------------------------------------------------------------------


def start_server(state: Path, etcd: str, log: Path, extra: list[str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "cmd" / "kubellm-apiserver"), "--state-dir", str(state), "--secure-port", "0",
             "--bind-address", "127.0.0.1", "--etcd-servers", etcd, "--etcd-compaction-interval", "0",
             "--log-format", "json", *extra],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True,
            preexec_fn=die_with_parent)


async def wait_ready(state: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> str:
    return await asyncio.to_thread(wait_until_ready, state, proc, log, timeout)


def stop_server(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class LocalLoad:
    """The load generator in this process (its CPU then shares this process)."""

    def __init__(self, target: Target) -> None:
        self.gen = LoadGen(target)
        self.pid = os.getpid()

    async def start(self) -> None:
        await self.gen.start()

    async def call(self, method: str, wait: float, /, **kwargs: Any) -> Any:
        return await asyncio.wait_for(getattr(self.gen, method)(**kwargs), wait)

    async def close(self) -> None:
        await self.gen.close()


class RemoteLoad:
    """The load generator in its own process, driven over a pipe; one call at a time."""

    def __init__(self, target: Target) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=child_main, args=(child, target), name="http-bench-load", daemon=True)
        self.child = child
        self.pid = 0

    async def start(self) -> None:
        self.proc.start()
        self.child.close()
        self.pid = self.proc.pid or 0

    async def call(self, method: str, wait: float, /, **kwargs: Any) -> Any:
        self.conn.send((method, kwargs))
        loop = asyncio.get_running_loop()
        fd = self.conn.fileno()
        readable = loop.create_future()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            await asyncio.wait_for(readable, wait)
        except TimeoutError:
            self.kill()
            raise TimeoutError(f"load generator: {method} did not finish in {wait:.0f}s") from None
        finally:
            loop.remove_reader(fd)
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"load generator exited ({self.proc.exitcode}) during {method}") from None
        if status != "ok":
            raise RuntimeError(f"load generator failed in {method}:\n{value}")
        return value

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)

    async def close(self) -> None:
        if self.proc.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send(("exit", {}))
            await asyncio.to_thread(self.proc.join, 10)
            if self.proc.is_alive():
                self.proc.terminate()
                await asyncio.to_thread(self.proc.join, 5)
            if self.proc.is_alive():
                self.kill()
        self.conn.close()


Load = LocalLoad | RemoteLoad


# ----- accumulating results -------------------------------------------------------------------------


class Acc:
    """Several measurements (rounds) of one operation."""

    def __init__(self) -> None:
        self.n = self.ok = self.errors = 0
        self.wall = self.client = self.server = self.etcd = 0.0
        self.lat: list[float] = []
        self.first_error = ""
        self.extra: dict[str, Any] = {}

    def add(self, m: dict[str, Any]) -> None:
        self.n += m["n"]
        self.ok += m["ok"]
        self.errors += m["errors"]
        self.first_error = self.first_error or m["first_error"]
        self.wall += m["wall"]
        self.client += m["client_cpu"]
        self.server += m["server_cpu"]
        self.etcd += m["etcd_cpu"]
        self.lat.extend(m["lat"])
        for k in ("items", "bytes"):
            if k in m:
                self.extra[k] = m[k]

    def result(self) -> dict[str, float]:
        lat = sorted(self.lat) or [float("nan")]
        return {"ops": self.ok / self.wall if self.wall else 0.0, "p50": statistics.median(lat) * 1000,
                "p99": pct(lat, 0.99) * 1000, "min": lat[0] * 1000, "max": lat[-1] * 1000,
                "mean": statistics.fmean(lat) * 1000,
                "server": self.server * 1000 / max(self.n, 1), "etcd": self.etcd * 1000 / max(self.n, 1),
                "client": self.client * 1000 / max(self.n, 1), "errors": self.errors, "n": self.n}


def pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[max(0, int(len(sorted_values) * q + 0.5) - 1)]


# ----- the run --------------------------------------------------------------------------------------


async def run_bench(load: Load, args: argparse.Namespace, report: dict[str, Any]) -> None:
    n, c = args.ops, args.concurrency
    op_timeout = max(120.0, n / 20)
    t0 = time.perf_counter()
    # warm both pools (TLS handshakes, server code paths), not counted
    for op in ("raw put", "raw txn create", "raw range", "create", "get", "merge patch", "update"):
        await load.call("run", op_timeout + 30, op=op, n=min(200, n), rnd=9999, ns="warm", concurrency=c,
                        timeout=op_timeout)
    accs = {op: Acc() for op in (*RAW_OPS, *HTTP_OPS)}
    # Rounds interleave baseline and server so disk and scheduler noise hits both alike. Order inside a round:
    # each object o-<r>-<i> is created, read, patched, then replaced with the resourceVersion the patch returned.
    order = ("raw put", "create", "raw txn create", "raw range", "get", "get rv=0", "merge patch", "update")
    for rnd in range(args.rounds):
        for op in order:
            m = await load.call("run", op_timeout + 30, op=op, n=n, rnd=rnd, ns="bench", concurrency=c,
                                timeout=op_timeout)
            accs[op].add(m)
        progress(f"round {rnd + 1}/{args.rounds} done ({time.perf_counter() - t0:.0f}s)")
    report["ops"] = {op: a.result() for op, a in accs.items()}
    report["errors"] = {op: a.first_error for op, a in accs.items() if a.errors}

    # LIST
    fill = await load.call("fill", 3600, ns="list", count=args.list_size, timeout=3600)
    if fill["errors"]:
        raise RuntimeError(f"filling the list namespace failed: {fill['first_error']}")
    report["fill"] = fill
    progress(f"filled {args.list_size} objects in {fill['wall']:.1f}s ({time.perf_counter() - t0:.0f}s)")
    lists = {mode: Acc() for mode in (*LIST_MODES, "list table")}
    for _ in range(args.list_reps):
        for mode in LIST_MODES:
            lists[mode].add(await load.call("list_once", 900, ns="list", mode=mode, timeout=600))
    lists["list table"].add(await load.call("list_once", 900, ns="list", mode="list table", timeout=600))
    for mode, acc in lists.items():
        if acc.extra.get("items") != args.list_size:
            raise RuntimeError(f"{mode} returned {acc.extra.get('items')} items, expected {args.list_size}")
    report["lists"] = {mode: {**a.result(), **a.extra, "reps": a.n, "wall_total": a.wall} for mode, a in lists.items()}
    progress(f"lists done ({time.perf_counter() - t0:.0f}s)")

    # watch fan-out
    w = await load.call("watch_fanout", 900, ns="watch", watchers=args.watchers, events=args.watch_events,
                        timeout=600)
    report["watch"] = w
    progress(f"watch fan-out done ({time.perf_counter() - t0:.0f}s)")


async def run_profile(load: Load, args: argparse.Namespace, server_pid: int, out_dir: Path,
                      report: dict[str, Any]) -> None:
    """After the measurements: one more pass per operation under `py-spy record` (not counted: sampling
    pauses the server)."""
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(pyspy, os.X_OK):
        raise RuntimeError("--profile needs py-spy (.venv/bin/pip install py-spy)")
    n, c = args.profile_ops, args.concurrency
    profiles: dict[str, Path] = {}
    steps: list[tuple[str, Callable[[], Any]]] = [
        (op, lambda op=op: load.call("run", 900, op=op, n=n, rnd=100, ns="bench", concurrency=c, timeout=600))
        for op in ("create", "get", "merge patch", "update")]
    steps.append(("list", lambda: _list_reps(load, max(args.list_reps, 3))))
    steps.append(("watch fan-out", lambda: load.call("watch_fanout", 900, ns="watchprof", watchers=args.watchers,
                                                     events=args.watch_events, timeout=600)))
    for name, step in steps:
        path = out_dir / (name.replace(" ", "_") + ".txt")
        spy = start_pyspy(pyspy, server_pid, path, args.profile_rate)
        try:
            await asyncio.sleep(1.0)  # let py-spy attach
            await step()
        finally:
            spy.send_signal(signal.SIGINT)
            try:
                _, err = await asyncio.to_thread(spy.communicate, timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, err = spy.communicate()
        if not path.exists():
            raise RuntimeError(f"py-spy wrote no profile for {name}: {err.decode(errors='replace')[-2000:]}")
        profiles[name] = path
        progress(f"profiled {name} into {path}")
    report["profiles"] = {name: summarize_profile(path) for name, path in profiles.items()}


def start_pyspy(pyspy: str, pid: int, path: Path, rate: int) -> subprocess.Popen[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([pyspy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                             "--output", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=die_with_parent)


async def _list_reps(load: Load, reps: int) -> None:
    for _ in range(reps):
        await load.call("list_once", 900, ns="list", mode="list", timeout=600)


ENTRY_FRAMES = {"main (kubellm/app/apiserver.py)", "Filters.__call__ (kubellm/server/app.py)",
                "APIServerApp.apis (kubellm/server/app.py)", "ResourceHandler.handle (kubellm/server/handlers.py)"}
IDLE_LEAVES = ("select (selectors.py)", "EpollSelector.select (selectors.py)")


def summarize_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """From py-spy's collapsed stacks: busy samples by component (of the leaf frame), the top functions
    by self samples, and the top kubellm functions by inclusive samples. Waiting in epoll is idle."""
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    comp: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        raw = stack.split(";")
        frames = [_frame(f) for f in raw]
        if frames[-1] in IDLE_LEAVES:
            continue
        k = int(count)
        total += k
        self_c[frames[-1]] += k
        comp[component(raw)] += k
        for f in set(frames):
            if "(kubellm/" in f and f not in ENTRY_FRAMES:
                incl[f] += k
    return {"samples": total, "self": self_c.most_common(top), "inclusive": incl.most_common(top),
            "components": comp.most_common()}


def _file(raw: str) -> str:
    return raw.rpartition(" (")[2].rstrip(")").rsplit(":", 1)[0]


def component(raw_stack: list[str]) -> str:
    """Which part of the stack a sample's leaf frame belongs to."""
    leaf = _file(raw_stack[-1])
    files = [_file(f) for f in raw_stack]
    to_etcd = any(f.startswith(("aiohttp/client", "aiohttp/connector", "kubellm/registry/storage/etcd/client"))
                  or f.endswith("etcd/watcher.py") for f in files)
    if leaf.endswith(("asyncio/sslproto.py", "ssl.py")):
        return "TLS (ssl, asyncio sslproto)"
    if leaf.startswith("asyncio/"):
        return "asyncio event loop and sockets"
    if leaf.startswith(("aiohttp/", "multidict", "yarl")):
        return "aiohttp client to etcd" if to_etcd else "aiohttp server (HTTP)"
    if leaf.startswith("kubellm/"):
        parts = leaf.split("/")
        return "kubellm/" + "/".join(parts[1:3]) if len(parts) > 3 else leaf
    top = leaf.split("/", 1)[0]
    return {"copy.py": "copy.deepcopy", "structlog": "logging (structlog)", "logging": "logging (structlog)",
            "json": "stdlib json", "base64.py": "base64", "prometheus_client": "prometheus_client",
            "pydantic": "pydantic", "pydantic_core": "pydantic"}.get(top, top)


def _frame(raw: str) -> str:
    """'func (path/to/file.py:123)' -> 'func (path/to/file.py)'."""
    name, _, loc = raw.rpartition(" (")
    return f"{name} ({loc.rstrip(')').rsplit(':', 1)[0]})"


def progress(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="kubellm-http-bench-"))
    etcd = EmbeddedEtcd(tmp / "etcd")
    server: subprocess.Popen[bytes] | None = None
    load: Load | None = None
    log = tmp / "apiserver.log"
    report: dict[str, Any] = {}
    failed = False
    try:
        endpoint = await etcd.start()
        assert etcd.process is not None
        state = tmp / "state"
        server = start_server(state, endpoint, log, args.server_arg)
        url = await wait_ready(state, server, log)
        if not url.startswith("https://127.0.0.1:"):
            raise RuntimeError(f"the server is not on loopback: {url}")
        pki = state / "pki"
        target = Target(url=url, ca_file=str(pki / "serving-ca.crt"), cert_file=str(pki / "admin.crt"),
                        key_file=str(pki / "admin.key"), etcd=endpoint, server_pid=server.pid,
                        etcd_pid=etcd.process.pid, concurrency=args.concurrency)
        load = LocalLoad(target) if args.in_process else RemoteLoad(target)
        await load.start()
        progress(f"server pid {server.pid} at {url}, etcd pid {etcd.process.pid} at {endpoint}, "
                 f"load {'in-process' if args.in_process else f'pid {load.pid}'}; state in {tmp}")
        cpu0 = {"server": proc_cpu(server.pid), "etcd": proc_cpu(etcd.process.pid)}
        await run_bench(load, args, report)
        report["total_cpu"] = {"server": proc_cpu(server.pid) - cpu0["server"],
                               "etcd": proc_cpu(etcd.process.pid) - cpu0["etcd"]}
        if args.profile:
            await run_profile(load, args, server.pid, Path(args.profile), report)
    except Exception:
        failed = True
        if server is not None:
            progress(f"server log tail ({log}):\n{tail(log, 2000)}")
        raise
    finally:
        t_stop = time.perf_counter()
        if load is not None:
            with contextlib.suppress(Exception):
                await load.close()
        t_load = time.perf_counter()
        await asyncio.to_thread(stop_server, server)
        t_server = time.perf_counter()
        await etcd.stop()
        progress(f"stopped: load {t_load - t_stop:.1f}s, server {t_server - t_load:.1f}s, "
                 f"etcd {time.perf_counter() - t_server:.1f}s")
        if not failed and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            progress(f"kept {tmp}")
    return report


# ----- report ---------------------------------------------------------------------------------------


def print_report(r: dict[str, Any], args: argparse.Namespace) -> None:
    ops = r["ops"]
    where = "in the benchmark process" if args.in_process else "in a separate load process"
    print(f"\nconcurrency {args.concurrency}, {args.rounds} interleaved rounds of {args.ops} ops per operation, "
          f"TLS with client certificate, JSON; load generator {where}; CPU ms/op from /proc/<pid>/stat "
          f"(resolution {1000 / os.sysconf('SC_CLK_TCK'):.0f} ms per measurement)\n")
    print("| operation | ops/s | p50 ms | p99 ms | server CPU ms/op | etcd CPU ms/op | client CPU ms/op | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, m in ops.items():
        server = "-" if name.startswith("raw") else f"{m['server']:.2f}"
        print(f"| {name} | {m['ops']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {server} | {m['etcd']:.2f} | "
              f"{m['client']:.2f} | {m['errors']} |")
    for op, err in r.get("errors", {}).items():
        print(f"\nfirst error in {op}: `{err}`")


    print("\n| vs raw etcd (same run) | throughput |")
    print("|---|---:|")
    for label, a, b in (("create vs raw put", "create", "raw put"),
                        ("create vs raw txn create", "create", "raw txn create"),
                        ("merge patch vs raw txn create", "merge patch", "raw txn create"),
                        ("update vs raw txn create", "update", "raw txn create"),
                        ("get vs raw range", "get", "raw range"),
                        ("get rv=0 vs raw range", "get rv=0", "raw range")):
        print(f"| {label} | {ops[a]['ops'] / ops[b]['ops']:.0%} |")

    lists, fill = r["lists"], r["fill"]
    print(f"\nLIST of {args.list_size:,} objects in one namespace ({args.list_reps} repetitions, one at a time; "
          f"filled by HTTP create at concurrency {args.concurrency}: {fill['ok'] / fill['wall']:,.0f}/s, "
          f"server {fill['server_cpu'] * 1000 / fill['n']:.2f} CPU ms/op)\n")
    print("| list | reps | mean s | min s | max s | server CPU s | etcd CPU s | client CPU s | MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    labels = {"raw range": "raw etcd range (baseline)", "list": "LIST (consistent)",
              "list rv=0": "LIST resourceVersion=0", "list paged": "LIST paged, limit=500 (full walk)",
              "list table": "LIST as Table"}
    for mode, m in lists.items():
        reps = m["reps"]
        cpu = {k: m[k] / 1000 for k in ("server", "etcd", "client")}  # ms per list -> s per list
        server = "-" if mode == "raw range" else f"{cpu['server']:.2f}"
        print(f"| {labels[mode]} | {reps} | {m['mean'] / 1000:.3f} | {m['min'] / 1000:.3f} | {m['max'] / 1000:.3f} | "
              f"{server} | {cpu['etcd']:.2f} | {cpu['client']:.2f} | {m['bytes'] / 1e6:.1f} |")
    print("\nA resourceVersion=0 LIST is answered from the watch cache, a consistent LIST from etcd. "
          f"Consistent LIST vs raw etcd range: {lists['raw range']['mean'] / lists['list']['mean']:.0%} of raw speed.")

    w = r["watch"]
    d = sorted(x * 1000 for x in w["delays"]) or [float("nan")]
    print(f"\nwatch fan-out: {w['watchers']} watchers (one connection each), {w['n']} sequential merge patches, "
          "each after the previous was delivered to every watcher; delay = watcher receives the event "
          "(last byte) minus the moment the writer had read the PATCH response\n")
    last = sorted(x * 1000 for x in w["last"]) or [float("nan")]
    print("| watchers | events | deliveries | missed | p50 ms | p99 ms | max ms | min ms | last watcher p50 / p99 ms "
          "| server CPU ms/event | etcd CPU ms/event | client CPU ms/event |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    ne = max(w["n"], 1)
    print(f"| {w['watchers']} | {w['n']} | {w['deliveries']:,} | {w['missed']} | {statistics.median(d):.2f} | "
          f"{pct(d, 0.99):.2f} | {d[-1]:.2f} | {d[0]:.2f} | {statistics.median(last):.2f} / {pct(last, 0.99):.2f} | "
          f"{w['server_cpu'] * 1000 / ne:.2f} | {w['etcd_cpu'] * 1000 / ne:.2f} | {w['client_cpu'] * 1000 / ne:.2f} |")
    extra = []
    if w["unexpected"]:
        extra.append(f"{w['unexpected']} unexpected events")
    if w["stalls"]:
        extra.append(f"{w['stalls']} writes waited the full delivery timeout")
    if extra:
        print("\n" + "; ".join(extra))
    neg = sum(1 for x in d if x < 0)
    if neg:
        print(f"\n{neg} of {len(d)} deliveries arrived before the writer had read its response (negative delay).")
    tc = r.get("total_cpu")
    if tc:
        print(f"\nwhole run: server CPU {tc['server']:.1f} s, etcd CPU {tc['etcd']:.1f} s")

    for name, prof in r.get("profiles", {}).items():
        total = max(prof["samples"], 1)
        print(f"\n### server profile: {name} ({prof['samples']} busy samples at {args.profile_rate} Hz)\n")
        comps = ", ".join(f"{c} {k * 100 / total:.0f}%" for c, k in prof["components"] if k * 100 / total >= 1)
        print(f"by component (leaf frame): {comps}\n")
        print("| self % | function (self) | incl. % | kubellm function (inclusive) |")
        print("|---:|---|---:|---|")
        for i in range(max(len(prof["self"]), len(prof["inclusive"]))):
            s = prof["self"][i] if i < len(prof["self"]) else ("", 0)
            c = prof["inclusive"][i] if i < len(prof["inclusive"]) else ("", 0)
            print(f"| {s[1] * 100 / total:.1f} | {s[0]} | {c[1] * 100 / total:.1f} | {c[0]} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ops", type=int, default=1000, help="requests per measurement")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--list-size", type=int, default=10_000)
    p.add_argument("--list-reps", type=int, default=5)
    p.add_argument("--watchers", type=int, default=50)
    p.add_argument("--watch-events", type=int, default=200)
    p.add_argument("--in-process", action="store_true", help="run the load generator in this process")
    p.add_argument("--quick", action="store_true", help="smoke run: 200 ops, 2 rounds, list 1000, 10 watchers")
    p.add_argument("--profile", metavar="DIR", help="afterwards, py-spy the server per operation into DIR")
    p.add_argument("--profile-ops", type=int, default=3000, help="requests per operation in the profiled pass")
    p.add_argument("--profile-rate", type=int, default=500, help="py-spy samples per second")
    p.add_argument("--timeout", type=float, default=1800, help="abort the whole run after this many seconds")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (etcd data, server log)")
    p.add_argument("--server-arg", action="append", default=[], help="extra kubellm-apiserver argument (repeatable)")
    args = p.parse_args()
    if args.quick:
        args.ops, args.rounds, args.list_size, args.list_reps = 200, 2, 1000, 2
        args.watchers, args.watch_events, args.profile_ops = 10, 50, 500
    report = asyncio.run(_bounded(args))
    print_report(report, args)
    return 1 if any(m["errors"] for m in report["ops"].values()) or report["watch"]["missed"] else 0


async def _bounded(args: argparse.Namespace) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await asyncio.wait_for(amain(args), args.timeout)


if __name__ == "__main__":
    sys.exit(main())
