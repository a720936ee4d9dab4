"""KubeLLM and kube-apiserver side by side: the same workload against both, on the same etcd, interleaved.

One etcd (EmbeddedEtcd in a temp dir) serves both servers under different prefixes: kubellm-apiserver
under /kubellm (`--etcd-prefix`), kube-apiserver v1.36 (from the project's cache, see
../shared/k8s/README.md and hack/install-deps.sh) under its default /registry. kube-apiserver serves
LLMService as a CRD in the same group and version (`model.kubellm.io/v1alpha1`, namespaced, status and
scale subresources); there is no aggregation here, so the group does not clash. Its structural schema is
derived at run time from KubeLLM's own OpenAPI v3 (`/openapi/v3/apis/model.kubellm.io/v1alpha1`): $refs
inlined, object metadata left to the server. Both run with etcd compaction off. Each server has its own
load-generator process (bench/_http_load.py): TLS, JSON, client certificates (system:masters on kube).

Measured, for each server, with each measurement bracketed by CPU readings of the server, of etcd (the
same process for both: the phases never overlap, so each phase's etcd CPU belongs to one server) and of
its load process, and of the whole machine (/proc/stat, to show how busy the shared host was):

  - create, consistent GET, GET resourceVersion=0, merge patch, update (PUT with resourceVersion):
    --rounds rounds of --ops requests at --concurrency, interleaved per operation (KubeLLM then kube in
    even rounds, kube then KubeLLM in odd ones);
  - filling --list-size objects (a create rate of its own), then LIST consistent, resourceVersion=0 and
    paged (limit 500), --list-reps times each, alternating servers;
  - peak RSS (VmHWM) of each server once the objects are in and listed;
  - watch fan-out: --watchers watches, --watch-events sequential merge patches, delivery delay p50/p99.

    .venv/bin/python bench/side_by_side.py            # --ops 1000 --rounds 4 --list-size 10000 --list-reps 3
    .venv/bin/python bench/side_by_side.py --quick    # about a minute: 150 ops, 2 rounds, list 500, 10 watchers

Prints one markdown table (and `--json FILE` writes the raw numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _http_load import Target, die_with_parent, process_tree
from http_bench import Acc, RemoteLoad, pct, progress, start_server, stop_server, wait_ready

from kubellm.app.readiness import tail
from kubellm.devcluster.controlplane import ControlPlane
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd

GROUP, VERSION, PLURAL, KIND = "model.kubellm.io", "v1alpha1", "llmservices", "LLMService"
NAMESPACES = ("warm", "bench", "list", "watch")
SERVERS = ("kubellm", "kube")
OPS = ("create", "get", "get rv=0", "merge patch", "update")
LIST_MODES = ("list", "list rv=0", "list paged")


# ----- the CRD, from KubeLLM's own OpenAPI ------------------------------------------------------------

def structural(node: Any, schemas: dict[str, Any], depth: int = 0) -> Any:
    """An OpenAPI v3 schema as a CRD's structural schema: $ref and single-$ref allOf inlined, GVK extension
    dropped. Only schema positions are walked (not default or enum values)."""
    if depth > 40:
        raise ValueError("schema too deep (a $ref cycle?)")
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is None and len(node.get("allOf", ())) == 1 and "$ref" in node["allOf"][0]:
        ref = node.pop("allOf")[0]["$ref"]
    if ref is not None:
        base = structural(schemas[ref.rsplit("/", 1)[1]], schemas, depth + 1)
        node = {**base, **node}
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "x-kubernetes-group-version-kind":
            continue
        if k == "properties":
            out[k] = {p: structural(s, schemas, depth + 1) for p, s in v.items()}
        elif k in ("items", "additionalProperties", "not") and isinstance(v, dict):
            out[k] = structural(v, schemas, depth + 1)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [structural(s, schemas, depth + 1) for s in v]
        else:
            out[k] = v
    return out


def llmservice_crd(openapi_v3: dict[str, Any]) -> dict[str, Any]:
    schemas = openapi_v3["components"]["schemas"]
    name = next(k for k in schemas if k.endswith(f".{VERSION}.{KIND}"))
    schema = structural(schemas[name], schemas)
    schema["properties"]["metadata"] = {"type": "object"}  # the server's own ObjectMeta
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": PLURAL, "singular": KIND.lower(), "kind": KIND, "listKind": f"{KIND}List"},
                 "versions": [{"name": VERSION, "served": True, "storage": True, "schema": {"openAPIV3Schema": schema},
                               "subresources": {"status": {}, "scale": {
                                   "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                                   "labelSelectorPath": ".status.selector"}}}]}}


def fetch_json(url: str, ca: str, cert: str, key: str) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    with urllib.request.urlopen(url, context=ctx, timeout=30) as r:
        out: dict[str, Any] = json.loads(r.read())
    return out


# ----- kube-apiserver -----------------------------------------------------------------------------------

def start_kube(cp: ControlPlane, etcd: EmbeddedEtcd) -> subprocess.Popen[bytes]:
    cp.dir.mkdir(parents=True, exist_ok=True)
    cp._pki()  # CA, serving and admin (system:masters) certificates, front proxy, service-account keys
    argv = [cp.binaries["kube-apiserver"], *cp._apiserver_args(etcd)]
    with open(cp.dir / "kube-apiserver.log", "wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=die_with_parent)


def wait_for(check: Any, what: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited ({proc.returncode})")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not within {timeout:.0f}s")


def prepare_kube(cp: ControlPlane, proc: subprocess.Popen[bytes], crd: dict[str, Any]) -> None:
    wait_for(lambda: cp.request("GET", "/readyz", timeout=5).status == 200, "kube-apiserver /readyz", proc)
    for ns in NAMESPACES:
        r = cp.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": ns}})
        if r.status not in (201, 409):
            raise RuntimeError(f"namespace {ns}: {r.status} {r.body}")
    r = cp.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    if r.status != 201:
        raise RuntimeError(f"CRD: {r.status} {json.dumps(r.body)[:2000]}")

    def established() -> bool:
        got = cp.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{PLURAL}.{GROUP}").body
        conds = {c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or []}
        return conds.get("Established") == "True" and \
            cp.request("GET", f"/apis/{GROUP}/{VERSION}/namespaces/warm/{PLURAL}").status == 200
    wait_for(established, "the LLMService CRD", proc, 60)


def etcd_version(endpoint: str) -> str:
    with urllib.request.urlopen(f"{endpoint}/version", timeout=10) as r:
        return str(json.loads(r.read()).get("etcdserver", "?"))


def peak_rss_mib(pid: int) -> tuple[float, float]:
    """(VmHWM, VmRSS) of a process, MiB; of a server with workers, summed over the supervisor and workers."""
    hwm = rss = 0.0
    for member in process_tree(pid):
        status = Path(f"/proc/{member}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        hwm += int(fields["VmHWM"].split()[0]) / 1024
        rss += int(fields["VmRSS"].split()[0]) / 1024
    return hwm, rss


# ----- the run ------------------------------------------------------------------------------------------

class Phase(Acc):
    """Acc plus the machine's busy share over the measured intervals."""

    def __init__(self) -> None:
        super().__init__()
        self.host_busy = self.host_total = 0

    def add(self, m: dict[str, Any]) -> None:
        super().add(m)
        self.host_busy += m["host_busy"]
        self.host_total += m["host_total"]

    def result(self) -> dict[str, float]:
        return {**super().result(), "host": self.host_busy / self.host_total if self.host_total else 0.0}


