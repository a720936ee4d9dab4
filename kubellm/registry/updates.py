"""What an update writes, as kube's rest.UpdatedObjectInfo: the new object, given the current one.

`Replacement` is a PUT: the body decoded once, its resourceVersion required. `Patched` is a patch
or a server-side apply: a function of the current object, applied to the object as clients can read
it (write-only fields removed, so a patch can neither test nor move them) and decoded afresh on
every try of the storage's read-modify-write loop.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubellm.apis.validation.field import ErrorList
from kubellm.registry.objects import Object

Obj = dict[str, Any]


@dataclass
class Decoded:
    """A request body as the resource's type, with the field errors and warnings decoding found."""

    obj: Object
    errors: ErrorList = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class UpdatedObjectInfo(Protocol):
    requires_resource_version: bool
    """Whether the new object must name the version it replaces (a PUT) or may leave it out (a patch)."""

    async def updated_object(self, current: Obj | None) -> Decoded:
        """The new object; `current` is the stored one, None when there is none yet."""
        ...


@dataclass
class Replacement:
    decoded: Decoded
    requires_resource_version: bool = True

    async def updated_object(self, current: Obj | None) -> Decoded:
        d = self.decoded
        return Decoded(d.obj.model_copy(deep=True), list(d.errors), list(d.warnings))


@dataclass
class Patched:
    mutate: Callable[[Obj], Awaitable[Obj] | Obj]
    decode: Callable[[Obj], Decoded]
    visible: Callable[[Obj], Obj]
    """The object as clients see it (the strategy's egress filter)."""
    requires_resource_version: bool = False

    async def updated_object(self, current: Obj | None) -> Decoded:
        base = copy.deepcopy(self.visible(current)) if current else {}
        out = self.mutate(base)
        return self.decode(await out if isinstance(out, Awaitable) else out)
