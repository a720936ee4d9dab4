"""bench/scale_bench.py in quick mode: real etcd and kubellm-apiserver, a row per size and per watcher count, with
nonzero numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hostcluster import require_binaries

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_scale_bench_quick_reports_every_size_and_watcher_count(tmp_path: Path) -> None:
    require_binaries("etcd")
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "scale_bench.py", "--quick", "--timeout", "240", "--json", str(out)],
                          cwd=ROOT / "bench", capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    rows = {line.split("|")[1].strip().replace(",", ""): [c.strip() for c in line.split("|")[2:-1]]
            for line in proc.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()}
    assert {"200", "1000", "10", "50"} <= rows.keys(), rows
    report = json.loads(out.read_text())
    assert [s["size"] for s in report["steps"]] == [200, 1000]
    for step in report["steps"]:
        assert step["create"]["ops"] > 0 and step["create"]["server"] > 0 and not step["create"]["errors"], step
        for mode in ("list", "list rv=0", "list paged"):
            assert step["lists"][mode]["mean"] > 0, (mode, step["lists"][mode])
        assert sum(step["lists"][mode]["server"] for mode in step["lists"]) > 0  # CPU in 10 ms ticks: summed
        assert step["rss"]["after_fill"]["VmRSS"] > 0 and step["rss"]["after_lists"]["VmHWM"] > 0
    assert [w["watchers"] for w in report["watch"]] == [10, 50]
    for w in report["watch"]:
        assert not w["missed"] and w["deliveries"] == w["watchers"] * w["n"], w
        # a delay is from the PATCH response: an event written to watchers before that response is negative
        assert w["max"] > 0 and w["p99"] >= w["p50"] and w["server_ms_per_event"] > 0, w
