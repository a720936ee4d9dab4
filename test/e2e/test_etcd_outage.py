"""A real kubellm-apiserver on an etcd the test controls (issue #12): started before etcd is up, it waits for it
and becomes ready once etcd answers; with etcd stalled (SIGSTOP), requests that need etcd fail with a 504 Timeout
Status at the etcd deadline (or sooner, at the request's own `timeout`), `/readyz` fails, and all is well again
once etcd resumes."""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import ROOT, _die_with_parent, check_no_secrets

from kubellm.app.etcd_pki import ensure_etcd_pki
from kubellm.app.readiness import tail, wait_until_ready
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd, EtcdTLS

LLMS = "/apis/model.kubellm.io/v1alpha1/namespaces/default/llmservices"


class Client:
    def __init__(self, url: str, state: Path) -> None:
        self.host, port = url.removeprefix("https://").rsplit(":", 1)
        self.port = int(port)
        pki = state / "pki"
        self.ctx = ssl.create_default_context(cafile=str(pki / "serving-ca.crt"))
        self.ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def get(self, path: str) -> tuple[int, Any, float]:
        """Status, decoded body (or text) and seconds taken."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30)
        started = time.monotonic()
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        return resp.status, body, time.monotonic() - started


def launch(state: Path, etcd: EmbeddedEtcd, tls: EtcdTLS, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    """kubellm-apiserver on `etcd` (started or not), its log in the state directory."""
    log = state / "apiserver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "cmd" / "kubellm-apiserver"), "--state-dir", str(state), "--secure-port", "0",
             "--etcd-servers", etcd.endpoint, "--etcd-cafile", str(tls.ca_file), "--etcd-certfile",
             str(tls.client_cert), "--etcd-keyfile", str(tls.client_key), *extra],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True, preexec_fn=_die_with_parent)
    return proc, log


async def logged(proc: subprocess.Popen[bytes], log: Path, text: str, timeout: float = 30) -> None:
    """Wait until the server's log has `text`, the server still running."""
    deadline = time.monotonic() + timeout
    while text not in tail(log, 100_000):
        assert proc.poll() is None and time.monotonic() < deadline, tail(log)
        await asyncio.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def eventually_ok(client: Client, path: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status, body, _ = client.get(path)
        if status == 200:
            return
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.2)


async def test_server_starts_before_etcd_and_answers_504_while_etcd_is_stalled(tmp_path: Path) -> None:
    tls = ensure_etcd_pki(tmp_path / "etcd-pki")
    etcd = EmbeddedEtcd(tmp_path / "etcd", progress_notify_interval="1s", tls=tls)  # not started yet
    state = tmp_path / "state"
    state.mkdir()
    proc, log = launch(state, etcd, tls, "--etcd-compaction-interval", "0", "--etcd-request-timeout", "1s",
                       "--etcd-list-timeout", "2s", "--etcd-healthcheck-timeout", "1s")
    try:
        # no etcd yet: the server waits for it (the old client crashed in its constructor)
        await logged(proc, log, "waiting for etcd")
        await asyncio.sleep(1.0)
        assert proc.poll() is None, tail(log)
        await etcd.start()
        client = Client(wait_until_ready(state, proc, log), state)
        status, body, _ = client.get(LLMS)
        assert status == 200, body

        assert etcd.process is not None
        etcd.process.send_signal(signal.SIGSTOP)
        try:
            # a consistent list asks etcd for its revision first (to answer from the watch cache once caught up):
            # 504 at the request deadline (1 s), not after the stall
            status, body, took = client.get(LLMS)
            assert (status, body["kind"], body["reason"], body["code"]) == (504, "Status", "Timeout", 504), body
            assert 1 <= took < 5, took
            # the request's own timeout is shorter: it decides
            status, body, took = client.get(LLMS + "?timeout=500ms")
            assert (status, body["reason"]) == (504, "Timeout") and took < 1.8, (body, took)
            # a get (also from etcd, no resourceVersion): the request deadline of 1 s
            status, body, took = client.get(LLMS + "/nothing")
            assert (status, body["reason"]) == (504, "Timeout") and 1 <= took < 4, (body, took)
            status, body, took = client.get("/readyz?verbose")
            assert status == 500 and "[-]etcd failed" in body and took < 4, (body, took)
            # what the watch cache holds is still served
            status, body, took = client.get(LLMS + "?resourceVersion=0")
            assert status == 200 and took < 1, (body, took)
        finally:
            etcd.process.send_signal(signal.SIGCONT)
        eventually_ok(client, LLMS)
        eventually_ok(client, "/readyz")
    finally:
        stop(proc)
        await etcd.stop()
    check_no_secrets(log, None)


async def test_server_waiting_for_etcd_stops_on_sigterm(tmp_path: Path) -> None:
    tls = ensure_etcd_pki(tmp_path / "etcd-pki")
    etcd = EmbeddedEtcd(tmp_path / "etcd", tls=tls)  # never started
    state = tmp_path / "state"
    state.mkdir()
    proc, log = launch(state, etcd, tls)
    try:
        await logged(proc, log, "waiting for etcd")
        assert stop(proc) == 0, tail(log)
        assert "kubellm-apiserver stopped" in tail(log, 100_000)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
