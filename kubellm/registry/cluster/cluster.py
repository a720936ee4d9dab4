"""Cluster: a member GPU cluster. Credentials are write-only: an update that omits them keeps them, unless
it changes where they would be sent (then validation asks for them again)."""

from __future__ import annotations

from typing import Any

from kubellm.apis.cluster.v1alpha1.validation import connection_changed
from kubellm.registry.strategy import Strategy


def gpu_summary(status: dict[str, Any]) -> str | None:
    """`available/count` GPUs over every model (`3/12`); none before the first probe."""
    gpus = status.get("gpus")
    if not isinstance(gpus, list) or not status.get("lastProbeTime"):
        return None
    free = sum(g.get("available", 0) for g in gpus if isinstance(g, dict))
    total = sum(g.get("count", 0) for g in gpus if isinstance(g, dict))
    return f"{free}/{total}"


class ClusterStrategy(Strategy):
    field_selectors = ("spec.region", "spec.zone", "spec.provider")
    printer_columns = (
        ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        ("Version", "string", ".status.kubernetesVersion"),
        ("GPUs", "string", lambda obj: gpu_summary(obj.get("status") or {})),
        ("Nodes", "integer", ".status.nodeCount"),
        ("Region", "string", ".spec.region"),
    )

    def prepare_for_update(self, new: Any, old: Any) -> None:
        if new.spec.credentials is None and not connection_changed(new.spec, old.spec):
            new.spec.credentials = old.spec.credentials
        super().prepare_for_update(new, old)
