"""Every verb on one resource, for any object representation: what the typed clients (pydantic objects) and
the dynamic client (plain dicts) share.

`ResourceOps[O]` builds the request (path, query, body), sends it with the client's `Transport` and decodes
the answer with an `ObjectCodec[O]`. It is also the list/watch source of informers (`list_page`,
`watch_stream`, `key`, `resource_version`), and offers `watch()`, a watch that does not end on its own:
bookmarks are asked for and followed, a dropped or timed-out stream is resumed from the last
resourceVersion, and a 410 (Expired or Gone, as an answer or an ERROR event) is answered with a fresh
list turned into the events that bring the consumer up to date.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import orjson
from pydantic import BaseModel

from kubellm.apis.meta.v1 import ListMeta, Preconditions, Status
from kubellm.client import codec, errors
from kubellm.client.backoff import Backoff
from kubellm.client.rest.transport import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, Transport

log = logging.getLogger("kubellm.client")

O = TypeVar("O")  # noqa: E741 - the object type, as in client-go's generics
M = TypeVar("M", bound=BaseModel)

PatchType = Literal["merge", "json", "strategic"]
FieldValidation = Literal["Strict", "Warn", "Ignore"]
PropagationPolicy = Literal["Orphan", "Background", "Foreground"]
Selector = str | Mapping[str, str] | None
Patch = Mapping[str, Any] | Sequence[Mapping[str, Any]]
"""A merge patch (a mapping) or a JSON patch (a list of operations)."""
EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]

PATCH_TYPES: dict[str, str] = {"merge": MERGE_PATCH, "json": JSON_PATCH, "strategic": STRATEGIC_MERGE_PATCH}
DEFAULT_PAGE_SIZE = 500
LARGE_BODY = 256 * 1024
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass(frozen=True)
class ResourceRef:
    """Where a resource is served: group, version, plural, kind and scope."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def base(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        parts = [self.base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass
class ObjectList(Generic[O]):
    """One page of a list: its items and its metadata (resourceVersion, continue, remainingItemCount)."""

    items: list[O]
    metadata: ListMeta = field(default_factory=ListMeta)
    api_version: str = ""
    kind: str = ""

    @property
    def resource_version(self) -> str:
        return self.metadata.resource_version or ""

    @property
    def continue_(self) -> str | None:
        return self.metadata.continue_ or None

    @property
    def remaining_item_count(self) -> int | None:
        return self.metadata.remaining_item_count

    def __iter__(self) -> Iterator[O]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class WatchEvent(Generic[O]):
    """A change: ADDED, MODIFIED, DELETED (the last state of the object), or BOOKMARK (only a
    resourceVersion, and for watch-list the `k8s.io/initial-events-end` annotation)."""

    type: EventType
    object: O


class ObjectCodec(Protocol[O]):
    """How objects of one representation are read from and written to JSON data."""

    def decode(self, data: dict[str, Any]) -> O: ...

    def decode_items(self, items: list[Any]) -> list[O]: ...

    def encode(self, obj: O) -> dict[str, Any]: ...

    def encode_apply(self, obj: O | Mapping[str, Any]) -> dict[str, Any]: ...

    def meta(self, obj: O) -> tuple[str, str, str]:
        """(namespace, name, resourceVersion)."""
        ...

    def labels(self, obj: O) -> Mapping[str, str] | None: ...


