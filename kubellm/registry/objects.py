"""What the registry knows of every stored kind: a typed object with metadata (kube's metav1.Object).

Every kind's pydantic type has `apiVersion`, `kind` and `metadata: ObjectMeta`; `Object` says so to the
type checker, so the Store and the strategies read and set metadata without casts.
"""

from __future__ import annotations

from typing import Any, Protocol, Self

from kubellm.apis.meta.v1.types import ObjectMeta


class Object(Protocol):
    api_version: str | None
    kind: str | None
    metadata: ObjectMeta

    def to_dict(self) -> dict[str, Any]: ...

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self: ...

    def model_dump(self, **kwargs: Any) -> dict[str, Any]: ...
