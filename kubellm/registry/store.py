"""The generic Store: create, get, list, watch, update, delete for any resource, driven by a Strategy.

It follows k8s.io/apiserver/pkg/registry/generic/registry/store.go and rest/{create,update}.go:
decode → system fields → strategy prepare → validate (one 422 listing every error) → storage.
Storage errors are turned into API errors naming the resource and object, never the storage key.
"""

from __future__ import annotations

import builtins
import copy
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubellm.apis import errors
from kubellm.apis import secrets as secret_fields
from kubellm.apis.base import APIModel
from kubellm.apis.codec import FieldValidation, decode
from kubellm.apis.scheme import ResourceInfo
from kubellm.apis.selectors import parse_field_selector, parse_label_selector
from kubellm.apis.validation import field as ferr
from kubellm.apis.validation.field import ErrorList
from kubellm.apis.validation.meta import validate_object_meta, validate_object_meta_update
from kubellm.registry import fieldmanager
from kubellm.registry.storage import errors as serr
from kubellm.registry.storage.interface import (
    Event,
    ListOptions,
    Obj,
    Preconditions,
    Storage,
    Watcher,
    WatchOptions,
)
from kubellm.registry.storage.selection import SelectionPredicate
from kubellm.registry.strategy import StatusStrategy, Strategy

GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATE_SUFFIX = 5
MAX_NAME = 63
GENERATE_RETRIES = 8
CONFLICT_RETRIES = 16

MutateFunc = Callable[[Obj], Awaitable[Obj] | Obj]
Admit = Callable[[Obj, Obj | None], None]


