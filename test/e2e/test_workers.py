"""`--workers 2`: one port served by two worker processes (issue: performance, item 1). Every request here opens
a connection of its own, so the kernel spreads them over both workers, and each worker has its own watch cache:
what one worker wrote, the other must serve at once to a consistent read and to a watch."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import eventually
from instances import Instance

LLM = "/apis/model.kubellm.io/v1alpha1/namespaces/default/llmservices"


def llmservice(name: str) -> dict[str, object]:
    return {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"model": "Qwen/Qwen2.5-3B-Instruct"}}


def children(pid: int) -> list[int]:
    pids: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return [p for p in pids if b"kubellm.app.apiserver" in Path(f"/proc/{p}/cmdline").read_bytes()]


def log_records(server: Instance) -> list[dict[str, object]]:
    records = []
    for line in server.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def list_count(server: Instance) -> float:
    code, text = server.request("GET", "/metrics")
    assert code == 200
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{") and 'resource="llmservices"' in line and 'verb="LIST"' in line \
                and 'code="200"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    instance = Instance.start(tmp_path_factory.mktemp("workers"), "--workers", "2", "--log-format", "json")
    try:
        yield instance
    finally:
        instance.stop()


def test_two_workers_serve_one_port_and_each_others_writes(server: Instance) -> None:
    code, text = server.request("GET", "/readyz?verbose")
    assert code == 200 and "[+]workers ok" in text, text
    assert len(children(server.process.pid)) == 2
    for i in range(30):
        code, created = server.request("POST", LLM, llmservice(f"w-{i}"))
        assert code == 201, created
        code, got = server.request("GET", f"{LLM}/w-{i}")  # a consistent read, maybe from the other worker's cache
        assert code == 200 and got["metadata"]["uid"] == created["metadata"]["uid"], got
        rv = created["metadata"]["resourceVersion"]
        code, listed = server.request("GET", f"{LLM}?resourceVersion={rv}&resourceVersionMatch=NotOlderThan")
        assert code == 200 and f"w-{i}" in {o["metadata"]["name"] for o in listed["items"]}
    served_by = {r.get("worker") for r in log_records(server) if r.get("event") == "request"}
    assert served_by >= {0, 1}, served_by


def test_metrics_sum_every_worker(server: Instance) -> None:
    before = list_count(server)
    for _ in range(12):
        assert server.request("GET", LLM)[0] == 200
    assert list_count(server) - before == 12


def test_a_watch_on_one_worker_sees_a_write_through_the_other(server: Instance) -> None:
    code, created = server.request("POST", LLM, llmservice("watched"))
    assert code == 201
    rv = created["metadata"]["resourceVersion"]
    ctx = ssl.create_default_context(cafile=str(server.ca))
    assert server.cert is not None
    ctx.load_cert_chain(str(server.cert[0]), str(server.cert[1]))
    host, port = server.url.removeprefix("https://").rsplit(":", 1)
    for attempt in range(6):  # new connections: both workers' watches are exercised
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=15)
        conn.request("GET", f"{LLM}?watch=1&resourceVersion={rv}&fieldSelector=metadata.name%3Dwatched")
        resp = conn.getresponse()
        assert resp.status == 200
        patch = {"metadata": {"labels": {"attempt": str(attempt)}}}
        ctx2 = ssl.create_default_context(cafile=str(server.ca))
        ctx2.load_cert_chain(str(server.cert[0]), str(server.cert[1]))
        writer = http.client.HTTPSConnection(host, int(port), context=ctx2, timeout=15)
        writer.request("PATCH", f"{LLM}/watched", body=json.dumps(patch),
                       headers={"Content-Type": "application/merge-patch+json"})
        written = json.loads(writer.getresponse().read())
        writer.close()
        event = json.loads(resp.readline())
        assert event["type"] == "MODIFIED", event
        assert event["object"]["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
        rv = written["metadata"]["resourceVersion"]
        conn.close()


def test_the_sweeps_run_in_one_process(server: Instance) -> None:
    leaders = [r for r in log_records(server) if r.get("event") == "became the leader"]
    assert len(leaders) == 1, leaders
    code, _ = server.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                            "metadata": {"name": "swept"}})
    assert code == 201
    assert server.request("DELETE", "/api/v1/namespaces/swept")[0] == 200
    eventually(lambda: server.request("GET", "/api/v1/namespaces/swept")[0], lambda c: c == 404, timeout=20)


def readyz(server: Instance) -> str:
    try:
        _, text = server.request("GET", "/readyz?verbose", timeout=0.5)
    except OSError:
        return "no answer"  # a connection the kernel queued for the dead worker's sockets
    return str(text)


def test_a_killed_worker_is_started_again_and_readyz_says_so_meanwhile(server: Instance) -> None:
    before = children(server.process.pid)
    os.kill(before[0], signal.SIGKILL)
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen.append(readyz(server))
        now = children(server.process.pid)
        if len(now) == 2 and before[0] not in now and "readyz check passed" in seen[-1] and \
                any("[-]workers failed" in s for s in seen):
            break
        time.sleep(0.1)
    assert any("[-]workers failed" in s for s in seen), seen[-5:]
    assert "readyz check passed" in seen[-1], seen[-5:]
    records = log_records(server)
    assert any(r.get("event") == "worker exited; starting it again" and r.get("pid") == before[0] for r in records)
    for i in range(10):
        assert server.request("GET", f"{LLM}/w-{i}")[0] == 200


def test_sigterm_stops_every_process_and_ends_open_watches(server: Instance) -> None:
    workers = children(server.process.pid)
    ctx = ssl.create_default_context(cafile=str(server.ca))
    assert server.cert is not None
    ctx.load_cert_chain(str(server.cert[0]), str(server.cert[1]))
    host, port = server.url.removeprefix("https://").rsplit(":", 1)
    watches = []
    for _ in range(6):  # on both workers, most likely: they must not hold the shutdown for its whole timeout
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
        conn.request("GET", f"{LLM}?watch=1")
        assert conn.getresponse().status == 200
        watches.append(conn)
    began = time.monotonic()
    assert server.stop() == 0  # SIGTERM; stop() SIGKILLs after 30 s, which would be -9
    assert time.monotonic() - began < 20
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or b"Z" in Path(f"/proc/{pid}/stat").read_bytes().split()[2]
