"""Running real kubellm-controller-manager processes for end-to-end tests: started with the test controllers
of `manager_plugin` (this directory on PYTHONPATH), health and metrics on free ports read back from the
manager's first JSON log line, stopped with SIGTERM (SIGKILL after a deadline) at the end."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import ROOT, _die_with_parent

E2E = Path(__file__).resolve().parent
MANAGER = ROOT / "cmd" / "kubellm-controller-manager"
FAST_ELECTION = ("--lease-duration", "10s", "--renew-deadline", "7s", "--retry-period", "1s")
"""Shorter than the defaults (15s, 10s, 2s) and within client-go's rules, to keep the tests short."""


def log_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


@dataclass
class Manager:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    identity: str = ""
    health: str = ""
    metrics: str = ""
    stopped: bool = field(default=False)

    def get(self, url: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def healthz(self, path: str = "/healthz") -> tuple[int, str]:
        return self.get(self.health + path)

    def metric(self, family: str, **labels: str) -> float | None:
        """A sample of the manager's /metrics, None when absent."""
        _, text = self.get(self.metrics + "/metrics")
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            metric, _, rest = series.partition("{")
            got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
            if metric == family and got == want:
                return float(value)
        return None

    def metrics_text(self) -> str:
        return self.get(self.metrics + "/metrics")[1]

    def events(self) -> list[str]:
        return [str(line.get("event")) for line in log_lines(self.log)]

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_manager(kubeconfig: Path, directory: Path, name: str, *args: str, timeout: float = 30,
                  plugin: bool = True) -> Manager:
    """A manager on `kubeconfig` with `args`; with `plugin`, also offering the test controllers."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"{name}.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(E2E), os.environ.get("PYTHONPATH", "")])}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(MANAGER), "--kubeconfig", str(kubeconfig), "--health-port", "0", "--metrics-port",
             "0", *(("--extra-controllers", "manager_plugin:CONTROLLERS") if plugin else ()), *args],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True,
            preexec_fn=_die_with_parent)
    manager = Manager(name, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"manager {name} exited with {proc.returncode}:\n{manager.tail()}")
        for line in log_lines(log):
            if line.get("event") == "serving health and metrics":
                manager.identity, manager.health, manager.metrics = line["identity"], line["health"], line["metrics"]
                return manager
        time.sleep(0.05)
    proc.kill()
    raise TimeoutError(f"manager {name} did not start:\n{manager.tail()}")


def stop_manager(manager: Manager) -> None:
    if manager.process.poll() is None:
        manager.process.send_signal(signal.SIGTERM)
        try:
            manager.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            manager.process.kill()
            manager.process.wait()


@contextlib.contextmanager
def managers() -> Iterator[list[Manager]]:
    """Every manager appended to the list is stopped at the end."""
    started: list[Manager] = []
    try:
        yield started
    finally:
        for m in started:
            stop_manager(m)