class ModelCodec(Generic[M]):
    """Pydantic objects of one API type; unknown fields kept (`kubellm.client.codec`)."""

    def __init__(self, model: type[M]) -> None:
        self.model = model

    def decode(self, data: dict[str, Any]) -> M:
        return codec.decode(self.model, data)

    def decode_items(self, items: list[Any]) -> list[M]:
        return codec.decode_items(self.model, items)

    def encode(self, obj: M) -> dict[str, Any]:
        return codec.encode(obj)

    def encode_apply(self, obj: M | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(obj, BaseModel):
            data = codec.encode_set(obj)
        else:
            data = dict(obj)
        meta = data.get("metadata")
        if isinstance(meta, dict) and "managedFields" in meta:
            data["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
        return data

    def meta(self, obj: M) -> tuple[str, str, str]:
        m = getattr(obj, "metadata", None)
        if m is None:
            return "", "", ""
        return m.namespace or "", m.name or "", m.resource_version or ""

    def labels(self, obj: M) -> Mapping[str, str] | None:
        m = getattr(obj, "metadata", None)
        labels: Mapping[str, str] | None = getattr(m, "labels", None)
        return labels


class DictCodec:
    """Plain JSON dicts (the dynamic client)."""

    def decode(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def decode_items(self, items: list[Any]) -> list[dict[str, Any]]:
        return items

    def encode(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    def encode_apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        data = dict(obj)
        meta = data.get("metadata")
        if isinstance(meta, dict) and "managedFields" in meta:
            data["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
        return data

    def meta(self, obj: Mapping[str, Any]) -> tuple[str, str, str]:
        m = obj.get("metadata") or {}
        return m.get("namespace") or "", m.get("name") or "", m.get("resourceVersion") or ""

    def labels(self, obj: Mapping[str, Any]) -> Mapping[str, str] | None:
        labels: Mapping[str, str] | None = (obj.get("metadata") or {}).get("labels")
        return labels


def selector_string(selector: Selector) -> str:
    """A label or field selector: a string as is, a mapping as `k=v,k2=v2`."""
    if selector is None:
        return ""
    if isinstance(selector, str):
        return selector
    return ",".join(f"{k}={v}" for k, v in selector.items())


def _write_query(dry_run: bool, field_manager: str | None, field_validation: str | None) -> list[tuple[str, str]]:
    query: list[tuple[str, str]] = []
    if dry_run:
        query.append(("dryRun", "All"))
    if field_manager:
        query.append(("fieldManager", field_manager))
    if field_validation:
        query.append(("fieldValidation", field_validation))
    return query


def _list_query(label_selector: Selector, field_selector: Selector) -> list[tuple[str, str]]:
    query: list[tuple[str, str]] = []
    if labels := selector_string(label_selector):
        query.append(("labelSelector", labels))
    if fields := selector_string(field_selector):
        query.append(("fieldSelector", fields))
    return query


def _delete_body(preconditions: Preconditions | Mapping[str, str] | None, propagation_policy: str | None,
                 grace_period_seconds: int | None, dry_run: bool) -> bytes:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
    if preconditions is not None:
        pre = (preconditions.model_dump(by_alias=True, exclude_none=True)
               if isinstance(preconditions, BaseModel) else dict(preconditions))
        if pre:
            body["preconditions"] = pre
    if propagation_policy:
        body["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    if dry_run:
        body["dryRun"] = ["All"]
    return orjson.dumps(body)


RETRYABLE_WATCH_ERRORS: tuple[type[Exception], ...] = (
    errors.TransportError, errors.ClientTimeout, errors.TooManyRequests, errors.ServiceUnavailable,
    errors.InternalError, errors.ServerTimeout, errors.Timeout,
)
"""Failures after which a watch is started again from its last resourceVersion (after a backoff)."""


def needs_relist(exc: BaseException) -> bool:
    """410 (Expired, Gone), or a resourceVersion the server has not reached: only a new list helps."""
    return isinstance(exc, errors.Gone) or (isinstance(exc, errors.Timeout) and exc.too_large_resource_version)


class ResourceOps(Generic[O]):
    """The verbs of one resource in one namespace ("" on a namespaced resource: all namespaces, for list,
    watch and delete_collection; writes then take the object's namespace)."""

    def __init__(self, transport: Transport, ref: ResourceRef, object_codec: ObjectCodec[O],
                 namespace: str = "") -> None:
        self.transport = transport
        self.ref = ref
        self.codec = object_codec
        self.namespace = namespace if ref.namespaced else ""

    # --- paths --------------------------------------------------------------------------------------------

    def _item_path(self, name: str, subresource: str | None = None, namespace: str = "") -> str:
        if not name:
            raise ValueError(f"a name is required for {self.ref}")
        ns = self.namespace or namespace
        if self.ref.namespaced and not ns:
            raise ValueError(f"{self.ref} is namespaced: give the client a namespace (or the object one)")
        return self.ref.path(ns, name, subresource)

    def _collection_path(self, namespace: str = "") -> str:
        ns = self.namespace or namespace
        return self.ref.path(ns)

    def _typed_body(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("apiVersion"):
            data["apiVersion"] = self.ref.api_version
        if not data.get("kind"):
            data["kind"] = self.ref.kind
        return data

    def _decode(self, body: bytes) -> O:
        return self.codec.decode(orjson.loads(body))

    def key(self, obj: O) -> str:
        """`namespace/name`, or `name` for cluster-scoped objects (client-go's MetaNamespaceKeyFunc)."""
        ns, name, _ = self.codec.meta(obj)
        return f"{ns}/{name}" if ns else name

    def resource_version(self, obj: O) -> str:
        return self.codec.meta(obj)[2]

    # --- reads --------------------------------------------------------------------------------------------

    async def get(self, name: str, *, subresource: str | None = None, resource_version: str | None = None,
                  timeout: float | None = None) -> O:
        query = [("resourceVersion", resource_version)] if resource_version is not None else []
        resp = await self.transport.request("GET", self._item_path(name, subresource), query=query, timeout=timeout)
        return self._decode(resp.body)

    async def list(self, *, label_selector: Selector = None, field_selector: Selector = None,
                   limit: int | None = None, continue_: str | None = None, resource_version: str | None = None,
                   resource_version_match: str | None = None, timeout: float | None = None) -> ObjectList[O]:
        return await self.list_page(label_selector=label_selector, field_selector=field_selector, limit=limit,
                                    continue_=continue_, resource_version=resource_version,
                                    resource_version_match=resource_version_match, timeout=timeout)

    async def list_page(self, *, label_selector: Selector = None, field_selector: Selector = None,
                        limit: int | None = None, continue_: str | None = None, resource_version: str | None = None,
                        resource_version_match: str | None = None, timeout: float | None = None) -> ObjectList[O]:
        query = _list_query(label_selector, field_selector)
        if limit:
            query.append(("limit", str(limit)))
        if continue_:
            query.append(("continue", continue_))
        if resource_version is not None:
            query.append(("resourceVersion", resource_version))
        if resource_version_match:
            query.append(("resourceVersionMatch", resource_version_match))
        resp = await self.transport.request("GET", self._collection_path(), query=query, timeout=timeout)
        # a large list allocates many containers: decode it without cyclic GC passes (see `codec.gc_paused`)
        with codec.gc_paused() if len(resp.body) >= LARGE_BODY else contextlib.nullcontext():
            data = orjson.loads(resp.body)
            items = self.codec.decode_items(data.get("items") or [])
        meta = data.get("metadata") or {}
        return ObjectList(items, ListMeta.model_validate(meta, extra="ignore", by_alias=True, by_name=False),
                          data.get("apiVersion", ""), data.get("kind", ""))

    async def iter(self, *, label_selector: Selector = None, field_selector: Selector = None,
                   page_size: int = DEFAULT_PAGE_SIZE, timeout: float | None = None) -> AsyncIterator[O]:
        """Every object, page by page (following `continue`), all read at the first page's resourceVersion.
        A 410 on a later page (history compacted while paging) raises `Expired`: start again."""
        token: str | None = None
        while True:
            page = await self.list_page(label_selector=label_selector, field_selector=field_selector,
                                        limit=page_size, continue_=token, timeout=timeout)
            for item in page.items:
                yield item
            token = page.continue_
            if not token:
                return

    async def list_all(self, *, label_selector: Selector = None, field_selector: Selector = None,
                       resource_version: str = "", page_size: int = DEFAULT_PAGE_SIZE,
                       timeout: float | None = None) -> tuple[builtins.list[O], str]:
        """Every object and the list's resourceVersion. `resource_version="0"` asks for one unpaged answer
        from the server's cache (any age); "" reads consistently, in pages; a continue token that expires
        midway falls back to one unpaged consistent list (client-go's pager)."""
        if resource_version == "0" or page_size <= 0:
            page = await self.list_page(label_selector=label_selector, field_selector=field_selector,
                                        resource_version=resource_version or None, timeout=timeout)
            return page.items, page.resource_version
        items: builtins.list[O] = []
        token: str | None = None
        rv = ""
        while True:
            first_rv = (resource_version or None) if token is None else None
            try:
                page = await self.list_page(label_selector=label_selector, field_selector=field_selector,
                                            limit=page_size, continue_=token, resource_version=first_rv,
                                            timeout=timeout)
            except errors.Gone:
                if not token:
                    raise
                page = await self.list_page(label_selector=label_selector, field_selector=field_selector,
                                            timeout=timeout)
                return page.items, page.resource_version
            items.extend(page.items)
            rv = rv or page.resource_version
            token = page.continue_
            if not token:
                return items, rv

    # --- writes -------------------------------------------------------------------------------------------

    async def create(self, obj: O, *, dry_run: bool = False, field_manager: str | None = None,
                     field_validation: FieldValidation | None = None, timeout: float | None = None) -> O:
        data = self._typed_body(self.codec.encode(obj))
        ns, _, _ = self.codec.meta(obj)
        path = self._namespaced_collection(ns)
        resp = await self.transport.request("POST", path, query=_write_query(dry_run, field_manager, field_validation),
                                            body=orjson.dumps(data), timeout=timeout)
        return self._decode(resp.body)

    def _namespaced_collection(self, namespace: str) -> str:
        ns = self.namespace or namespace
        if self.ref.namespaced and not ns:
            raise ValueError(f"{self.ref} is namespaced: give the client a namespace (or the object one)")
        return self.ref.path(ns)

    async def update(self, obj: O, *, subresource: str | None = None, dry_run: bool = False,
                     field_manager: str | None = None, field_validation: FieldValidation | None = None,
                     timeout: float | None = None) -> O:
        """PUT the whole object (its resourceVersion makes it conditional: a stale one is `Conflict`)."""
        data = self._typed_body(self.codec.encode(obj))
        ns, name, _ = self.codec.meta(obj)
        resp = await self.transport.request("PUT", self._item_path(name, subresource, ns),
                                            query=_write_query(dry_run, field_manager, field_validation),
                                            body=orjson.dumps(data), timeout=timeout)
        return self._decode(resp.body)

    async def patch(self, name: str, patch: Patch, *,
                    patch_type: PatchType | None = None, subresource: str | None = None, dry_run: bool = False,
                    field_manager: str | None = None, field_validation: FieldValidation | None = None,
                    timeout: float | None = None) -> O:
        """A merge patch (a mapping; RFC 7386), a JSON patch (a list of operations; RFC 6902), or a
        strategic merge patch (`patch_type="strategic"`, built-in kinds of a real Kubernetes only)."""
        kind = patch_type or ("json" if isinstance(patch, Sequence) else "merge")
        if kind not in PATCH_TYPES:
            raise ValueError(f"unknown patch type {kind!r}: use merge, json or strategic (apply() applies)")
        resp = await self.transport.request("PATCH", self._item_path(name, subresource),
                                            query=_write_query(dry_run, field_manager, field_validation),
                                            body=orjson.dumps(patch), content_type=PATCH_TYPES[kind],
                                            timeout=timeout)
        return self._decode(resp.body)

    async def apply(self, config: O | Mapping[str, Any], *, field_manager: str, force: bool = False,
                    subresource: str | None = None, dry_run: bool = False, timeout: float | None = None) -> O:
        """Server-side apply of `config` (a typed object sends only the fields set on it) as `field_manager`;
        `force` takes over fields other managers own instead of failing with `Conflict`."""
        if not field_manager:
            raise ValueError("server-side apply needs a field manager")
        data = self._typed_body(self.codec.encode_apply(config))
        meta = data.get("metadata") or {}
        query = _write_query(dry_run, field_manager, None)
        if force:
            query.append(("force", "true"))
        resp = await self.transport.request(
            "PATCH", self._item_path(meta.get("name") or "", subresource, meta.get("namespace") or ""),
            query=query, body=orjson.dumps(data), content_type=APPLY_PATCH, timeout=timeout)
        return self._decode(resp.body)

    async def delete(self, name: str, *, preconditions: Preconditions | Mapping[str, str] | None = None,
                     propagation_policy: PropagationPolicy | None = None, grace_period_seconds: int | None = None,
                     dry_run: bool = False, timeout: float | None = None) -> O | None:
        """Delete; returns the object when the server sends it (gone, or still there with finalizers and a
        deletionTimestamp), None when it answers with a Status."""
        resp = await self.transport.request(
            "DELETE", self._item_path(name), timeout=timeout,
            body=_delete_body(preconditions, propagation_policy, grace_period_seconds, dry_run))
        data = orjson.loads(resp.body)
        if not isinstance(data, dict) or data.get("kind") == "Status":
            return None
        return self.codec.decode(data)

    async def delete_collection(self, *, label_selector: Selector = None, field_selector: Selector = None,
                                propagation_policy: PropagationPolicy | None = None,
                                grace_period_seconds: int | None = None, dry_run: bool = False,
                                timeout: float | None = None) -> builtins.list[O]:
        """Delete every object the selectors match; the deleted objects when the server lists them."""
        resp = await self.transport.request(
            "DELETE", self._collection_path(), query=_list_query(label_selector, field_selector), timeout=timeout,
            body=_delete_body(None, propagation_policy, grace_period_seconds, dry_run))
        data = orjson.loads(resp.body)
        if not isinstance(data, dict) or data.get("kind") == "Status":
            return []
        return self.codec.decode_items(data.get("items") or [])

    async def request_json(self, method: str, name: str, subresource: str | None = None, *,
                           body: Any = None, query: Sequence[tuple[str, str]] = (),
                           timeout: float | None = None) -> dict[str, Any]:
        """Any call on one object or subresource, JSON in and out (for subresources of other kinds, such as
        autoscaling/v1 Scale)."""
        resp = await self.transport.request(method, self._item_path(name, subresource), query=query,
                                            body=None if body is None else orjson.dumps(body), timeout=timeout)
        data: dict[str, Any] = orjson.loads(resp.body)
        return data

    # --- watch --------------------------------------------------------------------------------------------

    async def watch_stream(self, *, label_selector: Selector = None, field_selector: Selector = None,
                           resource_version: str | None = None, allow_bookmarks: bool = True,
                           timeout_seconds: int | None = None, send_initial_events: bool = False,
                           read_timeout: float | None = None) -> AsyncGenerator[WatchEvent[O], None]:
        """One watch connection: its events until the server ends the stream. An ERROR event raises its
        typed error (410 → `Expired`/`Gone`); a cut connection raises `TransportError`."""
        query = [("watch", "true"), *_list_query(label_selector, field_selector)]
        if resource_version is not None:
            query.append(("resourceVersion", resource_version))
        if allow_bookmarks:
            query.append(("allowWatchBookmarks", "true"))
        if timeout_seconds:
            query.append(("timeoutSeconds", str(timeout_seconds)))
        if send_initial_events:
            query += [("sendInitialEvents", "true"), ("resourceVersionMatch", "NotOlderThan")]
        stream = await self.transport.stream(self._collection_path(), query=query, read_timeout=read_timeout)
        decode = self.codec.decode
        try:
            async for line in stream.lines():
                try:
                    event = orjson.loads(line)
                    kind = event["type"]
                    obj = event["object"]
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    raise errors.TransportError(f"undecodable watch event: {line[:200]!r}") from exc
                if kind == "ERROR":
                    status = errors.decode_status(obj)
                    if status is None:
                        raise errors.InternalError(Status(code=500, reason="InternalError",
                                                                 message=f"watch ERROR event: {obj!r}"[:1024]))
                    raise errors.from_status(status)
                yield WatchEvent(kind, decode(obj))
        finally:
            stream.close()

    async def _list_retrying(self, label_selector: Selector, field_selector: Selector, resource_version: str,
                             backoff: Backoff) -> tuple[builtins.list[O], str]:
        """`list_all`, tried again after a backoff while it fails in a way that passes (unavailable, busy, cut)."""
        while True:
            try:
                return await self.list_all(label_selector=label_selector, field_selector=field_selector,
                                           resource_version=resource_version)
            except RETRYABLE_WATCH_ERRORS as exc:
                if needs_relist(exc):
                    raise
                delay = backoff.next()
                log.info("list of %s failed (%s); again in %.1fs", self.ref, exc, delay)
                await asyncio.sleep(delay)

    async def watch(self, *, label_selector: Selector = None, field_selector: Selector = None,
                    resource_version: str | None = None, timeout_seconds: int | None = None,
                    bookmarks: bool = False, relist_on_expired: bool = True,
                    backoff: Backoff | None = None) -> AsyncIterator[WatchEvent[O]]:
        """Changes until the consumer stops iterating.

        Without `resource_version` (or with "0") the current objects come first as ADDED events (read
        with a list), then every change. A dropped or timed-out stream is resumed from the last
        resourceVersion seen (events and bookmarks); after a 410 the objects are listed again and the
        differences with what was delivered come as ADDED, MODIFIED and DELETED events (objects a watch
        started at a given resourceVersion never delivered cannot be reported deleted). `bookmarks=True`
        also yields the BOOKMARK events."""
        known: dict[str, O] = {}
        rv = resource_version or ""
        backoff = backoff or Backoff()
        if rv in ("", "0"):
            items, rv = await self._list_retrying(label_selector, field_selector, rv, backoff)
            for obj in items:
                known[self.key(obj)] = obj
                yield WatchEvent("ADDED", obj)
        while True:
            try:
                stream = self.watch_stream(label_selector=label_selector, field_selector=field_selector,
                                           resource_version=rv, timeout_seconds=timeout_seconds)
                async with contextlib.aclosing(stream):  # closed (its connection too) when the consumer stops
                    async for event in stream:
                        backoff.reset()
                        rv = self.resource_version(event.object) or rv
                        if event.type == "BOOKMARK":
                            if bookmarks:
                                yield event
                            continue
                        key = self.key(event.object)
                        if event.type == "DELETED":
                            known.pop(key, None)
                        else:
                            known[key] = event.object
                        yield event
                continue  # the server ended the stream (timeoutSeconds): resume at once
            except RETRYABLE_WATCH_ERRORS as exc:
                if not needs_relist(exc):
                    delay = backoff.next()
                    log.info("watch of %s interrupted (%s); resuming from %s in %.1fs", self.ref, exc, rv, delay)
                    await asyncio.sleep(delay)
                    continue
                failure: BaseException = exc
            except errors.Gone as exc:
                failure = exc
            if not relist_on_expired:
                raise failure
            log.info("watch of %s: %s; listing again", self.ref, failure)
            items, rv = await self._list_retrying(label_selector, field_selector, "", backoff)
            fresh = {self.key(o): o for o in items}
            for key, obj in fresh.items():
                old = known.get(key)
                if old is None:
                    yield WatchEvent("ADDED", obj)
                elif self.resource_version(old) != self.resource_version(obj):
                    yield WatchEvent("MODIFIED", obj)
            for key in [k for k in known if k not in fresh]:
                yield WatchEvent("DELETED", known[key])
            known = fresh

