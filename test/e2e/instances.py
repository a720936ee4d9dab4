"""Several real kubellm-apiserver processes for the high-availability tests (issue #12): an etcd the test owns,
servers launched on it (or on their own embedded etcd) with a state directory each, and plain HTTPS requests
with a client certificate or a bearer token."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import ROOT, _die_with_parent

from kubellm.app.readiness import tail, wait_until_ready
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd, EtcdTLS
from kubellm.server.certs import PKI


def etcd_flags(etcd: EmbeddedEtcd, tls: EtcdTLS) -> list[str]:
    return ["--etcd-servers", etcd.endpoint, "--etcd-cafile", str(tls.ca_file), "--etcd-certfile",
            str(tls.client_cert), "--etcd-keyfile", str(tls.client_key)]


def shared_flags(pki: PKI, encryption: Path) -> list[str]:
    """What two replicas mount from the same Secrets: the serving certificate, the client CA, the keys."""
    return ["--tls-cert-file", str(pki.serving.cert), "--tls-private-key-file", str(pki.serving.key),
            "--client-ca-file", str(pki.client_ca.cert), "--encryption-provider-config", str(encryption)]


def launch(state: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    """kubellm-apiserver with its own state directory, port 0, `args` (and `env` added to the environment); its
    log in the state directory."""
    state.mkdir(parents=True, exist_ok=True)
    log = state / "apiserver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "cmd" / "kubellm-apiserver"), "--state-dir", str(state), "--secure-port", "0",
             "--etcd-compaction-interval", "0", *args],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})}, start_new_session=True,
            preexec_fn=_die_with_parent)
    return proc, log


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def failed_start(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> tuple[int, str]:
    """A server expected to refuse to start: its exit code and its whole output."""
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise AssertionError(f"the server did not exit:\n{tail(log)}") from None
    return code, log.read_text(errors="replace")


@dataclass
class Instance:
    url: str
    state: Path
    process: subprocess.Popen[bytes]
    log: Path
    ca: Path
    cert: tuple[Path, Path] | None = None
    """A client certificate (cert, key) for admin requests."""

    @classmethod
    def start(cls, state: Path, *args: str, ca: Path | None = None, cert: tuple[Path, Path] | None = None,
              timeout: float = 90, env: dict[str, str] | None = None) -> Instance:
        proc, log = launch(state, *args, env=env)
        try:
            url = wait_until_ready(state, proc, log, timeout=timeout, ca_file=ca)
        except BaseException:
            stop(proc)
            raise
        pki = state / "pki"
        return cls(url, state, proc, log, ca or pki / "serving-ca.crt",
                   cert or (pki / "admin.crt", pki / "admin.key"))

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                admin: bool = True, timeout: float = 15) -> tuple[int, Any]:
        """Status and decoded body (text when not JSON); the admin certificate unless `token` is given."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if token is None and admin and self.cert is not None:
            ctx.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
        host, port = self.url.removeprefix("https://").rsplit(":", 1)
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=timeout)
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")

    def login(self, username: str, password: str) -> str:
        code, body = self.request("POST", "/login", {"username": username, "password": password}, admin=False)
        assert code == 200, body
        token: str = body["status"]["token"]
        return token

    def stop(self) -> int:
        return stop(self.process)


def admin_password(state: Path) -> str:
    return dict(line.split(": ", 1) for line in (state / "admin-credentials").read_text().splitlines())["password"]
