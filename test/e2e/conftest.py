"""End-to-end fixtures: the real kubellm-apiserver process (with its embedded etcd), kubectl, clients."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubellm.app.readiness import wait_until_ready
from kubellm.server.certs import Pair, ensure_ca

ROOT = Path(__file__).resolve().parents[2]
AUDIT_POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version"]
  - level: RequestResponse
    resources:
      - group: model.kubellm.io
      - group: cluster.kubellm.io
      - group: iam.kubellm.io
        resources: [users]
      - group: authentication.k8s.io
        resources: [tokenreviews]
  - level: RequestResponse
    nonResourceURLs: ["/login"]
  - level: Metadata
"""


USED_SECRETS: set[str] = set()
"""Every secret the run sent (passwords, tokens, credentials): no server log or audit log may contain one."""
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
SHORTEST_SECRET = 8


def eventually(read: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 10) -> Any:
    """Poll `read()` until `ok(value)`; the last value, or AssertionError with it."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met: {value!r}")
        time.sleep(0.05)


def secret(value: str) -> str:
    """Remember `value` as a secret this run uses (and return it): each server's logs are checked for it
    when the server stops, whatever the order of the tests."""
    if len(value) >= SHORTEST_SECRET:
        USED_SECRETS.add(value)
    return value


def check_no_secrets(log: Path, audit: Path | None) -> None:
    """No secret of the run, no password hash and no bearer token in a server's log or audit log."""
    texts = {"server log": log.read_text(errors="replace")}
    if audit is not None and audit.exists():
        texts["audit log"] = audit.read_text(errors="replace")
    for where, text in texts.items():
        found = sorted(s for s in USED_SECRETS if s in text)
        assert not found, f"secrets found in the {where} of {log.parent}: {found}"
        assert "$argon2id$" not in text, f"a password hash in the {where} of {log.parent}"
        assert not JWT.search(text), f"a bearer token in the {where} of {log.parent}"


@dataclass(frozen=True)
class APIServer:
    url: str
    kubeconfig: Path
    state_dir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, env: dict[str, str] | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **(env or {})}
        proc = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, env=full_env,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc


def _die_with_parent() -> None:
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def running_apiserver(state: Path, *extra: str) -> Iterator[APIServer]:
    """A real kubellm-apiserver process (embedded etcd, port 0) with `extra` arguments, stopped after."""
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is required for the end-to-end tests")
    log = state / "apiserver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "cmd" / "kubellm-apiserver"), "--state-dir", str(state), "--secure-port", "0",
             "--etcd-compaction-interval", "0", *extra],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
            preexec_fn=_die_with_parent)  # never outlives a killed pytest
    try:
        url = wait_until_ready(state, proc, log)
        yield APIServer(url, state / "admin.kubeconfig", state, proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    credentials = state / "admin-credentials"
    if credentials.exists():
        secret(credentials.read_text().split("password: ", 1)[-1].strip())
    check_no_secrets(log, state / "audit.log")


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APIServer]:
    state = tmp_path_factory.mktemp("kubellm-state")
    (state / "audit-policy.yaml").write_text(AUDIT_POLICY)
    front_proxy_ca = Pair(state / "front-proxy-ca.crt", state / "front-proxy-ca.key")
    ensure_ca("kubellm-test-front-proxy-ca", front_proxy_ca)
    with running_apiserver(state, "--requestheader-client-ca-file", str(front_proxy_ca.cert),
                           "--requestheader-allowed-names", "front-proxy-client",
                           "--audit-log-path", str(state / "audit.log"),
                           "--audit-policy-file", str(state / "audit-policy.yaml")) as server:
        yield server
