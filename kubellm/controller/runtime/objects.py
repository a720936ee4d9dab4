"""Reading what the runtime needs from an object, whether it is a typed API object (pydantic) or a dict from
the dynamic client: its key, metadata, owners, and a reference for Events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kubellm.client import DeletedFinalStateUnknown


def _get(obj: Any, field: str, alias: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(alias)
    if isinstance(obj, BaseModel):
        return getattr(obj, field, None)
    return None


def field_of(obj: Any, field: str, alias: str) -> Any:
    """A field of a typed object (`field`) or of its JSON form (`alias`); None when absent. Reads one field
    without dumping the object (predicates and index functions run on every event)."""
    return _get(obj, field, alias)


def metadata(obj: Any) -> Any:
    return _get(obj, "metadata", "metadata")


def meta_field(obj: Any, field: str, alias: str) -> Any:
    return _get(metadata(obj), field, alias)


def namespace_of(obj: Any) -> str:
    return str(meta_field(obj, "namespace", "namespace") or "")


def name_of(obj: Any) -> str:
    return str(meta_field(obj, "name", "name") or "")


def key_of(obj: Any) -> str:
    """`namespace/name`, or `name` for a cluster-scoped object (client-go's `MetaNamespaceKeyFunc`);
    a `DeletedFinalStateUnknown` gives the key it carries."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    ns, name = namespace_of(obj), name_of(obj)
    return f"{ns}/{name}" if ns else name


def unwrap(obj: Any) -> Any:
    """The object itself, or the last state a `DeletedFinalStateUnknown` knew."""
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of a key ("" namespace for cluster-scoped)."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("", key)


@dataclass(frozen=True)
class OwnerRef:
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool


def owners_of(obj: Any) -> list[OwnerRef]:
    out: list[OwnerRef] = []
    for ref in meta_field(obj, "owner_references", "ownerReferences") or []:
        out.append(OwnerRef(str(_get(ref, "api_version", "apiVersion") or ""), str(_get(ref, "kind", "kind") or ""),
                            str(_get(ref, "name", "name") or ""), str(_get(ref, "uid", "uid") or ""),
                            bool(_get(ref, "controller", "controller"))))
    return out


def group_of(api_version: str) -> str:
    group, sep, _ = api_version.rpartition("/")
    return group if sep else ""


@dataclass(frozen=True)
class ObjectRef:
    """What an Event's `involvedObject` says of the object it is about."""

    api_version: str
    kind: str
    name: str
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""

    @classmethod
    def of(cls, obj: Any, *, api_version: str = "", kind: str = "") -> ObjectRef:
        """A reference to `obj`; `api_version` and `kind` fill in what the object does not say (list items
        and informer objects may lack them)."""
        return cls(str(_get(obj, "api_version", "apiVersion") or api_version),
                   str(_get(obj, "kind", "kind") or kind), name_of(obj), namespace_of(obj),
                   str(meta_field(obj, "uid", "uid") or ""),
                   str(meta_field(obj, "resource_version", "resourceVersion") or ""))
