"""Event: selectable by what it is about, as `kubectl describe` and `kubectl get events` select them."""

from __future__ import annotations

from kubellm.registry.strategy import Strategy


class EventStrategy(Strategy):
    allow_unconditional_update = True  # event recorders update counts without a resourceVersion, as in kube
    field_selectors = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                       "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                       "involvedObject.fieldPath", "reason", "reportingComponent", "type")
    printer_columns = (
        ("Last Seen", "date", ".lastTimestamp"),
        ("Type", "string", ".type"),
        ("Reason", "string", ".reason"),
        ("Object", "string", ".involvedObject.name"),
        ("Message", "string", ".message"),
    )
