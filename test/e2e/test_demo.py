"""The README's start command as a newcomer meets it: `python -m kubellm.devcluster demo` (what
hack/local-up.sh runs after installing) brings up KubeLLM, two member GPU clusters and the controller
manager; `kubectl get clusters` shows both Ready with their GPUs; Ctrl-C stops every process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, _die_with_parent
from hostcluster import require_binaries


def test_demo_starts_ready_members_and_stops_cleanly(tmp_path: Path) -> None:
    require_binaries("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    state = tmp_path / "state"
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubellm.devcluster", "demo", "--state-dir", str(state),
             "--cluster-probe-interval", "2s", "--", "--secure-port", "0"],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, preexec_fn=_die_with_parent)
    try:
        began = time.monotonic()
        while ">> ready." not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() - began < 300, log.read_text()  # a deadline, not a measurement
            time.sleep(0.5)
        env = {**os.environ, "KUBECONFIG": str(state / "admin.kubeconfig")}
        table = subprocess.run(["kubectl", "get", "clusters"], env=env, capture_output=True, text=True, check=True,
                               timeout=30).stdout.splitlines()
        rows = {line.split()[0]: line.split()[1:5] for line in table[1:]}
        assert rows["gpu-a"][0] == "True" and rows["gpu-a"][2:] == ["4/4", "1"], table
        assert rows["gpu-b"][0] == "True" and rows["gpu-b"][2:] == ["8/8", "2"], table
        children = _descendants(proc.pid)
        assert len(children) >= 10, children  # apiserver, manager, 2 x (etcd, 3 binaries, simulator)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    assert code == 0, log.read_text()[-3000:]
    left = [pid for pid in children if Path(f"/proc/{pid}").exists() and _state(pid) != "Z"]
    assert not left, f"processes left running: {left}"


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    parents: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = map(int, line.split())
        parents.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return "Z"
