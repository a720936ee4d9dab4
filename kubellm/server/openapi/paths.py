"""The REST paths of each resource, as kube-apiserver publishes them for a custom resource.

Collection `/apis/<g>/<v>[/namespaces/{namespace}]/<plural>` (list, create, deletecollection), the
all-namespaces list `/apis/<g>/<v>/<plural>` for namespaced kinds, item `.../{name}` (read,
replace, patch, delete), and `.../{name}/<subresource>` for each subresource. Which operations a path
has comes from the verbs its REST object supports (`registry.rest.Resource.describe()`), as kube's
endpoint installer derives routes from a storage's interfaces.
Every operation carries `x-kubernetes-action` and `x-kubernetes-group-version-kind` (the kind's,
or autoscaling/v1 Scale for the scale subresource): `kubectl explain` finds a resource's kind
through them, and kubectl checks that PATCH operations declare `fieldValidation` and `dryRun`
before it leaves validation to the server. Parameters are inlined on each operation for that
reason. PATCH does not declare strategic merge patch, which the server refuses (as for custom
resources), so kubectl sends JSON merge patches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kubellm.apis.scheme import ResourceInfo
from kubellm.registry.rest import Served, ServedSubresource
from kubellm.server.openapi.schemas import (
    DELETE_OPTIONS,
    GVK,
    JSON,
    PATCH,
    SCALE,
    STATUS,
    gvk,
    kind_name,
    list_name,
    ref,
)

JSON_TYPE = "application/json"
YAML_TYPE = "application/yaml"
WATCH_TYPE = "application/json;stream=watch"
APPLY_TYPE = "application/apply-patch+yaml"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", APPLY_TYPE)
BODY_TYPES = (JSON_TYPE, YAML_TYPE)
OBJECT_TYPES = (JSON_TYPE, YAML_TYPE)
LIST_TYPES = (JSON_TYPE, YAML_TYPE, WATCH_TYPE)


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    description: str
    location: str = "query"
    enum: tuple[str, ...] = ()
    """The only values the server accepts (it answers anything else with a 400 or 422)."""
    max_length: int | None = None


PRETTY = Param("pretty", "string", "If 'true', the output is pretty printed.")
NAMESPACE = Param("namespace", "string", "Object name and auth scope, such as for teams and projects.", "path")
LIST_PARAMS = (
    Param("allowWatchBookmarks", "boolean", "With watch: also send BOOKMARK events that carry a resourceVersion."),
    Param("continue", "string", "The continue token of the previous page, to get the next one."),
    Param("fieldSelector", "string", "Only objects whose fields match, e.g. spec.model=Qwen/Qwen2.5-3B-Instruct."),
    Param("labelSelector", "string", "Only objects whose labels match, e.g. app=chat,tier!=test."),
    Param("limit", "integer", "Most items to return; the list metadata then holds a continue token."),
    Param("resourceVersion", "string", "Which version to read or to watch from; unset: the latest."),
    Param("resourceVersionMatch", "string", "How resourceVersion applies to a list: Exact or NotOlderThan.",
          enum=("Exact", "NotOlderThan")),
    Param("sendInitialEvents", "boolean", "With watch: start with ADDED events for the current objects."),
    Param("timeoutSeconds", "integer", "End the list or watch call after this many seconds."),
    Param("watch", "boolean", "Stream changes (ADDED, MODIFIED, DELETED) instead of returning a list."),
)
DRY_RUN = Param("dryRun", "string", "'All': run every stage of the request but do not persist the result.",
                enum=("All",))
FIELD_MANAGER = Param("fieldManager", "string", "Name of the actor making the change, recorded in managedFields.",
                      max_length=128)
FIELD_VALIDATION = Param(
    "fieldValidation",
    "string",
    "What to do with unknown or duplicate fields: Ignore, Warn (the default) or Strict (reject).",
    enum=("Ignore", "Strict", "Warn"),
)
FORCE = Param("force", "boolean", "Server-side apply: take over fields other managers own. Apply requests only.")
WRITE_PARAMS = (DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION)
DELETE_PARAMS = (
    DRY_RUN,
    Param("gracePeriodSeconds", "integer", "Seconds before the object is deleted; zero means immediately."),
    Param("orphanDependents", "boolean", "Deprecated: use propagationPolicy. If true, dependents are orphaned."),
    Param("propagationPolicy", "string", "Whether and how dependents are deleted: Orphan, Background or Foreground.",
          enum=("Background", "Foreground", "Orphan")),
)


@dataclass(frozen=True)
class Operation:
    method: str
    action: str
    verb: str
    """The operationId verb: list, create, read, replace, patch, delete, deletecollection."""
    description: str
    response: str
    gvk: dict[str, str]
    params: tuple[Param, ...] = ()
    body: str | None = None
    body_types: tuple[str, ...] = BODY_TYPES
    body_required: bool = True
    produces: tuple[str, ...] = OBJECT_TYPES
    extra_responses: tuple[tuple[int, str], ...] = ()


@dataclass
class PathItem:
    path: str
    params: tuple[Param, ...]
    operations: list[Operation] = field(default_factory=list)
    operation_suffix: str = ""
    """Appended to every operationId of the path: Status, Scale, or ForAllNamespaces."""


def _camel(text: str, *, first: bool) -> str:
    """As kube-openapi's ToValidOperationID: `model.kubellm.io` → `ModelKubellmIo`."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", text) if w]
    out = "".join(w[0].upper() + w[1:] for w in words)
    return out if first or not out else out[0].lower() + out[1:]


