"""Namespace lifecycle for a standalone KubeLLM (what kube-controller-manager's namespace controller and the
event TTL do in a cluster):

- `finalize_namespaces`: a namespace being deleted is Terminating; everything in it is deleted (objects
  held by finalizers are marked and waited for), and once nothing is left the `kubernetes` finalizer goes
  and the namespace with it;
- `expire_events`: Events older than `--event-ttl-seconds` are deleted;
- `ensure_default_namespaces`: `default` and `kube-system` exist from the first start.

The jobs read through the watch cache (resourceVersion 0) and write through the Stores.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from kubellm.apis import errors
from kubellm.apis.core.v1 import FINALIZER
from kubellm.apis.timestamps import parse_rfc3339
from kubellm.registry.store import ListParams, Store

log = structlog.get_logger(__name__)
DEFAULT_NAMESPACES = ("default", "kube-system")
CACHED = ListParams(resource_version="0")


async def ensure_default_namespaces(namespaces: Store) -> None:
    for name in DEFAULT_NAMESPACES:
        try:
            await namespaces.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        except errors.StatusError as exc:
            if exc.reason != "AlreadyExists":
                raise


async def finalize_namespaces(namespaces: Store, namespaced: list[Store]) -> int:
    """One pass over the namespaces being deleted; returns how many were let go."""
    done = 0
    for ns in (await namespaces.list(None, CACHED))["items"]:
        meta = ns.get("metadata") or {}
        if not meta.get("deletionTimestamp"):
            continue
        name = meta["name"]
        if (ns.get("status") or {}).get("phase") != "Terminating":
            await _set_terminating(namespaces, name)
        if await _delete_contents(name, namespaced):
            continue
        await _release(namespaces, name)
        done += 1
    return done


async def _set_terminating(namespaces: Store, name: str) -> None:
    def terminating(obj: dict[str, Any]) -> dict[str, Any]:
        return {**obj, "status": {**(obj.get("status") or {}), "phase": "Terminating"}}

    try:
        await namespaces.patch(None, name, terminating, subresource="status")
    except errors.StatusError as exc:
        if exc.reason != "NotFound":
            raise


async def _delete_contents(namespace: str, namespaced: list[Store]) -> int:
    """Delete what is in `namespace`; returns how many objects are still there (held by finalizers)."""
    remaining = 0
    for store in namespaced:
        for obj in (await store.list(namespace, CACHED))["items"]:
            remaining += 1
            if (obj.get("metadata") or {}).get("deletionTimestamp"):
                continue
            try:
                await store.delete(namespace, obj["metadata"]["name"])
            except errors.StatusError as exc:
                if exc.reason != "NotFound":
                    raise
    return remaining


async def _release(namespaces: Store, name: str) -> None:
    """Drop the `kubernetes` finalizer (the Store then deletes the namespace, if nothing else holds it)."""

    def release(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        return {**obj, "metadata": {**meta, "finalizers": [f for f in meta.get("finalizers") or [] if f != FINALIZER]},
                "spec": {**spec, "finalizers": [f for f in spec.get("finalizers") or [] if f != FINALIZER]}}

    try:
        await namespaces.patch(None, name, release)
    except errors.StatusError as exc:
        if exc.reason != "NotFound":
            raise
    log.info("namespace deleted", namespace=name)


def _event_time(event: dict[str, Any]) -> float | None:
    for value in (event.get("lastTimestamp"), event.get("eventTime"),
                  (event.get("metadata") or {}).get("creationTimestamp")):
        ts = parse_rfc3339(value)
        if ts is not None:
            return ts
    return None


async def expire_events(events: Store, ttl: float, now: float | None = None) -> int:
    """Delete the Events last seen more than `ttl` seconds ago; returns how many."""
    cutoff = (time.time() if now is None else now) - ttl
    expired = 0
    for event in (await events.list(None, CACHED))["items"]:
        seen = _event_time(event)
        if seen is None or seen >= cutoff:
            continue
        meta = event["metadata"]
        try:
            await events.delete(meta.get("namespace"), meta["name"])
            expired += 1
        except errors.StatusError as exc:
            if exc.reason != "NotFound":
                raise
    return expired
