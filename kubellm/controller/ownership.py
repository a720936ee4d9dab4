"""Whose an object on a member cluster is. Owner references cannot cross clusters, so the objects KubeLLM's
controllers make there carry owner annotations (`kubellm.io/owner: <ns>/<name>`, `kubellm.io/owner-kind`);
a controller takes over, changes or deletes only what names its own object, never another's of the same name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from kubellm.client import errors
from kubellm.client.resource import ResourceRef
from kubellm.controller.llmservice.resources import OWNER_ANNOTATION, OWNER_KIND_ANNOTATION, name_of, namespace_of
from kubellm.controller.members import Member

Obj = Mapping[str, Any]


def owned_by(obj: Obj, owner: Obj, kind: str, labels: Mapping[str, str]) -> bool:
    """Whether the member object is `owner`'s: its owner annotations name it, or, with no owner annotation
    (removed by hand), it carries the owner's selector `labels`."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if annotations.get(OWNER_ANNOTATION):
        return (annotations.get(OWNER_KIND_ANNOTATION) == kind
                and annotations.get(OWNER_ANNOTATION) == f"{namespace_of(owner)}/{name_of(owner)}")
    have = meta.get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


def owner_of(obj: Obj) -> str:
    """Who an object belongs to, for a message."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if annotations.get(OWNER_ANNOTATION):
        return f"{annotations.get(OWNER_KIND_ANNOTATION) or 'an object'} {annotations[OWNER_ANNOTATION]}"
    manager = next((str(e.get("manager")) for e in (obj.get("metadata") or {}).get("managedFields") or []
                    if e.get("manager")), "")
    return f"someone else ({manager})" if manager else "someone else"


async def live(member: Member, ref: ResourceRef, namespace: str, name: str) -> dict[str, Any] | None:
    """The object as the member has it now (not in the cache: just created, or not labelled as ours)."""
    try:
        got = await member.resource(ref, namespace).get(name)
    except errors.NotFound:
        return None
    return got if isinstance(got, dict) else None


async def current(member: Member, ref: ResourceRef, namespace: str, name: str, *,
                  trust_cache: bool = False) -> dict[str, Any] | None:
    """The member's object: from the synced cache, else (unless `trust_cache`) looked up on the member."""
    obj = member.cached(ref, namespace, name) if member.synced else None
    if obj is None and not (trust_cache and member.synced):
        obj = await live(member, ref, namespace, name)
    return obj


async def delete_owned(member: Member, ref: ResourceRef, namespace: str, name: str, owner: Obj, kind: str,
                       labels: Mapping[str, str], *, trust_cache: bool = False) -> None:
    """Delete the object if it is there and `owner`'s (with its UID as a precondition: a namesake created
    meanwhile is left alone)."""
    obj = await current(member, ref, namespace, name, trust_cache=trust_cache)
    if obj is None or not owned_by(obj, owner, kind, labels):
        return
    uid = (obj.get("metadata") or {}).get("uid")
    with contextlib.suppress(errors.NotFound, errors.Conflict):
        await member.resource(ref, namespace).delete(name, propagation_policy="Background",
                                                     preconditions={"uid": str(uid)} if uid else None)
