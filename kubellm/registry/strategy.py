"""Strategy: the per-resource behaviour the generic Store calls (the k8s RESTCreate/UpdateStrategy).

A resource's strategy is usually this class with a few attributes set; hooks operate on the decoded
pydantic object. `StatusStrategy` is the variant for the `status` subresource. Which subresources a
resource has (status, scale with its paths) is declared with its types (`ResourceInfo`); the registry
builds the REST objects from that, and the server derives routes, discovery and OpenAPI from those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubellm.apis import secrets
from kubellm.apis.scheme import ResourceInfo
from kubellm.apis.validation.field import ErrorList
from kubellm.apis.validation.meta import NameValidator
from kubellm.registry.objects import Object

Attrs = tuple[Mapping[str, str], Mapping[str, str]]


def _dig(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def spec_of(model: Object) -> dict[str, Any]:
    """Everything but metadata and status: a change here bumps metadata.generation."""
    return model.model_dump(by_alias=True, exclude_none=True, exclude={"metadata", "status", "api_version", "kind"})


PrinterColumn = tuple[str, str, str | Callable[[dict[str, Any]], Any]]
"""A Table column: name, type (string, integer, date...), and a JSONPath or a function computing the cell."""


class Strategy:
    """Defaults for a resource whose main endpoint ignores status and whose spec bumps generation."""

    allow_create_on_update = False
    allow_unconditional_update = False
    field_selectors: tuple[str, ...] = ()
    """Fields, besides metadata.name and metadata.namespace, that a field selector may use."""
    printer_columns: tuple[PrinterColumn, ...] = ()
    """(name, type, JSON path or a function of the object) columns for server-side tables; used by the HTTP
    layer."""
    undeletable: frozenset[str] = frozenset()
    """Names that may never be deleted (kube's immortal namespaces): 403."""

    def __init__(self, info: ResourceInfo) -> None:
        self.info = info

    @property
    def name_validator(self) -> NameValidator:
        return self.info.validate_name

    @property
    def namespaced(self) -> bool:
        return self.info.namespaced

    def selectable_fields(self) -> tuple[str, ...]:
        base = ("metadata.name", "metadata.namespace") if self.namespaced else ("metadata.name",)
        return base + self.field_selectors

    def get_attrs(self, obj: Mapping[str, Any]) -> Attrs:
        meta = obj.get("metadata") or {}
        fields = {"metadata.name": meta.get("name") or ""}
        if self.namespaced:
            fields["metadata.namespace"] = meta.get("namespace") or ""
        for path in self.field_selectors:
            fields[path] = _dig(obj, path)
        return meta.get("labels") or {}, fields

    def prepare_for_create(self, obj: Object) -> None:
        if self.info.has_status and hasattr(obj, "status"):
            setattr(obj, "status", None)  # noqa: B010 - only kinds with a status have the field
        obj.metadata.generation = 1

    def prepare_for_update(self, new: Object, old: Object) -> None:
        if self.info.has_status and hasattr(new, "status"):
            setattr(new, "status", getattr(old, "status", None))  # noqa: B010
        if spec_of(new) != spec_of(old):
            new.metadata.generation = (old.metadata.generation or 0) + 1

    def validate(self, obj: Object) -> ErrorList:
        return self.info.validate(obj)

    def validate_update(self, new: Object, old: Object) -> ErrorList:
        """The main endpoint writes everything but the status (kept from the stored object): only that is
        checked, so a status that no longer passes (stricter rules, another writer) never blocks a spec edit."""
        if self.info.has_status and getattr(new, "status", None) is not None:
            new = new.model_copy(update={"status": None})
        return self.info.validate_update(new, old)

    def canonicalize(self, obj: Object) -> None:
        """Normalise an object after validation (e.g. sort a set-like list)."""

    async def before_storage(self, obj: Object, old: Object | None = None) -> None:
        """The last step before an object is written (`old`: the stored object of an update); may do slow
        work off the event loop."""
        self.canonicalize(obj)

    @property
    def hidden_fields(self) -> tuple[secrets.Path, ...]:
        """Write-only paths (the type's secret fields) removed from every object the API returns."""
        return self.info.secret_fields

    def for_output(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as clients may see it: without `hidden_fields`. Shares unchanged parts with `obj`."""
        if not self.hidden_fields:
            return obj
        return secrets.without_secrets(obj, self.hidden_fields)

    def warnings_on_create(self, obj: Object) -> list[str]:
        return []

    def warnings_on_update(self, new: Object, old: Object) -> list[str]:
        return []


class StatusStrategy(Strategy):
    """The `status` subresource: only status changes; everything else is kept from the stored object."""

    def prepare_for_update(self, new: Object, old: Object) -> None:
        status = getattr(new, "status", None)
        managed = new.metadata.managed_fields
        kept = old.model_copy(deep=True)
        for name in type(old).model_fields:  # type: ignore[attr-defined]  # every Object is a pydantic model
            if name != "status":
                setattr(new, name, getattr(kept, name))
        setattr(new, "status", status)  # noqa: B010
        if managed is not None:
            new.metadata.managed_fields = managed

    def validate_update(self, new: Object, old: Object) -> ErrorList:
        return self.info.validate_status_update(new, old)
