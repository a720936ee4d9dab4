"""Every Python example of docs/clientset.md runs, as written, against a running KubeLLM (each in its own
interpreter, with KUBECONFIG set as the guide tells its readers); the member-cluster example against a real
kube-apiserver."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import APIServer
from hostcluster import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "clientset.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def examples() -> list[str]:
    return BLOCK.findall(GUIDE.read_text())


def run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=False)


def test_the_guide_has_examples() -> None:
    assert len(examples()) >= 8


@pytest.mark.parametrize("index", range(len(examples())))
def test_example_runs(apiserver: APIServer, index: int) -> None:
    code = examples()[index]
    proc = run(code, {"KUBECONFIG": str(apiserver.kubeconfig)})
    assert proc.returncode == 0, (f"example {index} failed:\n{code}\n--- stdout:\n{proc.stdout}\n"
                                  f"--- stderr:\n{proc.stderr}")


def test_member_cluster_example_on_a_real_kube_apiserver(tmp_path: Path) -> None:
    (code,) = [c for c in examples() if "MEMBER_KUBECONFIG" in c]
    with ControlPlane(tmp_path / "member", "member") as member:
        proc = run(code, {"MEMBER_KUBECONFIG": str(member.kubeconfig)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"
