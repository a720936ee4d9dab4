"""Applying a controller's objects to a member cluster, by server-side apply under the controller's field manager.

- What the member's cache already shows (everything the object says, whatever the server defaulted besides) is
  not sent again; what differs (a hand edit) is applied with force, so the controller's fields win.
- An object the cache does not show is read from the member first (the informers see only what is labelled as
  KubeLLM's): a namesake that is another's is never taken over (`Refused`). An apply without force is no such
  check: fields of another manager that do not collide (another port, other labels) would be merged into its
  object without a conflict.
- A Namespace is applied once per connection to the member (`Member.namespaces`), not with every object in it;
  an apply that finds the namespace gone forgets it, so the next reconcile creates it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubellm.client import errors
from kubellm.client.resource import ResourceRef
from kubellm.controller import ownership
from kubellm.controller.members import NAMESPACES, Member

Obj = Mapping[str, Any]
REFUSED = (errors.Invalid, errors.Forbidden, errors.BadRequest, errors.MethodNotAllowed)
"""What a member answers for an object it will never take as it is (not a failure of the moment)."""


class Refused(Exception):
    """A member will not take an object: the message says which and why."""


def contains(want: Any, have: Any) -> bool:
    """Whether `have` holds everything `want` says (what the server defaulted besides is ignored)."""
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(contains(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(map(contains, want, have))
    return bool(want == have)


async def ensure_namespace(member: Member, obj: Obj, field_manager: str) -> None:
    """Apply the Namespace `obj` unless this connection already did."""
    name = str(obj["metadata"]["name"])
    if name in member.namespaces:
        return
    await _apply(member, NAMESPACES, obj, field_manager)
    member.namespaces.add(name)


async def apply_owned(member: Member, ref: ResourceRef, obj: Obj, field_manager: str,
                      owns: Callable[[Obj], bool]) -> dict[str, Any] | None:
    """Make the member's object of kind `ref` hold `obj`: the object as applied, or as cached when nothing
    differed. `Refused` when the namesake there is not the caller's (`owns`) or the member rejects the object;
    other client errors (unreachable, a deadline) as they are."""
    ns, name = str(obj["metadata"].get("namespace") or ""), str(obj["metadata"]["name"])
    cached = member.cached(ref, ns, name)
    if cached is None:
        cached = await ownership.live(member, ref, ns, name)
    if cached is not None:
        _check_owner(obj, cached, owns)
        if contains(obj, cached):
            return cached
    return await _apply(member, ref, obj, field_manager)


def _check_owner(obj: Obj, have: Obj, owns: Callable[[Obj], bool]) -> None:
    if not owns(have):
        meta = obj["metadata"]
        where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])
        raise Refused(f"{obj['kind']} {where} exists and belongs to {ownership.owner_of(have)}: not taken over")


async def _apply(member: Member, ref: ResourceRef, obj: Obj, field_manager: str) -> dict[str, Any] | None:
    ns = str(obj["metadata"].get("namespace") or "") if ref.namespaced else ""
    try:
        applied = await member.resource(ref, ns).apply(obj, field_manager=field_manager, force=True)
    except REFUSED as exc:
        raise Refused(f"the member refused the {obj['kind']} {obj['metadata']['name']}: {exc}") from exc
    except errors.NotFound:
        member.namespaces.discard(ns)  # the namespace went: apply it again next time
        raise
    return applied if isinstance(applied, dict) else None
