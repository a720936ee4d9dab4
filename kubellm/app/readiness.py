"""Waiting for a kubellm-apiserver process to serve: it writes its URL to `<state>/apiserver.url` once it
listens, and `/readyz` answers 200 once it is ready (etcd reachable, caches filled). Used by the tests, the
benchmarks and tools that start a server and then talk to it."""

from __future__ import annotations

import ssl
import subprocess
import time
import urllib.request
from pathlib import Path


def tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def is_ready(url: str, ca_file: Path) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    try:
        with urllib.request.urlopen(f"{url}/readyz", context=ctx, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def wait_until_ready(state: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60,
                     ca_file: Path | None = None) -> str:
    """The server's URL once `/readyz` is 200; RuntimeError if the process exits, TimeoutError after
    `timeout` seconds, both with the end of its log."""
    deadline = time.monotonic() + timeout
    url_file = state / "apiserver.url"
    ca = ca_file or state / "pki" / "serving-ca.crt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kubellm-apiserver exited with {proc.returncode}:\n{tail(log)}")
        if url_file.exists():
            url = url_file.read_text().strip()
            if is_ready(url, ca):
                return url
        time.sleep(0.1)
    raise TimeoutError(f"kubellm-apiserver not ready in {timeout}s:\n{tail(log)}")
