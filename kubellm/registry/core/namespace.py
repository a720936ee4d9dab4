"""Namespace: created Active with the `kubernetes` finalizer; deleting it marks it Terminating and the
namespace job (`app/namespaces.py`) deletes its contents, then lets it go."""

from __future__ import annotations

from kubellm.apis.core.v1 import FINALIZER, NamespaceStatus
from kubellm.registry.objects import Object
from kubellm.registry.strategy import Strategy


class NamespaceStrategy(Strategy):
    field_selectors = ("status.phase",)
    printer_columns = (("Status", "string", ".status.phase"),)
    undeletable = frozenset({"default", "kube-system", "kube-public"})

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        spec = getattr(obj, "spec")  # noqa: B009 - every Namespace has a spec
        if FINALIZER not in spec.finalizers:
            spec.finalizers.append(FINALIZER)
        meta = obj.metadata
        meta.finalizers = [*(meta.finalizers or []), *([FINALIZER] if FINALIZER not in (meta.finalizers or []) else [])]
        setattr(obj, "status", NamespaceStatus(phase="Active"))  # noqa: B010

    def prepare_for_update(self, new: Object, old: Object) -> None:
        super().prepare_for_update(new, old)
        if new.metadata.deletion_timestamp:  # the namespace job keeps its status current; never back to Active
            setattr(new, "status", NamespaceStatus(phase="Terminating"))  # noqa: B010
