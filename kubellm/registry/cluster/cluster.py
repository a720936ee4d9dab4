"""Cluster: a member GPU cluster. Credentials are write-only: an update that omits them keeps them, unless
it changes where they would be sent (then validation asks for them again)."""

from __future__ import annotations

from typing import Any

from kubellm.apis.cluster.v1alpha1.validation import connection_changed
from kubellm.registry.strategy import Strategy


class ClusterStrategy(Strategy):
    field_selectors = ("spec.region", "spec.zone", "spec.provider")
    printer_columns = (
        ("Endpoint", "string", ".spec.apiEndpoint"),
        ("Version", "string", ".status.kubernetesVersion"),
        ("Region", "string", ".spec.region"),
        ("Nodes", "integer", ".status.nodeCount"),
        ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
    )

    def prepare_for_update(self, new: Any, old: Any) -> None:
        if new.spec.credentials is None and not connection_changed(new.spec, old.spec):
            new.spec.credentials = old.spec.credentials
        super().prepare_for_update(new, old)