def tag(info: ResourceInfo) -> str:
    return f"{_camel(info.group or 'core', first=False)}_{_camel(info.version, first=False)}"


def operation_id(info: ResourceInfo, verb: str, item: PathItem) -> str:
    gv = _camel(info.group or "core", first=True) + _camel(info.version, first=True)
    scope = "Namespaced" if info.namespaced and item.operation_suffix != "ForAllNamespaces" else ""
    if verb == "deletecollection":
        return f"delete{gv}Collection{scope}{info.kind}{item.operation_suffix}"
    return f"{verb}{gv}{scope}{info.kind}{item.operation_suffix}"


def _patch_types(applies: bool) -> tuple[str, ...]:
    return PATCH_TYPES if applies else tuple(t for t in PATCH_TYPES if t != APPLY_TYPE)


def path_items(served: Served) -> list[PathItem]:
    info = served.info
    kind, obj, lst = info.kind, kind_name(info), list_name(info)
    own = gvk(info.group, info.version, kind)
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    root = f"{base}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{base}/{info.plural}"
    scope = (NAMESPACE,) if info.namespaced else ()
    name = Param("name", "string", f"Name of the {kind}.", "path")
    verbs = set(served.verbs)
    items: list[PathItem] = []

    def list_op() -> Operation:
        return Operation("get", "list", "list", f"list or watch objects of kind {kind}", lst, own,
                         params=LIST_PARAMS, produces=LIST_TYPES)

    if info.namespaced and "list" in verbs:
        items.append(PathItem(f"{base}/{info.plural}", (PRETTY,), [list_op()], "ForAllNamespaces"))
    collection = [
        *([list_op()] if "list" in verbs else []),
        *([Operation("post", "post", "create", f"create a {kind}", obj, own, params=WRITE_PARAMS, body=obj,
                     extra_responses=((201, "Created"), (202, "Accepted")))] if "create" in verbs else []),
        *([Operation("delete", "deletecollection", "deletecollection", f"delete a collection of {kind}", STATUS,
                     own, params=LIST_PARAMS + DELETE_PARAMS, body=DELETE_OPTIONS, body_required=False)]
          if "deletecollection" in verbs else []),
    ]
    if collection:
        items.append(PathItem(root, (*scope, PRETTY), collection))
    items.append(PathItem(f"{root}/{{name}}", (name, *scope, PRETTY),
                          _item_ops(verbs, served.applies, kind, "", obj, own, delete=True)))
    for sub in served.subresources:
        is_own = (sub.group, sub.version, sub.kind) == (info.group, info.version, kind)
        schema = obj if is_own else f"{group_version_prefix_of(sub)}.{sub.kind}"
        if sub.name == info.secrets_subresource:
            schema = WITH_SECRETS  # the kind with its write-only fields: not the kind's schema, which forbids them
        sub_gvk = gvk(sub.group, sub.version, sub.kind)
        items.append(PathItem(f"{root}/{{name}}/{sub.name}", (name, *scope, PRETTY),
                              _item_ops(set(sub.verbs), sub.applies, kind, sub.name, schema, sub_gvk),
                              sub.name.capitalize()))
    return items


WITH_SECRETS = ""
"""The response of a secrets subresource (`ResourceInfo.secrets_subresource`): the object with the fields its
kind's schema marks write-only, so published as an object of that kind without a stricter schema."""


def response_schema(op: Operation) -> JSON:
    if op.response == WITH_SECRETS:
        return {"type": "object", "description": "The object with its write-only fields (credentials) included.",
                "x-kubernetes-group-version-kind": [op.gvk]}
    return ref(op.response)


