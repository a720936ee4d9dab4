"""What each served kind is: group, version, names, scope, its type and its validation functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubellm.apis import secrets
from kubellm.apis.base import APIModel
from kubellm.apis.validation.field import ErrorList
from kubellm.apis.validation.names import dns1123_subdomain

Validate = Callable[[Any], ErrorList]
ValidateUpdate = Callable[[Any, Any], ErrorList]
ValidateName = Callable[[str], list[str]]


def _no_errors(*_: Any) -> ErrorList:
    return []


def storage_root(group: str, plural: str) -> str:
    """The storage key prefix of `plural` in `group` (as Kubernetes keys core resources without a group)."""
    return f"/{group}/{plural}/" if group else f"/{plural}/"


@dataclass(frozen=True)
class ScaleSpec:
    """Where a resource keeps what its autoscaling/v1 Scale shows (dotted JSON paths), as a CRD's
    `subresources.scale` (specReplicasPath, statusReplicasPath, labelSelectorPath)."""

    spec_replicas: str = "spec.replicas"
    status_replicas: str = "status.replicas"
    label_selector: str = "status.selector"


@dataclass(frozen=True)
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    model: type[APIModel]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ("kubellm",)
    has_status: bool = True
    scale: ScaleSpec | None = None
    """A scale subresource (autoscaling/v1 Scale over these paths), as a CustomResourceDefinition declares one."""
    validate: Validate = _no_errors
    """A new object (its status is cleared before this runs): metadata aside, everything but status."""
    validate_update: ValidateUpdate = _no_errors
    """An update through the main endpoint: the spec (status is kept from the stored object) and the
    fields that may not change."""
    validate_status_update: ValidateUpdate = _no_errors
    """An update through the status subresource: only the status (everything else is kept)."""
    validate_name: ValidateName = dns1123_subdomain
    host_kind: bool = False
    """A kind a host cluster serves (Namespaces, Events, Leases): KubeLLM serves it only when it runs on its
    own, and never registers an APIService for it."""
    sensitive: bool = False
    """Encrypted at rest by default even without secret fields (e.g. LoginRecords: who logged in from where)."""
    secrets_subresource: str = ""
    """A get-only subresource that returns the object with its secret fields (Cluster `credentials`, for the
    controllers that connect with them). RBAC grants it apart from the object, as Kubernetes grants Secrets;
    the default roles do not include it."""

    @property
    def secret_fields(self) -> tuple[secrets.Path, ...]:
        """JSON paths of the write-only secret fields, as the type declares them (`apis.secrets`)."""
        return secrets.secret_paths(self.model)

    @property
    def encrypted_by_default(self) -> bool:
        """Whether a generated encryption configuration covers this resource."""
        return self.sensitive or bool(self.secret_fields)

    @property
    def has_scale(self) -> bool:
        return self.scale is not None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def storage_root(self) -> str:
        """The storage key prefix of the resource: `/<group>/<plural>/`, `/<plural>/` for the core group."""
        return storage_root(self.group, self.plural)

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural
