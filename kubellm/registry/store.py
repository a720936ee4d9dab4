"""The generic Store: create, get, list, watch, update, delete for any resource, driven by a Strategy.

It follows k8s.io/apiserver/pkg/registry/generic/registry/store.go and rest/{create,update}.go:
decode → system fields → strategy prepare → validate (one 422 listing every error) → storage.
Storage errors are turned into API errors naming the resource and object, never the storage key.

An update is one path for PUT, patches, server-side apply and the status subresource: an
`UpdatedObjectInfo` (`updates.py`) gives the new object for the current one, and `_next_version`
turns that into what is written, inside the storage's read-modify-write loop (or once, for a dry
run). Nothing here returns secrets to clients: that is the REST layer's egress (`rest.py`).
"""

from __future__ import annotations

import builtins
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

from kubellm.apis import errors
from kubellm.apis import secrets as secret_fields
from kubellm.apis.codec import FieldValidation, decode
from kubellm.apis.scheme import ResourceInfo
from kubellm.apis.selectors import parse_field_selector, parse_label_selector
from kubellm.apis.timestamps import now_rfc3339
from kubellm.apis.validation import field as ferr
from kubellm.apis.validation.field import ErrorList
from kubellm.apis.validation.meta import validate_object_meta, validate_object_meta_update
from kubellm.registry import fieldmanager
from kubellm.registry.objects import Object
from kubellm.registry.storage import errors as serr
from kubellm.registry.storage.interface import (
    Event,
    EventSink,
    ListOptions,
    Obj,
    Preconditions,
    Storage,
    Watcher,
    WatchOptions,
)
from kubellm.registry.storage.selection import SelectionPredicate
from kubellm.registry.strategy import StatusStrategy, Strategy
from kubellm.registry.updates import Decoded, Patched, Replacement, UpdatedObjectInfo

__all__ = ["Admit", "DeleteParams", "ListParams", "MutateFunc", "Result", "Store", "WriteOptions", "now_rfc3339",
           "resource_root"]

GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATE_SUFFIX = 5
MAX_NAME = 63
GENERATE_RETRIES = 8

MutateFunc = Callable[[Obj], Awaitable[Obj] | Obj]
Admit = Callable[[Obj, Obj | None], None]


def resource_root(info: ResourceInfo) -> str:
    """The storage key prefix of a resource: `/<group>/<plural>/`."""
    return info.storage_root


@dataclass(frozen=True)
class ListParams:
    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    allow_bookmarks: bool = False
    bookmark_interval: float = 60.0
    send_initial_events: bool = False


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    field_validation: FieldValidation = FieldValidation.WARN
    field_manager: str = ""
    admit: Admit | None = None
    """Called with (new, old or None) after validation, before anything is written: the place for checks
    that depend on who asks (e.g. RBAC escalation). It raises a StatusError to refuse."""


@dataclass
class Result:
    object: Obj
    created: bool = False
    deleted: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeleteParams:
    preconditions: Preconditions | None = None
    propagation_policy: str | None = None
    grace_period_seconds: int | None = None
    dry_run: bool = False


@dataclass
class _Attempt:
    """What one try of an update decided, for the caller after the storage loop (each try starts afresh)."""

    created: bool = False
    delete_now: bool = False
    warnings: list[str] = field(default_factory=list)


def _has_finalizers(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("finalizers"))


class Store:
    def __init__(self, info: ResourceInfo, strategy: Strategy, storage: Storage) -> None:
        self.info = info
        self.strategy = strategy
        self.status_strategy = StatusStrategy(info)
        self.storage = storage

    # ----- keys and errors ---------------------------------------------------------------------------

    def key_root(self, namespace: str | None) -> str:
        root = resource_root(self.info)
        if self.info.namespaced and namespace:
            root += f"{namespace}/"
        return root

    def key(self, namespace: str | None, name: str) -> str:
        if not name or "/" in name or name in (".", ".."):
            raise errors.bad_request(f"invalid resource name {name!r}: may not contain '/'")
        if self.info.namespaced and not namespace:
            raise errors.bad_request("namespace is required for a namespaced resource")
        return self.key_root(namespace) + name

    @contextmanager
    def _storage_errors(self, name: str) -> Iterator[None]:
        group, plural = self.info.group, self.info.plural
        try:
            yield
        except serr.KeyNotFound:
            raise errors.not_found(plural, group, name) from None
        except serr.KeyExists:
            raise errors.already_exists(plural, group, name) from None
        except serr.Conflict as exc:
            raise errors.conflict(plural, group, name, exc.message or errors.OPTIMISTIC_LOCK_MSG) from None
        except serr.Expired as exc:
            raise errors.resource_expired(exc.message) from None
        except serr.TooLargeResourceVersion as exc:
            raise errors.too_large_resource_version(exc.message or "Too large resource version") from None
        except serr.RequestTooLarge as exc:
            raise errors.request_entity_too_large(exc.message) from None
        except serr.InvalidContinue as exc:
            raise errors.bad_request(exc.message) from None
        except serr.Timeout as exc:
            raise errors.timeout(f"request did not complete within the storage deadline: {exc.message}") from None
        except serr.Unavailable as exc:
            raise errors.service_unavailable(f"storage is unavailable: {exc.message}") from None

    def _invalid(self, name: str, errs: ErrorList) -> errors.StatusError:
        return errors.invalid(self.info.kind, self.info.group, name, errs)

    # ----- decoding ----------------------------------------------------------------------------------

    def decode(self, body: Obj, validation: FieldValidation) -> Decoded:
        """A request body as this resource's type: apiVersion and kind checked and set, wrong field types
        turned into field errors, unknown fields handled per `fieldValidation`."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON or YAML object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version not in (None, "", self.info.api_version):
            raise errors.bad_request(f"the API version in the data ({api_version}) does not match the "
                                     f"expected API version ({self.info.api_version})")
        if kind not in (None, "", self.info.kind):
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                                     f"({self.info.kind})")
        decoded = decode(self.info.model, body, validation)
        obj = cast(Object, decoded.obj)
        obj.api_version = self.info.api_version
        obj.kind = self.info.kind
        return Decoded(obj, list(decoded.field_errors), list(decoded.warnings))

    def decode_for(self, body: Obj, namespace: str | None, name: str, validation: FieldValidation) -> Decoded:
        """`decode`, for the object at `name` in `namespace`: the body may not name another."""
        decoded = self.decode(body, validation)
        self._set_namespace(decoded.obj, namespace)
        if decoded.obj.metadata.name != name:
            raise self._invalid(name, [ferr.invalid("metadata.name", decoded.obj.metadata.name,
                                                    "field is immutable")])
        return decoded

    def _set_namespace(self, obj: Object, namespace: str | None) -> None:
        meta = obj.metadata
        if not self.info.namespaced:
            return
        if meta.namespace and namespace and meta.namespace != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace "
                                     "sent on the request")
        meta.namespace = meta.namespace or namespace

    def _from_storage(self, obj: Obj) -> Object:
        return cast(Object, self.info.model.model_validate(obj, strict=False))

    def _track(self, old: Obj | None, new: Obj, options: WriteOptions, subresource: str = "") -> Obj:
        """`new` with managedFields recording this write (create, update or patch) by `options.field_manager`."""
        return fieldmanager.update_managed_fields(old, new, options.field_manager or "unknown", subresource=subresource,
                                                  now=now_rfc3339(), schema=self.info.model)

    # ----- create ------------------------------------------------------------------------------------

    async def create(self, body: Obj, *, namespace: str | None = None,
                     options: WriteOptions = WriteOptions()) -> Result:
        decoded = self.decode(body, options.field_validation)
        obj = decoded.obj
        self._set_namespace(obj, namespace)
        meta = obj.metadata
        generated = not meta.name and bool(meta.generate_name)
        if generated:
            meta.name = self._generate_name(meta.generate_name or "")
        warnings = decoded.warnings + await self._prepare_create(obj, decoded.errors)
        if options.admit is not None:
            options.admit(obj.to_dict(), None)
        if options.dry_run:
            return Result(self._track(None, obj.to_dict(), options), created=True, warnings=warnings)
        for attempt in range(GENERATE_RETRIES if generated else 1):
            if attempt:
                meta.name = self._generate_name(meta.generate_name or "")
            name = meta.name or ""
            try:
                with self._storage_errors(name):
                    stored = await self.storage.create(self.key(meta.namespace, name),
                                                       self._track(None, obj.to_dict(), options))
                return Result(stored, created=True, warnings=warnings)
            except errors.StatusError as exc:
                if not (generated and exc.reason == "AlreadyExists"):
                    raise
        raise errors.StatusError(409, "AlreadyExists", f'{self.info.group_resource} "{meta.name}" already '
                                 f"exists: could not generate a unique name from "
                                 f'"{meta.generate_name}"; try again')

    async def _prepare_create(self, obj: Object, type_errs: ErrorList) -> builtins.list[str]:
        """System fields, strategy hooks and validation of a new object; returns warnings."""
        meta = obj.metadata
        meta.uid = str(uuid.uuid4())
        meta.creation_timestamp = now_rfc3339()
        meta.deletion_timestamp = None
        meta.deletion_grace_period_seconds = None
        meta.resource_version = None
        meta.self_link = None
        self.strategy.prepare_for_create(obj)
        errs = list(type_errs)
        errs += validate_object_meta(meta.to_dict(), namespaced=self.info.namespaced,
                                     name_fn=self.strategy.name_validator)
        errs += self._dedupe(type_errs, self.strategy.validate(obj))
        if errs:
            raise self._invalid(meta.name or meta.generate_name or "", errs)
        await self.strategy.before_storage(obj)
        self._scrub_last_applied(obj)
        return self.strategy.warnings_on_create(obj)

    def _scrub_last_applied(self, obj: Object) -> None:
        """Secret fields never reach storage inside kubectl's last-applied annotation."""
        paths = self.info.secret_fields
        annotations = obj.metadata.annotations
        if paths and annotations and secret_fields.LAST_APPLIED in annotations:
            scrubbed = secret_fields.scrub_last_applied({"metadata": {"annotations": annotations}}, paths)
            obj.metadata.annotations = scrubbed["metadata"]["annotations"]

    @staticmethod
    def _generate_name(prefix: str) -> str:
        prefix = prefix[: MAX_NAME - GENERATE_SUFFIX]
        return prefix + "".join(secrets.choice(GENERATE_ALPHABET) for _ in range(GENERATE_SUFFIX))

    @staticmethod
    def _dedupe(first: ErrorList, more: ErrorList) -> ErrorList:
        """Drop semantic errors on a field already reported as the wrong type (its value was removed)."""
        bad = {e.field for e in first}
        return [e for e in more if e.field not in bad]

    # ----- get / list / watch ------------------------------------------------------------------------

    async def get(self, namespace: str | None, name: str, resource_version: str = "") -> Obj:
        key = self.key(namespace, name)
        with self._storage_errors(name):
            return await self.storage.get(key, resource_version)

    def predicate(self, params: ListParams) -> SelectionPredicate:
        label = parse_label_selector(params.label_selector)
        fsel = parse_field_selector(params.field_selector)
        allowed = self.strategy.selectable_fields()
        for name in sorted(fsel.fields()):
            if name not in allowed:
                only = ", ".join(f'"{f}"' for f in allowed)
                raise errors.bad_request(f'"{name}" is not a known field selector: only {only}')
        return SelectionPredicate(label, fsel, self.strategy.get_attrs)

    def _check_list_params(self, params: ListParams) -> None:
        """Refuse what storage cannot represent or does not mean: etcd takes int64 limits and revisions."""
        int64_max = 2**63 - 1
        if not 0 <= params.limit <= int64_max:
            raise errors.bad_request(f"limit must be a non-negative integer of at most {int64_max}, got "
                                     f"{params.limit}")
        if params.continue_token and params.resource_version not in ("", "0"):
            raise errors.bad_request("specifying resource version is not allowed when using continue")
        match = params.resource_version_match
        if match not in ("", "Exact", "NotOlderThan"):
            raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                                     '"Exact", "NotOlderThan"')
        if match and not params.resource_version:
            raise errors.bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
        if match == "Exact" and params.resource_version == "0":
            raise errors.bad_request('resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
        if match and params.continue_token:
            raise errors.bad_request("resourceVersionMatch is forbidden when continue is provided")
        rv = params.resource_version
        if rv not in ("", "0") and (len(rv) > 24 or not rv.isascii() or not rv.isdigit() or int(rv) > int64_max):
            raise errors.bad_request(f'Invalid value: "{rv[:64]}": resourceVersion must be a non-negative integer '
                                     f"of at most {int64_max}")

    async def list(self, namespace: str | None, params: ListParams = ListParams()) -> Obj:
        self._check_list_params(params)
        pred = self.predicate(params)
        opts = ListOptions(params.resource_version, params.resource_version_match, params.limit,
                           params.continue_token, pred)
        try:
            with self._storage_errors(""):
                result = await self.storage.get_list(self.key_root(namespace), opts)
        except errors.StatusError as exc:
            if exc.code == 410 and params.continue_token:
                raise errors.resource_expired(
                    "The provided continue parameter is too old to display a consistent list result. You can "
                    "start a new list without the continue parameter, or use the continue value from the "
                    "previous list result.") from None
            raise
        meta: Obj = {"resourceVersion": result.resource_version}
        if result.continue_token:
            meta["continue"] = result.continue_token
        if result.remaining_item_count is not None:
            meta["remainingItemCount"] = result.remaining_item_count
        return {"apiVersion": self.info.api_version, "kind": self.info.list_kind, "metadata": meta,
                "items": result.items}

    async def watch(self, namespace: str | None, params: ListParams = ListParams(), *,
                    sink: EventSink | None = None) -> AsyncIterator[Event]:
        """Start a watch now (errors such as 410 are raised here) and return its event stream. `sink`: the
        consumer's synchronous intake for changes (`WatchOptions.sink`; the stream passes changes on unaltered)."""
        if params.resource_version not in ("", "0"):
            self._check_list_params(ListParams(resource_version=params.resource_version))
        pred = self.predicate(params)
        opts = WatchOptions(params.resource_version, pred, params.allow_bookmarks, params.bookmark_interval,
                            params.send_initial_events, sink)
        with self._storage_errors(""):
            watcher = await self.storage.watch(self.key_root(namespace), opts)
        return self._events(watcher)

    async def _events(self, watcher: Watcher) -> AsyncIterator[Event]:
        try:
            with self._storage_errors(""):
                async for ev in watcher:
                    if ev.type == "BOOKMARK":
                        ev.object = {"apiVersion": self.info.api_version, "kind": self.info.kind, **ev.object}
                    yield ev
        finally:
            await watcher.close()

    # ----- update ------------------------------------------------------------------------------------

    async def update(self, namespace: str | None, name: str, body: Obj, *,
                     options: WriteOptions = WriteOptions(), subresource: str = "") -> Result:
        """PUT: replace the object (or its status) with `body`, which carries the expected resourceVersion."""
        decoded = self.decode(body, options.field_validation)
        self._set_namespace(decoded.obj, namespace)
        meta = decoded.obj.metadata
        if meta.name and meta.name != name:
            raise errors.bad_request(f"the name of the object ({meta.name}) does not match the name "
                                     f"on the URL ({name})")
        meta.name = name
        return await self.write(namespace, name, Replacement(decoded), options, subresource)

    async def patch(self, namespace: str | None, name: str, mutate: MutateFunc, *,
                    options: WriteOptions = WriteOptions(), subresource: str = "", create: bool = False,
                    track: bool = True) -> Result:
        """Apply `mutate` to the current object's JSON (as clients see it) and store the result, retrying on
        conflicts. With `create`, a missing object is created from `mutate({})` (server-side apply does this)."""
        patched = Patched(mutate, lambda body: self.decode_for(body, namespace, name, options.field_validation),
                          self.strategy.for_output)
        return await self.write(namespace, name, patched, options, subresource, create_missing=create, track=track)

    async def apply(self, namespace: str | None, name: str, body: Obj, *, force: bool,
                    options: WriteOptions = WriteOptions(), subresource: str = "") -> Result:
        """Server-side apply of the configuration `body` for `options.field_manager`; creates if missing."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of an apply patch must be an object")
        meta = body.get("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        meta = {**meta, "name": meta.get("name", name)}
        if self.info.namespaced and namespace:
            meta.setdefault("namespace", namespace)
        config = {**body, "metadata": meta}

        def mutate(current: Obj) -> Obj:
            return fieldmanager.apply(current or None, config, options.field_manager, force=force,
                                      subresource=subresource, now=now_rfc3339(), schema=self.info.model)

        return await self.patch(namespace, name, mutate, options=options, subresource=subresource,
                                create=not subresource, track=False)

    async def write(self, namespace: str | None, name: str, updated: UpdatedObjectInfo, options: WriteOptions,
                    subresource: str = "", *, create_missing: bool = False, track: bool = True) -> Result:
        """Write what `updated` makes of the current object (or, if allowed, create it), through the main
        endpoint or the status subresource."""
        key = self.key(namespace, name)
        strategy: Strategy = self.status_strategy if subresource == "status" else self.strategy
        may_create = (create_missing or strategy.allow_create_on_update) and not subresource
        attempt = _Attempt()

        async def try_update(existing: Obj) -> Obj:
            nonlocal attempt
            attempt = _Attempt()
            return await self._next_version(existing, name, updated, options, strategy, subresource, track, attempt)

        with self._storage_errors(name):
            if options.dry_run:  # one try on the current object, nothing written
                data = await try_update(await self._current(key, may_create))
                return Result(data, created=attempt.created, warnings=attempt.warnings)
            stored = await self.storage.guaranteed_update(key, try_update, ignore_not_found=may_create)
        if attempt.delete_now:  # the last finalizer of an object being deleted is gone
            rv = stored["metadata"]["resourceVersion"]
            try:
                with self._storage_errors(name):
                    gone = await self.storage.delete(key, preconditions=Preconditions(resource_version=rv))
                return Result(gone.object, deleted=True, warnings=attempt.warnings)
            except errors.StatusError as exc:
                if exc.reason != "NotFound":
                    raise
        return Result(stored, created=attempt.created, warnings=attempt.warnings)

    async def _current(self, key: str, may_create: bool) -> Obj:
        try:
            return await self.storage.get(key)
        except serr.KeyNotFound:
            if may_create:
                return {}
            raise

    async def _next_version(self, existing: Obj, name: str, updated: UpdatedObjectInfo, options: WriteOptions,
                            strategy: Strategy, subresource: str, track: bool, attempt: _Attempt) -> Obj:
        """The object to store in place of `existing` ({} when there is none yet)."""
        decoded = await updated.updated_object(existing or None)
        new, errs = decoded.obj, list(decoded.errors)
        attempt.warnings = list(decoded.warnings)
        if not existing:
            if subresource:
                raise errors.not_found(self.info.plural, self.info.group, name)
            attempt.warnings += await self._prepare_create(new, errs)
            attempt.created = True
            data = new.to_dict()
            if options.admit is not None:
                options.admit(data, None)
            return self._track(None, data, options) if track else data
        old = self._from_storage(existing)
        self._check_resource_version(name, updated, new, old, strategy, errs)
        self._keep_system_fields(new, old)
        strategy.prepare_for_update(new, old)
        new_meta = new.metadata.to_dict()
        errs += validate_object_meta(new_meta, namespaced=self.info.namespaced, name_fn=strategy.name_validator)
        errs += validate_object_meta_update(new_meta, existing.get("metadata", {}))
        errs += self._dedupe(errs, strategy.validate_update(new, old))
        if errs:
            raise self._invalid(name, errs)
        await strategy.before_storage(new, old)
        self._scrub_last_applied(new)
        attempt.warnings += strategy.warnings_on_update(new, old)
        attempt.delete_now = bool(new.metadata.deletion_timestamp) and not new.metadata.finalizers
        data = new.to_dict()
        if options.admit is not None:
            options.admit(data, existing)
        if track:
            data = self._track(existing, data, options, subresource)
        if options.dry_run:
            data["metadata"]["resourceVersion"] = old.metadata.resource_version
        return data

    def _check_resource_version(self, name: str, updated: UpdatedObjectInfo, new: Object, old: Object,
                                strategy: Strategy, errs: ErrorList) -> None:
        """A PUT must name the version it replaces (unless the kind allows otherwise); any version given
        must be the current one."""
        rv = new.metadata.resource_version
        if not rv and updated.requires_resource_version and not strategy.allow_unconditional_update:
            raise self._invalid(name, [*errs, ferr.invalid("metadata.resourceVersion", 0,
                                                           "must be specified for an update")])
        if rv and rv != old.metadata.resource_version:
            raise errors.conflict(self.info.plural, self.info.group, name, errors.OPTIMISTIC_LOCK_MSG)

    @staticmethod
    def _keep_system_fields(new: Object, old: Object) -> None:
        meta, old_meta = new.metadata, old.metadata
        meta.uid = meta.uid or old_meta.uid
        meta.creation_timestamp = old_meta.creation_timestamp
        meta.deletion_timestamp = old_meta.deletion_timestamp
        meta.deletion_grace_period_seconds = old_meta.deletion_grace_period_seconds
        meta.generation = old_meta.generation
        meta.resource_version = None
        meta.self_link = None

    # ----- delete ------------------------------------------------------------------------------------

    async def delete(self, namespace: str | None, name: str, params: DeleteParams = DeleteParams()) -> Result:
        """Delete now, or, while finalizers remain, mark with deletionTimestamp and return the object."""
        key = self.key(namespace, name)
        self._check_delete_params(params)
        if name in self.strategy.undeletable:
            raise errors.StatusError(403, "Forbidden", f'{self.info.group_resource} "{name}" is forbidden: this '
                                     f"{self.info.singular} may not be deleted",
                                     {"name": name, "group": self.info.group, "kind": self.info.plural})
        pre = params.preconditions

        async def without_finalizers(existing: Obj) -> bool:
            return not _has_finalizers(existing)

        while True:
            with self._storage_errors(name):
                if params.dry_run:
                    current = await self.storage.get(key)
                    self._check_preconditions(name, pre, current)
                    if not _has_finalizers(current):
                        return Result(current, deleted=True)
                else:  # one round trip when nothing holds the object back
                    outcome = await self.storage.delete(key, preconditions=pre, validate_deletion=without_finalizers)
                    if outcome.deleted:
                        return Result(outcome.object, deleted=True)
                    current = outcome.object
            meta = current.get("metadata", {})
            if meta.get("deletionTimestamp"):
                return Result(current)
            if params.dry_run:
                return Result(current | {"metadata": meta | {"deletionTimestamp": now_rfc3339(),
                                                             "deletionGracePeriodSeconds": 0}})
            with self._storage_errors(name):
                marked = await self.storage.guaranteed_update(key, self._mark_deleted, preconditions=pre)
            if _has_finalizers(marked):
                return Result(marked)
            # the finalizers went meanwhile (the mark wrote nothing): delete after all

    @staticmethod
    async def _mark_deleted(existing: Obj) -> Obj:
        """Set deletionTimestamp on an object held by finalizers; without them, leave it unchanged."""
        meta = existing.setdefault("metadata", {})
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp") and isinstance(meta.get("generation"), int) and meta["generation"] > 0:
                meta["generation"] += 1  # as kube's markAsDeleting: controllers watching spec changes see it
            meta.setdefault("deletionTimestamp", now_rfc3339())
            meta.setdefault("deletionGracePeriodSeconds", 0)
        return existing

    @staticmethod
    def _check_delete_params(params: DeleteParams) -> None:
        bad: ErrorList = []
        if params.propagation_policy not in (None, "Orphan", "Background", "Foreground"):
            bad.append(ferr.not_supported("propagationPolicy", params.propagation_policy,
                                          ["Background", "Foreground", "Orphan"]))
        grace = params.grace_period_seconds
        if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool) or grace < 0):
            bad.append(ferr.invalid("gracePeriodSeconds", grace, "must be greater than or equal to 0"))
        if bad:
            raise errors.invalid("DeleteOptions", "meta.k8s.io", "", bad)

    def _check_preconditions(self, name: str, pre: Preconditions | None, obj: Obj) -> None:
        if pre is None:
            return
        meta = obj.get("metadata", {})
        if pre.uid is not None and pre.uid != meta.get("uid"):
            raise errors.conflict(self.info.plural, self.info.group, name,
                                  f"Precondition failed: UID in precondition: {pre.uid}, UID in object meta: "
                                  f"{meta.get('uid', '')}")
        if pre.resource_version is not None and pre.resource_version != meta.get("resourceVersion"):
            raise errors.conflict(self.info.plural, self.info.group, name,
                                  f"Precondition failed: ResourceVersion in precondition: {pre.resource_version}, "
                                  f"ResourceVersion in object meta: {meta.get('resourceVersion', '')}")

    async def delete_collection(self, namespace: str | None, params: ListParams = ListParams(),
                                delete: DeleteParams = DeleteParams()) -> Obj:
        listed = await self.list(namespace, ListParams(params.label_selector, params.field_selector))
        removed: list[Obj] = []
        for item in listed["items"]:
            meta = item["metadata"]
            if meta["name"] in self.strategy.undeletable:
                continue  # a collection delete leaves them in place
            try:
                result = await self.delete(meta.get("namespace"), meta["name"],
                                           DeleteParams(None, delete.propagation_policy,
                                                        delete.grace_period_seconds, delete.dry_run))
            except errors.StatusError as exc:
                if exc.reason == "NotFound":
                    continue
                raise
            removed.append(result.object)
        return {"apiVersion": self.info.api_version, "kind": self.info.list_kind,
                "metadata": {"resourceVersion": listed["metadata"]["resourceVersion"]}, "items": removed}