def group_version_prefix_of(sub: ServedSubresource) -> str:
    """Where a subresource's own kind is defined: autoscaling/v1 Scale as `io.k8s.api.autoscaling.v1`."""
    if (sub.group, sub.version, sub.kind) == ("autoscaling", "v1", "Scale"):
        return SCALE.rsplit(".", 1)[0]
    return ".".join([*reversed(sub.group.split(".")), sub.version])


def _item_ops(verbs: set[str], applies: bool, kind: str, sub: str, schema: str, own: dict[str, str], *,
              delete: bool = False) -> list[Operation]:
    of = f"{sub} of the specified {kind}" if sub else f"the specified {kind}"
    ops: list[Operation] = []
    if "get" in verbs:
        ops.append(Operation("get", "get", "read", f"read {of}", schema, own))
    if "update" in verbs:
        ops.append(Operation("put", "put", "replace", f"replace {of}", schema, own, params=WRITE_PARAMS, body=schema,
                             extra_responses=((201, "Created"),)))
    if "patch" in verbs:
        ops.append(Operation("patch", "patch", "patch", f"partially update {of}", schema, own,
                             params=(*WRITE_PARAMS, FORCE) if applies else WRITE_PARAMS, body=PATCH,
                             body_types=_patch_types(applies), extra_responses=((201, "Created"),)))
    if delete and "delete" in verbs:
        ops.append(Operation("delete", "delete", "delete", f"delete a {kind}", STATUS, own, params=DELETE_PARAMS,
                             body=DELETE_OPTIONS, body_required=False, extra_responses=((202, "Accepted"),)))
    return ops


# --- rendering -----------------------------------------------------------------------------------


def _constraints(p: Param) -> JSON:
    out: JSON = {}
    if p.enum:
        out["enum"] = list(p.enum)
    if p.max_length is not None:
        out["maxLength"] = p.max_length
    return out


def _param_v2(p: Param) -> JSON:
    out: JSON = {"name": p.name, "in": p.location, "description": p.description, "type": p.type, **_constraints(p)}
    if p.location == "path":
        out["required"] = True
    return out


def _param_v3(p: Param) -> JSON:
    out: JSON = {"name": p.name, "in": p.location, "description": p.description,
                 "schema": {"type": p.type, **_constraints(p)}}
    if p.location == "path":
        out["required"] = True
    return out


def _statuses(op: Operation) -> list[tuple[int, str]]:
    return [(200, "OK"), *op.extra_responses]


def _common(info: ResourceInfo, op: Operation, item: PathItem) -> JSON:
    return {
        "description": op.description,
        "operationId": operation_id(info, op.verb, item),
        "tags": [tag(info)],
        "x-kubernetes-action": op.action,
        GVK: dict(op.gvk),
    }


def render_v2(served: Served) -> dict[str, JSON]:
    info = served.info
    paths: dict[str, JSON] = {}
    for item in path_items(served):
        rendered: JSON = {"parameters": [_param_v2(p) for p in item.params]}
        for op in item.operations:
            params = [_param_v2(p) for p in op.params]
            if op.body is not None:
                params.append({"name": "body", "in": "body", "required": op.body_required, "schema": ref(op.body)})
            responses: JSON = {str(code): {"description": text, "schema": response_schema(op)}
                               for code, text in _statuses(op)}
            responses["401"] = {"description": "Unauthorized"}
            out = _common(info, op, item)
            out.update(
                consumes=list(op.body_types if op.body is not None else BODY_TYPES),
                produces=list(op.produces),
                schemes=["https"],
                responses=responses,
            )
            if params:
                out["parameters"] = params
            rendered[op.method] = out
        paths[item.path] = rendered
    return paths


def render_v3(served: Served) -> dict[str, JSON]:
    """Paths in OpenAPI 3 form; references still in v2 form (documents.py rewrites them)."""
    info = served.info
    paths: dict[str, JSON] = {}
    for item in path_items(served):
        rendered: JSON = {"parameters": [_param_v3(p) for p in item.params]}
        for op in item.operations:
            out = _common(info, op, item)
            if op.params:
                out["parameters"] = [_param_v3(p) for p in op.params]
            if op.body is not None:
                out["requestBody"] = {
                    "content": {t: {"schema": ref(op.body)} for t in op.body_types},
                    "required": op.body_required,
                }
            responses: JSON = {
                str(code): {"description": text, "content": {t: {"schema": response_schema(op)} for t in op.produces}}
                for code, text in _statuses(op)
            }
            responses["401"] = {"description": "Unauthorized"}
            out["responses"] = responses
            rendered[op.method] = out
        paths[item.path] = rendered
    return paths
