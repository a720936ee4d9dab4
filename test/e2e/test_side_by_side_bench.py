"""bench/side_by_side.py in quick mode: KubeLLM and kube-apiserver (LLMService as a CRD) on one etcd, and one
table with nonzero numbers for both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hostcluster import require_binaries

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_side_by_side_quick_reports_both_servers(tmp_path: Path) -> None:
    require_binaries("kube-apiserver", "etcd")
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "side_by_side.py", "--quick", "--timeout", "240", "--json", str(out)],
                          cwd=ROOT / "bench", capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in proc.stdout.splitlines() if line.startswith("| ") and not line.startswith("| operation")}
    for op in ("create", "consistent GET", "GET resourceVersion=0", "merge patch", "update (PUT)"):
        kubellm, kube = (float(c.removesuffix("/s").replace(",", "")) for c in rows[op][:2])
        assert kubellm > 0 and kube > 0, (op, rows[op])
        server_cpu = [float(c) for c in rows[op][3:5]]
        assert all(x > 0 for x in server_cpu), (op, rows[op])
    assert any(k.startswith("LIST") for k in rows) and any("watchers" in k for k in rows)
    report = json.loads(out.read_text())
    assert report["versions"]["kube"].startswith("v1.")
    for server in ("kubellm", "kube"):
        assert not report["watch"][server]["missed"]
        assert report["rss"][server][0] > 0