async def run(loads: dict[str, RemoteLoad], pids: dict[str, int], args: argparse.Namespace,
              report: dict[str, Any]) -> None:
    n, c = args.ops, args.concurrency
    t0 = time.perf_counter()
    wait = max(120.0, n / 20)
    for op in ("create", "get", "get rv=0", "merge patch", "update"):  # warm pools, TLS, code paths; not counted
        for s in SERVERS:
            await loads[s].call("run", wait + 30, op=op, n=min(200, n), rnd=9999, ns="warm", concurrency=c,
                                timeout=wait)
    accs = {s: {op: Phase() for op in OPS} for s in SERVERS}
    for rnd in range(args.rounds):
        order = SERVERS if rnd % 2 == 0 else SERVERS[::-1]
        for op in OPS:
            for s in order:
                accs[s][op].add(await loads[s].call("run", wait + 30, op=op, n=n, rnd=rnd, ns="bench", concurrency=c,
                                                    timeout=wait))
        progress(f"round {rnd + 1}/{args.rounds} done ({time.perf_counter() - t0:.0f}s)")

    lists = {s: {mode: Phase() for mode in ("fill", *LIST_MODES)} for s in SERVERS}
    for s in SERVERS:
        fill = await loads[s].call("fill", 3600, ns="list", count=args.list_size, timeout=3600)
        if fill["errors"]:
            raise RuntimeError(f"{s}: filling the list namespace failed: {fill['first_error']}")
        lists[s]["fill"].add(fill)
        accs[s]["fill"] = lists[s].pop("fill")
        progress(f"{s}: filled {args.list_size} objects in {fill['wall']:.1f}s ({time.perf_counter() - t0:.0f}s)")
    for rep in range(args.list_reps):
        for mode in LIST_MODES:
            for s in (SERVERS if rep % 2 == 0 else SERVERS[::-1]):
                m = await loads[s].call("list_once", 900, ns="list", mode=mode, timeout=600)
                if m["items"] != args.list_size:
                    raise RuntimeError(f"{s} {mode} returned {m['items']} items, expected {args.list_size}")
                lists[s][mode].add(m)
    progress(f"lists done ({time.perf_counter() - t0:.0f}s)")
    report["rss"] = {s: peak_rss_mib(pids[s]) for s in SERVERS}

    watch = {}
    for s in SERVERS:
        watch[s] = await loads[s].call("watch_fanout", 900, ns="watch", watchers=args.watchers,
                                       events=args.watch_events, timeout=600)
    progress(f"watch fan-out done ({time.perf_counter() - t0:.0f}s)")
    report["ops"] = {s: {op: a.result() for op, a in accs[s].items()} for s in SERVERS}
    report["errors"] = {f"{s} {op}": a.first_error for s in SERVERS for op, a in accs[s].items() if a.errors}
    report["lists"] = {s: {mode: a.result() for mode, a in lists[s].items()} for s in SERVERS}
    report["watch"] = watch


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="kubellm-side-by-side-"))
    etcd = EmbeddedEtcd(tmp / "etcd")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    loads: dict[str, RemoteLoad] = {}
    report: dict[str, Any] = {"args": vars(args)}
    failed = False
    log = tmp / "kubellm-apiserver.log"
    cp = ControlPlane(tmp / "kube", "bench", extra_apiserver_args=("--etcd-compaction-interval=0",))
    try:
        endpoint = await etcd.start()
        assert etcd.process is not None
        state = tmp / "kubellm"
        procs["kubellm"] = start_server(state, endpoint, log, ["--etcd-prefix", "/kubellm", *args.server_arg])
        procs["kube"] = start_kube(cp, etcd)
        url = await wait_ready(state, procs["kubellm"], log)
        pki = state / "pki"
        creds = (str(pki / "serving-ca.crt"), str(pki / "admin.crt"), str(pki / "admin.key"))
        doc = await asyncio.to_thread(fetch_json, f"{url}/openapi/v3/apis/{GROUP}/{VERSION}", *creds)
        await asyncio.to_thread(prepare_kube, cp, procs["kube"], llmservice_crd(doc))
        report["versions"] = {"kube": cp.request("GET", "/version").body.get("gitVersion"),
                              "etcd": (await asyncio.to_thread(etcd_version, endpoint))}
        targets = {
            "kubellm": Target(url=url, ca_file=creds[0], cert_file=creds[1], key_file=creds[2], etcd=endpoint,
                              server_pid=procs["kubellm"].pid, etcd_pid=etcd.process.pid, concurrency=args.concurrency),
            "kube": Target(url=cp.url, ca_file=str(cp.ca.cert), cert_file=str(cp.admin.cert),
                           key_file=str(cp.admin.key), etcd=endpoint, server_pid=procs["kube"].pid,
                           etcd_pid=etcd.process.pid, concurrency=args.concurrency)}
        for s in SERVERS:
            loads[s] = RemoteLoad(targets[s])
            await loads[s].start()
        progress(f"kubellm pid {procs['kubellm'].pid} at {url}; kube-apiserver {report['versions']['kube']} "
                 f"pid {procs['kube'].pid} at {cp.url}; etcd pid {etcd.process.pid} at {endpoint}; state in {tmp}")
        await run(loads, {s: p.pid for s, p in procs.items()}, args, report)
        # kube-apiserver answers consistent LISTs from its watch cache only if etcd can report watch progress
        # (etcd 3.4.31+, 3.5.13+); otherwise it reads etcd, and says so in its log at start
        report["kube_consistent_list"] = "etcd" if "RequestWatchProgress feature is not supported" in \
            (cp.dir / "kube-apiserver.log").read_text(errors="replace") else "watch cache"
    except Exception:
        failed = True
        progress(f"kubellm-apiserver log tail ({log}):\n{tail(log, 1500)}")
        progress(f"kube-apiserver log tail:\n{tail(cp.dir / 'kube-apiserver.log', 1500)}")
        raise
    finally:
        for load in loads.values():
            with contextlib.suppress(Exception):
                await load.close()
        for p in procs.values():
            await asyncio.to_thread(stop_server, p)
        await etcd.stop()
        if not failed and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            progress(f"kept {tmp}")
    return report