def resource_root(info: ResourceInfo) -> str:
    """The storage key prefix of a resource: `/<group>/<plural>/`."""
    return f"/{info.group}/{info.plural}/"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
            raise errors.timeout(exc.message or "Too large resource version") from None
        except serr.RequestTooLarge as exc:
            raise errors.request_entity_too_large(exc.message) from None
        except serr.InvalidContinue as exc:
            raise errors.bad_request(exc.message) from None
        except serr.Unavailable as exc:
            raise errors.service_unavailable(f"storage is unavailable: {exc.message}") from None

    def _invalid(self, name: str, errs: ErrorList) -> errors.StatusError:
        return errors.invalid(self.info.kind, self.info.group, name, errs)

    # ----- decoding ----------------------------------------------------------------------------------

    def _decode(self, body: Obj, validation: FieldValidation) -> tuple[APIModel, ErrorList, list[str]]:
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
        obj = decoded.obj
        obj.api_version = self.info.api_version  # type: ignore[attr-defined]
        obj.kind = self.info.kind  # type: ignore[attr-defined]
        return obj, decoded.field_errors, decoded.warnings

    def _set_namespace(self, obj: APIModel, namespace: str | None) -> None:
        meta = obj.metadata  # type: ignore[attr-defined]
        if not self.info.namespaced:
            return
        if meta.namespace and namespace and meta.namespace != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace "
                                     "sent on the request")
        meta.namespace = meta.namespace or namespace

    def _from_storage(self, obj: Obj) -> APIModel:
        return self.info.model.model_validate(obj, strict=False)

    # ----- create ------------------------------------------------------------------------------------

    async def create(self, body: Obj, *, namespace: str | None = None,
                     options: WriteOptions = WriteOptions()) -> Result:
        obj, type_errs, warnings = self._decode(body, options.field_validation)
        self._set_namespace(obj, namespace)
        meta = obj.metadata  # type: ignore[attr-defined]
        generated = not meta.name and bool(meta.generate_name)
        if generated:
            meta.name = self._generate_name(meta.generate_name)
        warnings += await self._prepare_create(obj, type_errs)
        if options.admit is not None:
            options.admit(obj.to_dict(), None)
        if options.dry_run:
            preview = fieldmanager.update_managed_fields(None, obj.to_dict(), options.field_manager or "unknown",
                                                         now=now_rfc3339())
            return Result(preview, created=True, warnings=warnings)
        for attempt in range(GENERATE_RETRIES if generated else 1):
            if attempt:
                meta.name = self._generate_name(meta.generate_name)
            data = fieldmanager.update_managed_fields(None, obj.to_dict(), options.field_manager or "unknown",
                                                      now=now_rfc3339())
            try:
                with self._storage_errors(meta.name):
                    stored = await self.storage.create(self.key(meta.namespace, meta.name), data)
                return Result(stored, created=True, warnings=warnings)
            except errors.StatusError as exc:
                if not (generated and exc.reason == "AlreadyExists"):
                    raise
        raise errors.StatusError(409, "AlreadyExists", f'{self.info.group_resource} "{meta.name}" already '
                                 f"exists: could not generate a unique name from "
                                 f'"{meta.generate_name}"; try again')

    async def _prepare_create(self, obj: APIModel, type_errs: ErrorList) -> builtins.list[str]:
        """System fields, strategy hooks and validation of a new object; returns warnings."""
        meta = obj.metadata  # type: ignore[attr-defined]
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

    def _scrub_last_applied(self, obj: APIModel) -> None:
        """Secret fields never reach storage inside kubectl's last-applied annotation."""
        paths = self.info.secret_fields
        annotations = obj.metadata.annotations  # type: ignore[attr-defined]
        if paths and annotations and secret_fields.LAST_APPLIED in annotations:
            scrubbed = secret_fields.scrub_last_applied({"metadata": {"annotations": annotations}}, paths)
            obj.metadata.annotations = scrubbed["metadata"]["annotations"]  # type: ignore[attr-defined]

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

    async def watch(self, namespace: str | None, params: ListParams = ListParams()) -> AsyncIterator[Event]:
        """Start a watch now (errors such as 410 are raised here) and return its event stream."""
        if params.resource_version not in ("", "0"):
            self._check_list_params(ListParams(resource_version=params.resource_version))
        pred = self.predicate(params)
        opts = WatchOptions(params.resource_version, pred, params.allow_bookmarks, params.bookmark_interval)
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
        obj, type_errs, warnings = self._decode(body, options.field_validation)
        self._set_namespace(obj, namespace)
        if obj.metadata.name and obj.metadata.name != name:  # type: ignore[attr-defined]
            raise errors.bad_request(f"the name of the object ({obj.metadata.name}) does not match the name "  # type: ignore[attr-defined]
                                     f"on the URL ({name})")
        obj.metadata.name = name  # type: ignore[attr-defined]
        return await self._update(namespace, name, lambda _old: obj.model_copy(deep=True), type_errs, warnings,
                                  options, subresource)

    async def patch(self, namespace: str | None, name: str, mutate: MutateFunc, *,
                    options: WriteOptions = WriteOptions(), subresource: str = "", create: bool = False,
                    track: bool = True) -> Result:
        """Apply `mutate` to the current object's JSON and store the result, retrying on conflicts.

        With `create`, a missing object is created from `mutate({})` (server-side apply does this)."""
        collected: dict[str, Any] = {}

        async def produce(old: Obj) -> APIModel:
            # A patch applies to the object as the client can read it: write-only fields are not there to
            # be kept, tested (JSON patch `test`) or moved; the strategy carries them over as for a PUT.
            out = mutate(copy.deepcopy(self.strategy.for_output(old) if old else old))
            new_json = await out if isinstance(out, Awaitable) else out
            new, type_errs, warnings = self._decode(new_json, options.field_validation)
            collected["errs"], collected["warnings"] = type_errs, warnings
            self._set_namespace(new, namespace)
            if new.metadata.name != name:  # type: ignore[attr-defined]
                raise self._invalid(name, [ferr.invalid("metadata.name", new.metadata.name,  # type: ignore[attr-defined]
                                                        "field is immutable")])
            return new

        return await self._update(namespace, name, produce, None, None, options, subresource, collected, create,
                                  track)

    async def apply(self, namespace: str | None, name: str, body: Obj, *, force: bool,
                    options: WriteOptions = WriteOptions(), subresource: str = "") -> Result:
        """Server-side apply of the configuration `body` for `options.field_manager`; creates if missing."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of an apply patch must be an object")
        body = copy.deepcopy(body)
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        meta.setdefault("name", name)
        if self.info.namespaced and namespace:
            meta.setdefault("namespace", namespace)

        def mutate(current: Obj) -> Obj:
            return fieldmanager.apply(current or None, body, options.field_manager, force=force,
                                      subresource=subresource, now=now_rfc3339())

        return await self.patch(namespace, name, mutate, options=options, subresource=subresource,
                                create=not subresource, track=False)

    async def _update(self, namespace: str | None, name: str, produce: Callable[[Obj], Any],
                      type_errs: ErrorList | None, warnings: builtins.list[str] | None, options: WriteOptions,
                      subresource: str, collected: dict[str, Any] | None = None, create: bool = False,
                      track: bool = True) -> Result:
        key = self.key(namespace, name)
        strategy: Strategy = self.status_strategy if subresource == "status" else self.strategy
        state: dict[str, Any] = {"created": False, "delete": False}
        out_warnings: list[str] = list(warnings or [])

        async def try_update(existing: Obj) -> Obj:
            state["created"] = False
            out = produce(existing)
            new: APIModel = await out if isinstance(out, Awaitable) else out
            errs = list(type_errs or [])
            if collected is not None:
                errs = list(collected.get("errs") or [])
                out_warnings[:] = list(collected.get("warnings") or [])
            meta = new.metadata  # type: ignore[attr-defined]
            if not existing:
                if subresource:
                    raise errors.not_found(self.info.plural, self.info.group, name)
                out_warnings.extend(await self._prepare_create(new, errs))
                state["created"] = True
                data = new.to_dict()
                if options.admit is not None:
                    options.admit(data, None)
                if track:
                    data = fieldmanager.update_managed_fields(None, data, options.field_manager or "unknown",
                                                              now=now_rfc3339())
                if options.dry_run:
                    raise _DryRun(data)
                return data
            old = self._from_storage(existing)
            old_meta = old.metadata  # type: ignore[attr-defined]
            rv = meta.resource_version
            if not rv and collected is None:
                if not strategy.allow_unconditional_update:
                    raise self._invalid(name, [*errs, ferr.invalid("metadata.resourceVersion", 0,
                                                                   "must be specified for an update")])
            elif rv and rv != old_meta.resource_version:
                raise errors.conflict(self.info.plural, self.info.group, name, errors.OPTIMISTIC_LOCK_MSG)
            meta.uid = meta.uid or old_meta.uid
            meta.creation_timestamp = old_meta.creation_timestamp
            meta.deletion_timestamp = old_meta.deletion_timestamp
            meta.deletion_grace_period_seconds = old_meta.deletion_grace_period_seconds
            meta.generation = old_meta.generation
            meta.resource_version = None
            meta.self_link = None
            strategy.prepare_for_update(new, old)
            new_meta = meta.to_dict()
            errs += validate_object_meta(new_meta, namespaced=self.info.namespaced, name_fn=strategy.name_validator)
            errs += validate_object_meta_update(new_meta, existing.get("metadata", {}))
            errs += self._dedupe(errs, strategy.validate_update(new, old))
            if errs:
                raise self._invalid(name, errs)
            await strategy.before_storage(new, old)
            self._scrub_last_applied(new)
            out_warnings.extend(strategy.warnings_on_update(new, old))
            state["delete"] = bool(meta.deletion_timestamp) and not meta.finalizers
            data = new.to_dict()
            if options.admit is not None:
                options.admit(data, existing)
            if track:
                data = fieldmanager.update_managed_fields(existing, data, options.field_manager or "unknown",
                                                          subresource=subresource, now=now_rfc3339())
            if options.dry_run:
                data["metadata"]["resourceVersion"] = old_meta.resource_version
                raise _DryRun(data)
            return data

        try:
            with self._storage_errors(name):
                stored = await self.storage.guaranteed_update(
                    key, try_update, ignore_not_found=create or strategy.allow_create_on_update)
        except _DryRun as dry:
            return Result(dry.obj, created=bool(state["created"]), warnings=out_warnings)
        if state["delete"]:
            rv = stored["metadata"]["resourceVersion"]
            try:
                with self._storage_errors(name):
                    stored = await self.storage.delete(key, preconditions=Preconditions(resource_version=rv))
                return Result(stored, deleted=True, warnings=out_warnings)
            except errors.StatusError as exc:
                if exc.reason != "NotFound":
                    raise
        return Result(stored, created=bool(state["created"]), warnings=out_warnings)


    # ----- delete ------------------------------------------------------------------------------------

    async def delete(self, namespace: str | None, name: str, params: DeleteParams = DeleteParams()) -> Result:
        """Delete now, or, while finalizers remain, mark with deletionTimestamp and return the object."""
        key = self.key(namespace, name)
        bad: ErrorList = []
        if params.propagation_policy not in (None, "Orphan", "Background", "Foreground"):
            bad.append(ferr.not_supported("propagationPolicy", params.propagation_policy,
                                          ["Background", "Foreground", "Orphan"]))
        grace = params.grace_period_seconds
        if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool) or grace < 0):
            bad.append(ferr.invalid("gracePeriodSeconds", grace, "must be greater than or equal to 0"))
        if bad:
            raise errors.invalid("DeleteOptions", "meta.k8s.io", "", bad)
        pre = params.preconditions

        async def only_without_finalizers(existing: Obj) -> None:
            if (existing.get("metadata") or {}).get("finalizers"):
                raise _HasFinalizers(existing)

        while True:
            if params.dry_run:
                with self._storage_errors(name):
                    current = await self.storage.get(key)
                self._check_preconditions(name, pre, current)
                if not (current.get("metadata") or {}).get("finalizers"):
                    return Result(current, deleted=True)
            else:
                try:  # one round trip when nothing holds the object back
                    with self._storage_errors(name):
                        deleted = await self.storage.delete(key, preconditions=pre,
                                                            validate_deletion=only_without_finalizers)
                    return Result(deleted, deleted=True)
                except _HasFinalizers as held:
                    current = held.obj
            meta = current.get("metadata", {})
            if meta.get("deletionTimestamp"):
                return Result(current)
            if params.dry_run:
                return Result(current | {"metadata": meta | {"deletionTimestamp": now_rfc3339(),
                                                             "deletionGracePeriodSeconds": 0}})

            async def mark(existing: Obj) -> Obj:
                m = existing.setdefault("metadata", {})
                if not m.get("finalizers"):
                    raise _DeleteNow()
                m.setdefault("deletionTimestamp", now_rfc3339())
                m.setdefault("deletionGracePeriodSeconds", 0)
                return existing

            try:
                with self._storage_errors(name):
                    marked = await self.storage.guaranteed_update(key, mark, preconditions=pre)
                return Result(marked)
            except _DeleteNow:
                continue  # the finalizers went meanwhile: delete after all

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

    # ----- scale subresource -------------------------------------------------------------------------

    def to_scale(self, obj: Obj) -> Obj:
        meta = obj.get("metadata", {})
        status = obj.get("status") or {}
        scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                      if k in meta}
        return {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": scale_meta,
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": status.get("replicas", 0), "selector": status.get("selector", "")}}

    async def get_scale(self, namespace: str | None, name: str) -> Obj:
        self._require_scale()
        return self.to_scale(await self.get(namespace, name))

    async def update_scale(self, namespace: str | None, name: str, scale: Obj, *,
                           options: WriteOptions = WriteOptions()) -> Result:
        self._require_scale()
        if not isinstance(scale, dict) or scale.get("kind") not in (None, "Scale"):
            raise errors.bad_request("the body of the request must be an autoscaling/v1 Scale")
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        kind = "Scale"
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise errors.invalid(kind, "autoscaling", name,
                                 [ferr.type_invalid("spec.replicas", replicas, "must be of type integer")])
        if replicas < 0:
            raise errors.invalid(kind, "autoscaling", name,
                                 [ferr.invalid("spec.replicas", replicas, "must be greater than or equal to 0")])
        rv = (scale.get("metadata") or {}).get("resourceVersion")

        def set_replicas(current: Obj) -> Obj:
            if rv and rv != current["metadata"].get("resourceVersion"):
                raise errors.conflict(self.info.plural, self.info.group, name, errors.OPTIMISTIC_LOCK_MSG)
            current.setdefault("spec", {})["replicas"] = replicas
            return current

        result = await self.patch(namespace, name, set_replicas, options=options)
        result.object = self.to_scale(result.object)
        return result

    def _require_scale(self) -> None:
        if not self.info.has_scale:
            raise errors.not_found(f"{self.info.plural}/scale", self.info.group, "")


class _DryRun(Exception):  # control flow, never escapes the Store
    def __init__(self, obj: Obj) -> None:
        super().__init__("dry run")
        self.obj = obj


class _HasFinalizers(Exception):  # control flow, never escapes the Store
    def __init__(self, obj: Obj) -> None:
        super().__init__("has finalizers")
        self.obj = obj


class _DeleteNow(Exception):  # control flow, never escapes the Store
    pass
