"""The clientset generator: the committed code is what it writes, and hack/verify-codegen.sh fails after a
change to the API types until hack/update-codegen.sh runs again (in a copy of the tree)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from kubellm.client import gen

ROOT = Path(__file__).resolve().parents[2]


def test_committed_code_is_what_the_generator_writes() -> None:
    assert gen.verify() == []
    files = gen.render()
    assert set(files) == {"__init__.py", "clientset.py", "cluster_v1alpha1.py", "iam_v1alpha1.py",
                          "model_v1alpha1.py"}
    for name, text in files.items():
        assert text.startswith(gen.HEADER + "\n"), name
        assert (ROOT / "kubellm" / "client" / "generated" / name).read_text().startswith(gen.HEADER)
    assert gen.render() == files  # deterministic


def run(tree: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([str(tree / "hack" / script)], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_verify_fails_after_a_types_change_until_the_generator_runs(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "kubellm", tree / "kubellm", ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "hack").mkdir()
    for script in ("update-codegen.sh", "verify-codegen.sh"):
        shutil.copy2(ROOT / "hack" / script, tree / "hack" / script)
    generated = tree / "kubellm" / "client" / "generated"

    ok = run(tree, "verify-codegen.sh")
    assert ok.returncode == 0, ok.stderr
    assert str(generated) in ok.stdout  # the copy's types and files, not the checkout's

    # a new field in a type: the module of its group/version is stale
    types = tree / "kubellm" / "apis" / "model" / "v1alpha1" / "types.py"
    text = types.read_text()
    anchor = ('    env: list[EnvVar] = Field(default_factory=list, description="Environment variables of the vLLM '
              'container.")')
    assert anchor in text
    types.write_text(text.replace(anchor, anchor + '\n    tensor_parallel: int = Field(default=1, description="TP.")'))
    stale = run(tree, "verify-codegen.sh")
    assert stale.returncode == 1
    assert f"{generated / 'model_v1alpha1.py'}: stale" in stale.stderr and "hack/update-codegen.sh" in stale.stderr
    assert "iam_v1alpha1.py" not in stale.stderr
    before = (generated / "model_v1alpha1.py").read_text()
    assert run(tree, "update-codegen.sh").returncode == 0
    assert run(tree, "verify-codegen.sh").returncode == 0
    assert (generated / "model_v1alpha1.py").read_text() != before

    # a kind loses its status subresource: its status verbs are no longer generated
    init = tree / "kubellm" / "apis" / "model" / "v1alpha1" / "__init__.py"
    text = init.read_text()
    anchor = '        short_names=("rags",),\n        has_status=True,'
    assert anchor in text
    init.write_text(text.replace(anchor, '        short_names=("rags",),\n        has_status=False,'))
    assert run(tree, "verify-codegen.sh").returncode == 1
    assert run(tree, "update-codegen.sh").returncode == 0
    module = (generated / "model_v1alpha1.py").read_text()
    rag = module[module.index("class AsyncRAGServiceClient"):module.index("class RAGServiceClient")]
    assert "def update" in rag and "def update_status" not in rag and "def apply_status" not in rag
    assert run(tree, "verify-codegen.sh").returncode == 0