# ----- report -------------------------------------------------------------------------------------------

def cells(a: dict[str, Any], b: dict[str, Any], per: float = 1.0) -> str:
    """server, etcd and client CPU ms (per op, or per `per` ops) for both, and the machine's busy share."""
    return " | ".join([*(f"{a[k] * per:.2f} | {b[k] * per:.2f}" for k in ("server", "etcd", "client")),
                       f"{a['host']:.0%} / {b['host']:.0%}"])


def table(r: dict[str, Any], args: argparse.Namespace) -> str:
    k, q = r["ops"]["kubellm"], r["ops"]["kube"]
    out = ["| operation | KubeLLM | kube-apiserver | KubeLLM / kube | server CPU ms/op KubeLLM | kube "
           "| etcd CPU ms/op KubeLLM | kube | client CPU ms/op KubeLLM | kube | machine busy KubeLLM / kube |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    names = {"create": "create", "get": "consistent GET", "get rv=0": "GET resourceVersion=0",
             "merge patch": "merge patch", "update": "update (PUT)", "fill": f"create, filling {args.list_size:,}"}
    for op in (*OPS, "fill"):
        a, b = k[op], q[op]
        out.append(f"| {names[op]} | {a['ops']:,.0f}/s | {b['ops']:,.0f}/s | {a['ops'] / b['ops']:.2f}x | "
                   f"{cells(a, b)} |")
    lk, lq = r["lists"]["kubellm"], r["lists"]["kube"]
    for mode, label in (("list", "consistent"), ("list rv=0", "resourceVersion=0"), ("list paged", "paged, limit 500")):
        a, b = lk[mode], lq[mode]
        out.append(f"| LIST {args.list_size:,} {label} (mean of {a['n']}; CPU ms/list) | {a['mean']:,.0f} ms | "
                   f"{b['mean']:,.0f} ms | {b['mean'] / a['mean']:.2f}x | {cells(a, b)} |")
    w = {s: r["watch"][s] for s in SERVERS}
    d = {s: sorted(x * 1000 for x in w[s]["delays"]) or [float("nan")] for s in SERVERS}
    ws = {s: {**{k: w[s][f"{k}_cpu"] * 1000 / max(w[s]["n"], 1) for k in ("server", "etcd", "client")},
              "host": w[s]["host_busy"] / max(w[s]["host_total"], 1)} for s in SERVERS}
    p = {s: (statistics.median(d[s]), pct(d[s], 0.99)) for s in SERVERS}
    out.append(f"| {args.watchers} watchers, {w['kubellm']['n']} sequential patches: delivery p50 / p99 "
               f"(CPU ms/event) | {p['kubellm'][0]:.2f} / {p['kubellm'][1]:.2f} ms | {p['kube'][0]:.2f} / "
               f"{p['kube'][1]:.2f} ms | {p['kube'][0] / p['kubellm'][0]:.2f}x / {p['kube'][1] / p['kubellm'][1]:.2f}x "
               f"| {cells(ws['kubellm'], ws['kube'])} |")
    rk, rq = r["rss"]["kubellm"], r["rss"]["kube"]
    out.append(f"| peak RSS (VmHWM) with {args.list_size:,} objects | {rk[0]:,.0f} MiB | {rq[0]:,.0f} MiB | "
               f"{rk[0] / rq[0]:.2f}x | | | | | | | |")
    return "\n".join(out)


