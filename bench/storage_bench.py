"""Storage-layer benchmark: KubeLLM's etcd storage against a bare aiohttp gateway client, same run.

Starts its own etcd (the project's EmbeddedEtcd), then at the same concurrency measures:
  raw put / raw txn-create / raw range (bare aiohttp + orjson, no modelling) and
  storage.create / storage.get / storage.get_list (KubeLLM's EtcdStorage),
and prints ops/s, p50/p99 latency and the ratio storage/raw. Run:

    .venv/bin/python bench/storage_bench.py [--ops 1000] [--rounds 5] [--concurrency 32] [--list-size 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from samples import llmservice

from kubellm.registry.storage.etcd import EtcdConfig, EtcdStorage
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd
from kubellm.registry.storage.interface import ListOptions


def sample(name: str) -> dict[str, Any]:
    obj = llmservice(name)
    obj["metadata"] |= {"uid": "5f0c0a4e-0000-4000-8000-000000000000", "generation": 1,
                        "creationTimestamp": "2026-01-01T00:00:00Z"}
    return obj


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


class Raw:
    """The baseline: a bare aiohttp client on etcd's JSON gateway."""

    def __init__(self, endpoint: str, concurrency: int) -> None:
        self.url = endpoint + "/v3"
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2))

    async def call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(self.url + method, data=orjson.dumps(payload)) as r:
            out: dict[str, Any] = orjson.loads(await r.read())
            return out

    async def put(self, key: str, obj: dict[str, Any]) -> None:
        await self.call("/kv/put", {"key": b64(key), "value": b64(orjson.dumps(obj))})

    async def txn_create(self, key: str, obj: dict[str, Any]) -> None:
        k = b64(key)
        await self.call("/kv/txn", {"compare": [{"key": k, "target": "CREATE", "result": "EQUAL",
                                                 "create_revision": "0"}],
                                    "success": [{"request_put": {"key": k, "value": b64(orjson.dumps(obj))}}]})

    async def range(self, key: str) -> None:
        await self.call("/kv/range", {"key": b64(key)})

    async def range_prefix(self, prefix: str) -> None:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        await self.call("/kv/range", {"key": b64(prefix), "range_end": b64(end)})


class Acc:
    """Accumulates several interleaved rounds of one operation."""

    def __init__(self) -> None:
        self.n = 0
        self.wall = 0.0
        self.cpu = 0.0
        self.lat: list[float] = []

    def result(self) -> dict[str, float]:
        lat = sorted(self.lat)
        return {"ops": self.n / self.wall, "p50": statistics.median(lat) * 1000,
                "p99": lat[max(0, int(len(lat) * 0.99) - 1)] * 1000, "cpu_ms": self.cpu * 1000 / self.n}


async def measure(n: int, concurrency: int, op: Callable[[int], Awaitable[None]], acc: Acc | None = None
                  ) -> dict[str, float]:
    acc = acc or Acc()
    latencies = acc.lat
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - t)

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    acc.wall += time.perf_counter() - t0
    acc.cpu += time.process_time() - cpu0
    acc.n += n
    return acc.result()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        etcd = EmbeddedEtcd(Path(tmp) / "etcd")
        endpoint = await etcd.start()
        raw = Raw(endpoint, args.concurrency)
        storage = EtcdStorage(EtcdConfig(endpoints=(endpoint,), prefix="/registry", compaction_interval=0,
                                         pool_size=args.concurrency * 2))
        n, c = args.ops, args.concurrency
        accs: dict[str, Acc] = {k: Acc() for k in ("raw put", "raw txn create", "storage create",
                                                     "raw range (get)", "storage get")}
        try:
            # warm both clients' connection pools
            await measure(200, c, lambda i: raw.put(f"/warm/raw/{i}", sample(str(i))))
            await measure(200, c, lambda i: storage_create(storage, f"/warm/st/{i}", i))
            # Rounds interleave baseline and storage so disk and scheduler noise hits both alike.
            for rnd in range(args.rounds):
                await measure(n, c, lambda i, r=rnd: raw.put(f"/registry/raw-put/{r}/{i}", sample(f"o{i}")),
                              accs["raw put"])
                await measure(n, c, lambda i, r=rnd: storage_create(storage, f"/st/{r}/{i}", i),
                              accs["storage create"])
                await measure(n, c, lambda i, r=rnd: raw.txn_create(f"/registry/raw-txn/{r}/{i}", sample(f"o{i}")),
                              accs["raw txn create"])
                await measure(n, c, lambda i, r=rnd: raw.range(f"/registry/raw-txn/{r}/{i}"), accs["raw range (get)"])
                await measure(n, c, lambda i, r=rnd: storage_get(storage, f"/st/{r}/{i}"), accs["storage get"])
            results = {k: a.result() for k, a in accs.items()}
            ls = args.list_size
            await asyncio.gather(*(raw.put(f"/registry/list/{i:06d}", sample(f"o{i}")) for i in range(ls)))
            reps = max(10, args.list_reps)
            raw_list, st_list = Acc(), Acc()
            for _ in range(reps):
                await measure(1, 1, lambda i: raw.range_prefix("/registry/list/"), raw_list)
                await measure(1, 1, lambda i: storage_list(storage, "/list/"), st_list)
            results["raw range (list)"] = raw_list.result()
            results["storage list"] = st_list.result()
        finally:
            await raw.session.close()
            await storage.close()
            await etcd.stop()
        print_report(results, args)


async def storage_create(storage: EtcdStorage, key: str, i: int) -> None:
    await storage.create(key, sample(f"o{i}"))


async def storage_get(storage: EtcdStorage, key: str) -> None:
    await storage.get(key)


async def storage_list(storage: EtcdStorage, prefix: str) -> None:
    await storage.get_list(prefix, ListOptions())


def print_report(r: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(f"\nconcurrency {args.concurrency}, {args.rounds} interleaved rounds of {args.ops} ops per operation; "
          f"list of {args.list_size} objects, one at a time\n")
    print("| operation | ops/s | p50 ms | p99 ms | client CPU ms/op |")
    print("|---|---:|---:|---:|---:|")
    for name, m in r.items():
        print(f"| {name} | {m['ops']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {m['cpu_ms']:.3f} |")
    print("\n| ratio (storage / raw) | throughput |")
    print("|---|---:|")
    for label, a, b in (("create vs raw put", "storage create", "raw put"),
                        ("create vs raw txn create", "storage create", "raw txn create"),
                        ("get vs raw range", "storage get", "raw range (get)"),
                        ("list vs raw range", "storage list", "raw range (list)")):
        print(f"| {label} | {r[a]['ops'] / r[b]['ops']:.0%} |")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--ops", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--list-size", type=int, default=1000)
    p.add_argument("--list-reps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(p.parse_args()))
