"""The clientset generator: the committed code is what it writes, and hack/verify-codegen.sh fails after a
change to the API types until hack/update-codegen.sh runs again (in a copy of the tree)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubellm.client import gen

ROOT = Path(__file__).resolve().parents[2]


def test_committed_code_is_what_the_generator_writes() -> None:
    assert gen.verify() == []
    files = gen.render()
    assert set(files) == {"__init__.py", "clientset.py", "cluster_v1alpha1.py", "iam_v1alpha1.py",
                          "model_v1alpha1.py", "core_v1.py", "coordination_v1.py"}
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
    assert run(tree, "update-codegen.sh").returncode == 0  # whatever the checkout's state, start up to date

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


FAKE_GROUP = '''
from pydantic import Field

from kubellm.apis.meta.v1 import ObjectMeta, TypedModel
from kubellm.apis.scheme import ResourceInfo


class Namespace(TypedModel):
    """Namespace is a scope for names."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)


class Event(TypedModel):
    """Event reports something that happened."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    message: str = ""


RESOURCES = [
    ResourceInfo(group="", version="v1", kind="Namespace", plural="namespaces", singular="namespace",
                 namespaced=False, model=Namespace),
    ResourceInfo(group="", version="v1", kind="Event", plural="events", singular="event", namespaced=True,
                 model=Event, has_status=False),
]
'''


def test_kinds_named_like_the_support_classes_generate_valid_code(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A core/v1 group with `Namespace` (like the lister base class `NamespaceLister`'s stem) and `Event` (like
    `WatchEvent`): the generated module is ruff-clean, imports, and its classes are what they should be."""
    package = tmp_path / "fakeapis"
    (package / "core" / "v1").mkdir(parents=True)
    for init in (package / "__init__.py", package / "core" / "__init__.py"):
        init.write_text("")
    (package / "core" / "v1" / "__init__.py").write_text(FAKE_GROUP)
    monkeypatch.syspath_prepend(str(tmp_path))
    (gv,) = gen.find_group_versions("fakeapis")
    assert gv.ident == "core_v1" and gv.camel == "CoreV1"
    module = tmp_path / "core_v1.py"
    module.write_text(gen.render_group(gv))
    lint = subprocess.run([str(ROOT / ".venv" / "bin" / "ruff"), "check", "--config", str(ROOT / "pyproject.toml"),
                           "--ignore", "I001", str(module)],  # (fakeapis sorts as third-party here)
                          capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout
    generated = importlib.import_module("core_v1")
    from kubellm.client.informers.lister import ClusterScopedLister, NamespacedLister
    from kubellm.client.resource import ResourceRef

    assert issubclass(generated.NamespaceLister, ClusterScopedLister)
    assert issubclass(generated.EventLister, NamespacedLister) and hasattr(generated.EventLister, "events")
    assert ResourceRef("", "v1", "namespaces", "Namespace", False) == generated.NAMESPACES
    assert "update_status" in vars(generated.NamespaceClient) and "update_status" not in vars(generated.EventClient)
    assert generated.NAMESPACES.path(None, "default") == "/api/v1/namespaces/default"


def test_names_that_would_clash_are_refused() -> None:
    from kubellm.apis.meta.v1 import TypedModel
    from kubellm.apis.scheme import ResourceInfo

    infos = tuple(ResourceInfo(group="x.io", version="v1", kind=kind, plural=f"{kind.lower()}s", singular=kind.lower(),
                               namespaced=True, model=TypedModel) for kind in ("Foo", "FooClient"))
    with pytest.raises(ValueError, match="FooClient"):
        gen.render_group(gen.GroupVersion("x", "x.io", "v1", infos))
