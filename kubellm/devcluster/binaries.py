"""Where the Kubernetes binaries are: `$KUBEBUILDER_ASSETS`, else the project's cache
`.cache/kubebuilder-assets` (filled by hack/install-deps.sh from ../shared/k8s); etcd and kubectl also from
PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ASSETS = ROOT / ".cache" / "kubebuilder-assets"


class BinariesMissing(RuntimeError):
    """A binary a cluster needs is not installed (the message says how to get it)."""


def assets_dir() -> Path:
    env = os.environ.get("KUBEBUILDER_ASSETS")
    return Path(env) if env else DEFAULT_ASSETS


def find_binary(name: str) -> str:
    """`name` from $KUBEBUILDER_ASSETS (or the project cache); etcd and kubectl also from PATH."""
    candidate = assets_dir() / name
    if os.access(candidate, os.X_OK):
        return str(candidate)
    if name in ("etcd", "kubectl"):
        found = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
        if found:
            return found
    raise BinariesMissing(f"{name} not found in {assets_dir()} (KUBEBUILDER_ASSETS): run hack/install-deps.sh "
                          "with the Kubernetes binaries at ../shared/k8s or $KUBELLM_K8S_BINARIES")


def find_binaries(*names: str) -> dict[str, str]:
    """The binaries' paths by name; `BinariesMissing` names the first one missing."""
    return {name: find_binary(name) for name in names}