def print_report(r: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\nKubeLLM vs kube-apiserver {r['versions']['kube']} (LLMService as a CRD), same etcd "
          f"{r['versions']['etcd']}; concurrency "
          f"{args.concurrency}, {args.rounds} interleaved rounds of {args.ops} requests per operation, TLS with client "
          "certificates, JSON, ~1 KiB objects; each server driven by its own load process\n")
    print(table(r, args))
    print("\nKubeLLM / kube: throughput ratio for requests, kube time / KubeLLM time for LIST and watch delay "
          "(> 1: KubeLLM ahead), RSS ratio (< 1: KubeLLM smaller). CPU from /proc/<pid>/stat over exactly the "
          "measured intervals (10 ms ticks); etcd is one process for both, attributed by phase. Machine busy: "
          "share of all cores busy over that server's measured intervals (/proc/stat), everything included. "
          "kube-apiserver served the consistent LISTs from "
          f"{r['kube_consistent_list']}; resourceVersion=0 is from each server's watch cache.")
    for s in SERVERS:
        nerr = sum(int(m["errors"]) for m in r["ops"][s].values())
        w = r["watch"][s]
        if nerr or w["missed"] or w["unexpected"]:
            print(f"\n{s}: {nerr} request errors, {w['missed']} missed and {w['unexpected']} unexpected watch events")
    for op, err in r.get("errors", {}).items():
        print(f"\nfirst error in {op}: `{err}`")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ops", type=int, default=1000, help="requests per measurement")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--list-size", type=int, default=10_000)
    p.add_argument("--list-reps", type=int, default=3)
    p.add_argument("--watchers", type=int, default=50)
    p.add_argument("--watch-events", type=int, default=200)
    p.add_argument("--quick", action="store_true", help="about a minute: 150 ops, 2 rounds, list 500 x2, 10 watchers")
    p.add_argument("--timeout", type=float, default=2400, help="abort the whole run after this many seconds")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (etcd data, server logs)")
    p.add_argument("--json", metavar="FILE", help="also write the raw numbers here")
    p.add_argument("--server-arg", action="append", default=[], help="extra kubellm-apiserver argument (repeatable)")
    args = p.parse_args()
    if args.quick:
        args.ops, args.rounds, args.list_size, args.list_reps = 150, 2, 500, 2
        args.watchers, args.watch_events = 10, 30
    report = asyncio.run(_bounded(args))
    if args.json:
        Path(args.json).write_text(json.dumps(report))
    print_report(report, args)
    bad = report["errors"] or any(report["watch"][s]["missed"] for s in SERVERS)
    return 1 if bad else 0


async def _bounded(args: argparse.Namespace) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await asyncio.wait_for(amain(args), args.timeout)


if __name__ == "__main__":
    sys.exit(main())
