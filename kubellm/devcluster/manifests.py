"""The member-cluster manifests of `deploy/member/` (shared with the docs and `kubectl apply -k`), read as
objects, and applying objects with KubeLLM's dynamic client (server-side apply)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubellm.client import DynamicClient
from kubellm.devcluster.binaries import ROOT

MEMBER_DIR = ROOT / "deploy" / "member"
RUNTIME_CLASS_FILE = MEMBER_DIR / "runtimeclass-nvidia.yaml"
FIELD_MANAGER = "kubellm-devcluster"
NAMESPACE = "kubellm-system"
SERVICE_ACCOUNT = "kubellm"
TOKEN_SECRET = "kubellm-token"
CLUSTER_ROLE = "kubellm:member"


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def member_objects(directory: Path = MEMBER_DIR) -> list[dict[str, Any]]:
    """The objects of the kustomization's resources, in its order."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return [obj for name in kustomization.get("resources") or [] for obj in load(directory / name)]


def runtime_class() -> dict[str, Any]:
    (obj,) = load(RUNTIME_CLASS_FILE)
    return obj


def apply(client: DynamicClient, objects: list[dict[str, Any]], timeout: float = 30) -> None:
    """Server-side apply of each object, in order (namespaces before what they hold)."""
    for obj in objects:
        resource = client.resource(api_version=obj["apiVersion"], kind=obj["kind"],
                                   namespace=(obj.get("metadata") or {}).get("namespace", ""))
        resource.apply(obj, field_manager=FIELD_MANAGER, force=True, timeout=timeout)
