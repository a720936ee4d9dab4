"""OpenAPI v2/v3 documents generated from the API types (kubellm.server.openapi).

Structure checks run everywhere; spec validation needs `openapi-spec-validator`; the last tests run
the real kubectl against a loopback stub that serves discovery and these documents (skipped when
kubectl is not installed).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, get_args, get_origin
from urllib.parse import urlsplit

import orjson
import pytest
import yaml
from pydantic import BaseModel

from kubellm.apis import listtypes, secrets
from kubellm.apis.base import APIModel
from kubellm.apis.scheme import ResourceInfo
from kubellm.registry.registry import ALL_RESOURCES
from kubellm.server import openapi
from kubellm.server.openapi import hints, proto
from kubellm.server.openapi.schemas import definition_name, kind_name

GVK = "x-kubernetes-group-version-kind"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
LLM = "io.kubellm.model.v1alpha1"
GROUP_VERSIONS = sorted({(r.group, r.version) for r in ALL_RESOURCES})


@pytest.fixture(scope="module")
def v2() -> dict[str, Any]:
    return openapi.build_v2(ALL_RESOURCES)


@pytest.fixture(scope="module")
def v3_docs() -> dict[tuple[str, str], dict[str, Any]]:
    return {(g, v): openapi.build_v3(ALL_RESOURCES, g, v) for g, v in GROUP_VERSIONS}


def schemas_of(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["definitions"] if "definitions" in doc else doc["components"]["schemas"]  # type: ignore[no-any-return]


def resolve(doc: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    """The definition a property points to, directly or through a one-element allOf (v3)."""
    target = prop.get("$ref") or prop["allOf"][0]["$ref"]
    return schemas_of(doc)[target.rsplit("/", 1)[-1]]  # type: ignore[no-any-return]


def kind_gvk(info: ResourceInfo, kind: str | None = None) -> dict[str, str]:
    return {"group": info.group, "version": info.version, "kind": kind or info.kind}


# --- spec validity ---------------------------------------------------------------------------------


def test_v2_is_valid_swagger_2(v2: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(v2, cls=validator.OpenAPIV2SpecValidator)
    assert v2["swagger"] == "2.0"


def test_v3_documents_are_valid_openapi_3_0(v3_docs: dict[tuple[str, str], dict[str, Any]]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    for doc in v3_docs.values():
        assert doc["openapi"] == "3.0.0"
        validator.validate(doc, cls=validator.OpenAPIV30SpecValidator)


def test_every_ref_resolves(v2: dict[str, Any], v3_docs: dict[tuple[str, str], dict[str, Any]]) -> None:
    for doc, prefix in [(v2, "#/definitions/"), *((d, "#/components/schemas/") for d in v3_docs.values())]:
        names = schemas_of(doc)
        refs = list(_raw_refs(doc))
        assert refs
        for target in refs:
            assert target.startswith(prefix), target
            assert target.removeprefix(prefix) in names, target


def _raw_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _raw_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _raw_refs(item)


def test_v3_wraps_refs_with_siblings_in_allof(v3_docs: dict[tuple[str, str], dict[str, Any]]) -> None:
    def check(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                assert set(node) == {"$ref"}, node
            for value in node.values():
                check(value)
        elif isinstance(node, list):
            for item in node:
                check(item)

    for doc in v3_docs.values():
        check(doc)
    spec = schemas_of(v3_docs[("model.kubellm.io", "v1alpha1")])[f"{LLM}.LLMService"]["properties"]["spec"]
    assert spec["allOf"] == [{"$ref": f"#/components/schemas/{LLM}.LLMServiceSpec"}]
    assert spec["description"]


# --- kinds, names, GVKs ----------------------------------------------------------------------------


@pytest.mark.parametrize("info", ALL_RESOURCES, ids=lambda i: i.kind)
def test_every_kind_and_list_has_its_gvk(
    info: ResourceInfo, v2: dict[str, Any], v3_docs: dict[tuple[str, str], dict[str, Any]]
) -> None:
    prefix = kind_name(info).rsplit(".", 1)[0]  # kube's names for the kinds a host serves, else the group's
    if not info.host_kind:
        assert prefix == ".".join([*reversed(info.group.split(".")), info.version])
    else:
        assert prefix in ("io.k8s.api.core.v1", "io.k8s.api.coordination.v1")
    for doc in (v2, v3_docs[(info.group, info.version)]):
        defs = schemas_of(doc)
        kind = defs[f"{prefix}.{info.kind}"]
        assert kind[GVK] == [kind_gvk(info)]
        assert {"apiVersion", "kind", "metadata"} <= set(kind["properties"])
        assert resolve(doc, kind["properties"]["metadata"]) is defs[f"{META}.ObjectMeta"]
        lst = defs[f"{prefix}.{info.list_kind}"]
        assert lst[GVK] == [kind_gvk(info, info.list_kind)]
        assert lst["required"] == ["items"]
        assert lst["properties"]["items"]["items"]["$ref"].endswith(f"{prefix}.{info.kind}")
        assert resolve(doc, lst["properties"]["metadata"]) is defs[f"{META}.ListMeta"]


def test_shared_meta_definitions_have_kube_names_and_gvks(v2: dict[str, Any]) -> None:
    defs = v2["definitions"]
    for name in ("ObjectMeta", "ListMeta", "Status", "DeleteOptions", "Patch", "WatchEvent", "ManagedFieldsEntry",
                 "OwnerReference", "Time", "FieldsV1"):
        assert f"{META}.{name}" in defs, name
    assert defs[f"{META}.Time"]["type"] == "string"
    assert defs[f"{META}.Time"]["format"] == "date-time"
    assert defs[f"{META}.FieldsV1"]["type"] == "object"
    assert defs[f"{META}.Status"][GVK] == [{"group": "", "version": "v1", "kind": "Status"}]
    for kind in ("DeleteOptions", "WatchEvent"):
        expected = [{"group": g, "version": v, "kind": kind} for g, v in dict.fromkeys([("", "v1"), *GROUP_VERSIONS])]
        assert defs[f"{META}.{kind}"][GVK] == expected
    assert defs[f"{META}.WatchEvent"]["required"] == ["object", "type"]
    meta = defs[f"{META}.ObjectMeta"]
    assert "required" not in meta
    assert meta["properties"]["creationTimestamp"]["$ref"] == f"#/definitions/{META}.Time"
    assert meta["properties"]["generation"] == {**meta["properties"]["generation"], "type": "integer",
                                                "format": "int64"}
    assert meta["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert meta["properties"]["ownerReferences"]["x-kubernetes-list-map-keys"] == ["uid"]
    assert defs[f"{META}.OwnerReference"]["required"] == ["apiVersion", "kind", "name", "uid"]
    assert defs[f"{META}.ManagedFieldsEntry"]["properties"]["fieldsV1"]["$ref"].endswith(".FieldsV1")
    assert set(defs[f"{META}.ListMeta"]["properties"]) == {"selfLink", "resourceVersion", "continue",
                                                           "remainingItemCount"}
    scale = defs["io.k8s.api.autoscaling.v1.Scale"]
    assert scale[GVK] == [{"group": "autoscaling", "version": "v1", "kind": "Scale"}]
    assert set(scale["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert defs["io.k8s.api.autoscaling.v1.ScaleSpec"]["properties"]["replicas"]["format"] == "int32"
    assert defs["io.k8s.api.autoscaling.v1.ScaleStatus"]["required"] == ["replicas"]


def test_llmservice_spec(v2: dict[str, Any], v3_docs: dict[tuple[str, str], dict[str, Any]]) -> None:
    for doc in (v2, v3_docs[("model.kubellm.io", "v1alpha1")]):
        llm = schemas_of(doc)[f"{LLM}.LLMService"]
        assert llm["required"] == ["metadata", "spec"]
        spec = resolve(doc, llm["properties"]["spec"])
        props = spec["properties"]
        assert spec["required"] == ["model"]
        assert props["model"]["minLength"] == 3
        assert props["quantization"]["enum"] == ["", "awq", "fp8", "gptq"]
        assert props["maxModelLen"] == {**props["maxModelLen"], "type": "integer", "format": "int32",
                                        "default": 2048, "minimum": 512}
        assert props["replicas"]["minimum"] == 0
        assert props["gpuMemoryUtilization"]["default"] == "0.85"
        assert props["replicas"]["default"] == 1
        assert "default" not in props["image"]  # zero values are not published as defaults
        assert props["extraArgs"] == {**props["extraArgs"], "type": "array", "items": {"type": "string"}}
        assert resolve(doc, props["autoscaling"])["required"] == ["maxReplicas"]
        assert resolve(doc, props["autoscaling"])["properties"]["enabled"]["default"] is True
        status = resolve(doc, llm["properties"]["status"])["properties"]
        assert status["phase"]["enum"] == ["", "Failed", "Loading", "Pending", "Scaling", "Serving"]
        assert status["conditions"]["x-kubernetes-list-type"] == "map"
        assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
        assert status["observedGeneration"]["format"] == "int64"


def test_aliases_are_json_names(v2: dict[str, Any]) -> None:
    defs = v2["definitions"]
    assert "sourceIP" in defs["io.kubellm.iam.v1alpha1.LoginRecordSpec"]["properties"]
    assert "nonResourceURLs" in defs["io.kubellm.iam.v1alpha1.PolicyRule"]["properties"]
    assert "insecureSkipTLSVerify" in defs["io.kubellm.cluster.v1alpha1.ClusterSpec"]["properties"]
    assert "roleRef" in defs["io.kubellm.iam.v1alpha1.RoleBinding"]["properties"]
    assert "hfEndpoint" in defs[f"{LLM}.LLMServiceSpec"]["properties"]


def _models() -> Iterator[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    todo: list[Any] = [info.model for info in ALL_RESOURCES]
    while todo:
        tp = todo.pop()
        if get_origin(tp) is not None:
            todo.extend(get_args(tp))
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in seen:
            seen.add(tp)
            todo.extend(f.annotation for f in tp.model_fields.values())
    yield from seen


def test_every_model_reachable_from_a_kind_is_a_definition_with_all_its_fields(v2: dict[str, Any]) -> None:
    defs = v2["definitions"]
    kinds = {info.model: info for info in ALL_RESOURCES}
    for model in _models():
        name = definition_name(model)
        assert name in defs, name
        props = defs[name].get("properties", {})
        assert set(props) == {f.alias or n for n, f in model.model_fields.items()}, name
        if model in kinds:
            assert defs[name][GVK] == [kind_gvk(kinds[model])]


def test_descriptions_everywhere(v2: dict[str, Any], v3_docs: dict[tuple[str, str], dict[str, Any]]) -> None:
    for doc in (v2, *v3_docs.values()):
        for name, schema in schemas_of(doc).items():
            assert schema.get("description"), name
            for prop, sub in schema.get("properties", {}).items():
                assert sub.get("description"), f"{name}.{prop}"
                assert "\n" not in sub["description"], f"{name}.{prop}"
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if method != "parameters":
                    assert op["description"], f"{method} {path}"


def test_required_fields_are_properties(v2: dict[str, Any]) -> None:
    for name, schema in v2["definitions"].items():
        for field in schema.get("required", []):
            assert field in schema["properties"], f"{name}.{field}"


def test_hints_name_existing_fields() -> None:
    for (model, field), hint in hints.HINTS.items():
        assert issubclass(model, APIModel)
        assert field in model.model_fields, f"{model.__name__}.{field}"
        assert hint.ref, f"{model.__name__}.{field}"


def test_hints_hold_no_constraints() -> None:
    """What an API field accepts is declared on the field (apis.constraints), not hinted here."""
    assert set(vars(hints.Hint())) == {"ref"}
    assert {model.__module__ for model, _ in hints.HINTS} == {"kubellm.apis.meta.v1.types"}


def test_list_map_keys_are_required_in_the_items(v2: dict[str, Any]) -> None:
    defs = v2["definitions"]
    found = 0
    for name, schema in defs.items():
        for prop, sub in schema.get("properties", {}).items():
            keys = sub.get("x-kubernetes-list-map-keys")
            if keys:
                found += 1
                item = defs[sub["items"]["$ref"].rsplit("/", 1)[-1]]
                assert set(keys) <= set(item.get("required", [])), f"{name}.{prop}"
    assert found >= 5


# --- list and map semantics: declared on the types, published from there --------------------------------

LIST_EXTENSIONS = ("x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
                   "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key")
ATOMIC = {"x-kubernetes-list-type": "atomic"}
PUBLISHED_LIST_SEMANTICS: dict[str, dict[str, Any]] = {  # what the documents published when hints.py held them
    "meta.DeleteOptions.dryRun": ATOMIC,
    "io.k8s.api.core.v1.NamespaceSpec.finalizers": ATOMIC,
    "meta.ObjectMeta.finalizers": {"x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
    "meta.ObjectMeta.managedFields": ATOMIC,
    "meta.ObjectMeta.ownerReferences": {"x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map",
                                        "x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge"},
    "meta.StatusDetails.causes": ATOMIC,
    "cluster.v1alpha1.ClusterStatus.conditions": {"x-kubernetes-list-map-keys": ["type"],
                                                  "x-kubernetes-list-type": "map"},
    "cluster.v1alpha1.ClusterStatus.gpus": {"x-kubernetes-list-map-keys": ["model"], "x-kubernetes-list-type": "map"},
    "meta.LabelSelector": {"x-kubernetes-map-type": "atomic"},
    "meta.LabelSelector.matchExpressions": ATOMIC,
    "meta.LabelSelectorRequirement.values": ATOMIC,
    "iam.v1alpha1.AggregationRule.clusterRoleSelectors": ATOMIC,
    "iam.v1alpha1.ClusterRole.rules": ATOMIC,
    "iam.v1alpha1.ClusterRoleBinding.subjects": ATOMIC,
    "iam.v1alpha1.PolicyRule.apiGroups": ATOMIC,
    "iam.v1alpha1.PolicyRule.nonResourceURLs": ATOMIC,
    "iam.v1alpha1.PolicyRule.resourceNames": ATOMIC,
    "iam.v1alpha1.PolicyRule.resources": ATOMIC,
    "iam.v1alpha1.PolicyRule.verbs": ATOMIC,
    "iam.v1alpha1.Role.rules": ATOMIC,
    "iam.v1alpha1.RoleBinding.subjects": ATOMIC,
    "iam.v1alpha1.UserSpec.groups": {"x-kubernetes-list-type": "set"},
    "model.v1alpha1.ClusterAffinity.clusterNames": {"x-kubernetes-list-type": "set"},
    "model.v1alpha1.LLMServiceSpec.extraArgs": ATOMIC,
    "model.v1alpha1.LLMServiceStatus.clusters": {"x-kubernetes-list-map-keys": ["name"],
                                                 "x-kubernetes-list-type": "map"},
    "model.v1alpha1.LLMServiceStatus.conditions": {"x-kubernetes-list-map-keys": ["type"],
                                                   "x-kubernetes-list-type": "map"},
    "model.v1alpha1.LocalObjectReference": {"x-kubernetes-map-type": "atomic"},
    "model.v1alpha1.RAGServiceSpec.sources": {"x-kubernetes-list-map-keys": ["name"], "x-kubernetes-list-type": "map"},
    "model.v1alpha1.RAGServiceStatus.conditions": {"x-kubernetes-list-map-keys": ["type"],
                                                   "x-kubernetes-list-type": "map"},
}


def _short(name: str) -> str:
    return name.replace(f"{META}.", "meta.").replace("io.kubellm.", "")


def _list_semantics(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, schema in schemas_of(doc).items():
        own = {k: v for k, v in schema.items() if k in LIST_EXTENSIONS}
        if own:
            found[_short(name)] = own
        for prop, sub in schema.get("properties", {}).items():
            own = {k: v for k, v in sub.items() if k in LIST_EXTENSIONS}
            if own:
                found[f"{_short(name)}.{prop}"] = own
    return found


def test_list_and_map_types_are_published_as_the_types_declare_them(
    v2: dict[str, Any], v3_docs: dict[tuple[str, str], dict[str, Any]]
) -> None:
    assert _list_semantics(v2) == PUBLISHED_LIST_SEMANTICS
    union: dict[str, dict[str, Any]] = {}
    for (group, _), doc in v3_docs.items():
        found = _list_semantics(doc)
        assert found == {k: PUBLISHED_LIST_SEMANTICS[k] for k in found}, group
        union.update(found)
    assert union == PUBLISHED_LIST_SEMANTICS


def test_published_list_semantics_are_what_the_field_manager_merges_by(v2: dict[str, Any]) -> None:
    """One declaration: every published list type, map key and atomic map is the walker's answer."""
    defs = v2["definitions"]
    checked = 0
    for model in _models():
        schema = defs[definition_name(model)]
        node = listtypes.structure(model)
        assert node.atomic == (schema.get("x-kubernetes-map-type") == "atomic"), model.__name__
        for name, info in model.model_fields.items():
            prop = schema["properties"][info.alias or name]
            field_node = node.child(info.alias or name)
            if field_node.kind == "list":
                checked += 1
                assert field_node.list_type == prop.get("x-kubernetes-list-type", "atomic"), (model.__name__, name)
                assert list(field_node.keys) == prop.get("x-kubernetes-list-map-keys", []), (model.__name__, name)
                assert prop["type"] == "array"
            else:
                assert "x-kubernetes-list-type" not in prop, (model.__name__, name)
    assert checked >= 25


def test_hints_hold_no_list_semantics() -> None:
    assert not any(name.startswith("x-kubernetes") for name in vars(hints.Hint()))
    assert not hasattr(hints, "TYPE_EXTENSIONS")


def test_declaring_list_types_combines_with_other_schema_extras() -> None:
    info = listtypes.set_list(json_schema_extra=secrets.SECRET, default_factory=list, description="d.")
    assert info.json_schema_extra == {**secrets.SECRET, "x-kubernetes-list-type": "set"}
    assert secrets.is_secret(info.json_schema_extra)
    assert listtypes.field_extensions(info) == {"x-kubernetes-list-type": "set"}
    with pytest.raises(TypeError, match="conflicting x-kubernetes-list-type"):
        listtypes.atomic_list(json_schema_extra={"x-kubernetes-list-type": "set"})
    with pytest.raises(TypeError, match="at least one key"):
        listtypes.map_list()


def test_secret_fields_are_write_only_in_v3_and_not_in_v2(
    v2: dict[str, Any], v3_docs: dict[tuple[str, str], dict[str, Any]]
) -> None:
    secret_props = {("io.kubellm.cluster.v1alpha1.ClusterSpec", "credentials"),
                    ("io.kubellm.iam.v1alpha1.UserSpec", "password"),
                    ("io.kubellm.iam.v1alpha1.UserSpec", "passwordHash")}
    for doc in v3_docs.values():
        for name, schema in schemas_of(doc).items():
            for prop, sub in schema.get("properties", {}).items():
                assert sub.get("writeOnly", False) is ((name, prop) in secret_props), (name, prop)
    credentials = schemas_of(v3_docs[("cluster.kubellm.io", "v1alpha1")])[
        "io.kubellm.cluster.v1alpha1.ClusterSpec"]["properties"]["credentials"]
    assert credentials["writeOnly"] is True and credentials["allOf"][0]["$ref"].endswith(".ClusterCredentials")
    assert "writeOnly" not in orjson.dumps(v2).decode()
    assert b"writeOnly" not in openapi.build_v2_protobuf(ALL_RESOURCES)


# --- paths -----------------------------------------------------------------------------------------


def api_base(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def expected_paths(info: ResourceInfo) -> dict[str, set[str]]:
    base = api_base(info.group, info.version)
    root = f"{base}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{base}/{info.plural}"
    out = {root: {"get", "post", "delete"}, f"{root}/{{name}}": {"get", "put", "patch", "delete"}}
    if info.namespaced:
        out[f"{base}/{info.plural}"] = {"get"}
    if info.has_status:
        out[f"{root}/{{name}}/status"] = {"get", "put", "patch"}
    if info.has_scale:
        out[f"{root}/{{name}}/scale"] = {"get", "put", "patch"}
    if info.secrets_subresource:
        out[f"{root}/{{name}}/{info.secrets_subresource}"] = {"get"}
    return out


def test_paths_cover_every_resource(v2: dict[str, Any], v3_docs: dict[tuple[str, str], dict[str, Any]]) -> None:
    all_expected: dict[str, set[str]] = {}
    for info in ALL_RESOURCES:
        all_expected.update(expected_paths(info))
    assert {p: set(item) - {"parameters"} for p, item in v2["paths"].items()} == all_expected
    for (group, version), doc in v3_docs.items():
        want = {p: m for p, m in all_expected.items() if p.startswith(api_base(group, version) + "/")}
        assert {p: set(item) - {"parameters"} for p, item in doc["paths"].items()} == want


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                yield path, method, op


def test_operations_are_kube_like(v2: dict[str, Any], v3_docs: dict[tuple[str, str], dict[str, Any]]) -> None:
    for doc in (v2, *v3_docs.values()):
        ids = [op["operationId"] for _, _, op in _operations(doc)]
        assert len(ids) == len(set(ids))
        for path, method, op in _operations(doc):
            assert op["x-kubernetes-action"] in {"get", "list", "post", "put", "patch", "delete", "deletecollection"}
            gvk = op[GVK]
            if path.endswith("/scale"):
                assert gvk == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
            else:
                assert any(gvk == kind_gvk(i) for i in ALL_RESOURCES), path
            assert "401" in op["responses"]
            names = {p["name"] for p in op.get("parameters", [])}
            if method == "patch":
                # kubectl leaves validation and dry-run to the server only if PATCH declares these.
                assert {"fieldValidation", "dryRun", "fieldManager"} <= names, path
                applies = "application/apply-patch+yaml" in (op.get("consumes") or op["requestBody"]["content"])
                assert ("force" in names) == applies, path  # force only where apply patches are taken
            if method in ("post", "put"):
                assert {"fieldValidation", "dryRun", "fieldManager"} <= names, path
            if op["x-kubernetes-action"] == "list":
                assert {"labelSelector", "fieldSelector", "limit", "continue", "watch"} <= names, path
        for path, item in doc["paths"].items():
            path_params = {p["name"] for p in item["parameters"]}
            assert {n for n in ("name", "namespace") if "{" + n + "}" in path} <= path_params, path
    ops = v2["paths"]["/apis/model.kubellm.io/v1alpha1/namespaces/{namespace}/llmservices/{name}"]
    assert ops["patch"]["operationId"] == "patchModelKubellmIoV1alpha1NamespacedLLMService"
    assert "application/strategic-merge-patch+json" not in ops["patch"]["consumes"]
    assert ops["get"]["responses"]["200"]["schema"] == {"$ref": f"#/definitions/{LLM}.LLMService"}
    listing = v2["paths"]["/apis/model.kubellm.io/v1alpha1/llmservices"]["get"]
    assert listing["operationId"] == "listModelKubellmIoV1alpha1LLMServiceForAllNamespaces"
    assert listing[GVK] == {"group": "model.kubellm.io", "version": "v1alpha1", "kind": "LLMService"}
    assert listing["responses"]["200"]["schema"] == {"$ref": f"#/definitions/{LLM}.LLMServiceList"}
    users = v2["paths"]["/apis/iam.kubellm.io/v1alpha1/users/{name}/status"]
    assert users["put"]["operationId"] == "replaceIamKubellmIoV1alpha1UserStatus"
    v3_patch = v3_docs[("model.kubellm.io", "v1alpha1")]["paths"][
        "/apis/model.kubellm.io/v1alpha1/namespaces/{namespace}/llmservices/{name}/scale"]["patch"]
    # the scale subresource takes merge and JSON patches, not apply: only what is served is published
    assert set(v3_patch["requestBody"]["content"]) == {"application/json-patch+json", "application/merge-patch+json"}
    assert v3_patch["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"}


def test_explain_lookup_finds_each_kind(v3_docs: dict[tuple[str, str], dict[str, Any]]) -> None:
    """What kubectl explain's template does: GVK from the resource's paths, then the schema with it."""
    for info in ALL_RESOURCES:
        doc = v3_docs[(info.group, info.version)]
        base = api_base(info.group, info.version)
        candidates = [f"{base}/{info.plural}", f"{base}/{info.plural}/{{name}}",
                      f"{base}/namespaces/{{namespace}}/{info.plural}",
                      f"{base}/namespaces/{{namespace}}/{info.plural}/{{name}}"]
        gvk = next(doc["paths"][p][m][GVK] for p in candidates if p in doc["paths"]
                   for m in ("get", "post", "put", "patch", "delete") if m in doc["paths"][p])
        matches = [n for n, s in doc["components"]["schemas"].items() if gvk in s.get(GVK, [])]
        assert len(matches) == 1, info.kind
        assert matches[0].endswith("." + info.kind)


# --- index, hashing, caching, determinism ----------------------------------------------------------


def test_v3_index_points_at_each_group_version_with_its_hash() -> None:
    index = openapi.build_v3_index(ALL_RESOURCES)
    assert set(index) == {"paths"}
    assert set(index["paths"]) == {openapi.v3_path(g, v) for g, v in GROUP_VERSIONS}
    for group, version in GROUP_VERSIONS:
        digest = openapi.document_hash(openapi.build_v3(ALL_RESOURCES, group, version))
        assert len(digest) == 128 and digest == digest.upper()
        url = index["paths"][openapi.v3_path(group, version)]["serverRelativeURL"]
        assert url == f"/openapi/v3/{openapi.v3_path(group, version)}?hash={digest}"


def test_v3_of_an_unserved_group_version_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        openapi.build_v3(ALL_RESOURCES, "apps", "v1")


def test_documents_are_cached_and_deterministic() -> None:
    assert openapi.build_v2(ALL_RESOURCES) is openapi.build_v2(list(ALL_RESOURCES))
    group, version = GROUP_VERSIONS[0]
    assert openapi.build_v3(ALL_RESOURCES, group, version) is openapi.build_v3(ALL_RESOURCES, group, version)
    shuffled = tuple(reversed(ALL_RESOURCES))
    assert openapi.serialize(openapi.build_v2(shuffled)) == openapi.serialize(openapi.build_v2(ALL_RESOURCES))
    assert openapi.build_v3_index(shuffled) == openapi.build_v3_index(ALL_RESOURCES)
    body = openapi.serialize(openapi.build_v2(ALL_RESOURCES))
    assert orjson.loads(body) == openapi.build_v2(ALL_RESOURCES)


def test_a_subset_of_resources_gets_only_its_paths_and_definitions() -> None:
    model_only = [r for r in ALL_RESOURCES if r.group == "model.kubellm.io"]
    doc = openapi.build_v2(model_only)
    assert all(p.startswith("/apis/model.kubellm.io/") for p in doc["paths"])
    assert not any(n.startswith("io.kubellm.iam.") for n in doc["definitions"])
    assert doc["definitions"][f"{META}.DeleteOptions"][GVK] == [
        {"group": "", "version": "v1", "kind": "DeleteOptions"},
        {"group": "model.kubellm.io", "version": "v1alpha1", "kind": "DeleteOptions"},
    ]


# --- protobuf v2 -----------------------------------------------------------------------------------


def _decode(data: bytes) -> dict[int, list[Any]]:
    """A generic protobuf wire decoder: field number → values (bytes for length-delimited fields)."""
    out: dict[int, list[Any]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            out.setdefault(field, []).append(varint())
        elif wire == 2:
            length = varint()
            out.setdefault(field, []).append(data[i:i + length])
            i += length
        elif wire == 1:  # a double
            out.setdefault(field, []).append(data[i:i + 8])
            i += 8
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def _named(entries: list[bytes]) -> dict[str, dict[int, list[Any]]]:
    named = {}
    for entry in entries:
        fields = _decode(entry)
        named[fields[1][0].decode()] = _decode(fields[2][0]) if 2 in fields else {}
    return named


def test_v2_protobuf_encodes_the_document(v2: dict[str, Any]) -> None:
    doc = _decode(openapi.build_v2_protobuf(ALL_RESOURCES))
    assert doc[1] == [b"2.0"]
    definitions = _named(_decode(doc[9][0])[1])
    assert set(definitions) == set(v2["definitions"])
    spec = definitions[f"{LLM}.LLMServiceSpec"]
    assert [r.decode() for r in spec[19]] == ["model"]  # required
    assert _decode(spec[22][0])[1] == [b"object"]  # type
    props = _named(_decode(spec[25][0])[1])
    assert set(props) == set(v2["definitions"][f"{LLM}.LLMServiceSpec"]["properties"])
    import struct

    assert struct.unpack("<d", props["maxModelLen"][9][0]) == (512.0,)  # minimum, published in protobuf too
    assert props["model"][12] == [3]  # minLength
    quantization = props["quantization"]
    assert [yaml.safe_load(_decode(e)[2][0]) for e in quantization[20]] == ["", "awq", "fp8", "gptq"]
    assert yaml.safe_load(_decode(props["maxModelLen"][5][0])[2][0]) == 2048  # default, as YAML
    assert props["resources"][1] == [f"#/definitions/{LLM}.LLMResources".encode()]  # $ref
    extensions = _named(definitions[f"{LLM}.LLMService"][31])
    gvk = yaml.safe_load(extensions[GVK][2][0])
    assert gvk == [{"group": "model.kubellm.io", "kind": "LLMService", "version": "v1alpha1"}]
    paths = _named(_decode(doc[8][0])[2])
    assert set(paths) == set(v2["paths"])
    item = paths["/apis/model.kubellm.io/v1alpha1/namespaces/{namespace}/llmservices/{name}"]
    patch = _decode(item[8][0])
    assert patch[5] == [b"patchModelKubellmIoV1alpha1NamespacedLLMService"]


def test_v2_protobuf_carries_value_constraints() -> None:
    """gnostic's Schema fields: maximum 7 and minimum 9 (doubles), maxLength 11, minLength 12, pattern 13,
    maxItems 14, minItems 15 (varints)."""
    import struct

    encoded = proto.schema({"type": "integer", "minimum": 512, "maximum": 100})
    i = encoded.index(bytes([7 << 3 | 1]))
    assert struct.unpack("<d", encoded[i + 1:i + 9]) == (100.0,)
    i = encoded.index(bytes([9 << 3 | 1]))
    assert struct.unpack("<d", encoded[i + 1:i + 9]) == (512.0,)
    fields = _decode(proto.schema({"type": "string", "minLength": 3, "maxLength": 63, "pattern": "^a$"}))
    assert (fields[11], fields[12], fields[13]) == ([63], [3], [b"^a$"])
    assert _decode(proto.schema({"type": "array", "minItems": 1}))[15] == [1]


def test_v2_protobuf_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(ValueError, match="multipleOf"):
        proto.schema({"type": "integer", "multipleOf": 2})


# --- the real kubectl against a loopback stub -------------------------------------------------------

KUBECTL = shutil.which("kubectl")


class _Stub(BaseHTTPRequestHandler):
    resources: list[ResourceInfo] = list(ALL_RESOURCES)
    strip_field_validation = False

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        body: Any = None
        if path == "/openapi/v2" and "protobuf" in (self.headers.get("Accept") or ""):
            self._send(openapi.build_v2_protobuf(self.resources), openapi.PROTOBUF_V2_RESPONSE_MEDIA_TYPE)
            return
        gvs = sorted({(r.group, r.version) for r in self.resources})
        if path == "/api":
            body = {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        elif path == "/apis":
            body = {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in gvs if g]}
        elif path == "/api/v1" or (path.startswith("/apis/") and path.count("/") == 3):
            group, version = ("", "v1") if path == "/api/v1" else tuple(path.split("/")[2:])
            body = {"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}" if group else version,
                    "resources": [{"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                   "kind": r.kind, "verbs": ["get", "list", "create", "update", "patch", "delete"],
                                   "shortNames": list(r.short_names)}
                                  for r in self.resources if (r.group, r.version) == (group, version)]}
        elif path == "/openapi/v3":
            body = openapi.build_v3_index(self.resources)
        elif path.startswith(("/openapi/v3/apis/", "/openapi/v3/api/")):
            parts = path.split("/")
            group, version = (parts[4], parts[5]) if parts[3] == "apis" else ("", parts[4])
            body = openapi.build_v3(self.resources, group, version)
            if self.strip_field_validation:
                body = copy.deepcopy(body)
                for item in body["paths"].values():
                    for op in item.values():
                        if isinstance(op, dict) and "parameters" in op:
                            op["parameters"] = [p for p in op["parameters"] if p["name"] != "fieldValidation"]
        elif path == "/version":
            body = {"major": "1", "minor": "32", "gitVersion": "v1.32.0"}
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self._send(openapi.serialize(body), "application/json")

    def _send(self, data: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[Any]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    handler = type("Stub", (_Stub,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "stub",
        "clusters": [{"name": "stub", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "u", "namespace": "default"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        cmd = [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args]
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, check=False)

    run.handler = handler  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        server.shutdown()
        server.server_close()


def test_kubectl_explain_recursive_reads_the_v3_documents(kubectl: Any) -> None:
    out = kubectl("explain", "llmservices", "--recursive")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "KIND:       LLMService" in text and "GROUP:      model.kubellm.io" in text
    assert "spec\t<LLMServiceSpec> -required-" in text
    assert "model\t<string> -required-" in text
    assert 'enum: "", awq, fp8, gptq' in text
    assert "maxReplicas\t<integer> -required-" in text
    field = kubectl("explain", "llms.spec.quantization")
    assert field.returncode == 0, field.stderr
    assert "FIELD: quantization <string>" in field.stdout and "awq" in field.stdout
    for info in ALL_RESOURCES:
        out = kubectl("explain", info.plural, "--recursive")
        assert out.returncode == 0, (info.kind, out.stderr)
        assert f"KIND:       {info.kind}" in out.stdout


def test_kubectl_explain_reads_the_v2_protobuf(kubectl: Any) -> None:
    out = kubectl("explain", "llmservices.spec", "--output", "plaintext-openapiv2")
    assert out.returncode == 0, out.stderr
    assert "KIND:     LLMService" in out.stdout
    assert "model\t<string> -required-" in out.stdout


BAD = """\
apiVersion: model.kubellm.io/v1alpha1
kind: LLMService
metadata: {name: chat}
spec: {maxModelLen: "big", bogus: 1, autoscaling: {enabled: true}}
"""
GOOD = """\
apiVersion: model.kubellm.io/v1alpha1
kind: LLMService
metadata: {name: chat, labels: {app: chat}}
spec:
  model: Qwen/Qwen2.5-3B-Instruct
  quantization: awq
  autoscaling: {maxReplicas: 3}
  placement: {clusterAffinity: {labelSelector: {matchExpressions: [{key: gpu, operator: In, values: [a100]}]}}}
status:
  conditions: [{type: Ready, status: "True", reason: Serving, lastTransitionTime: "2025-01-01T00:00:00Z"}]
"""


def test_kubectl_leaves_validation_to_the_server_when_patch_declares_field_validation(kubectl: Any) -> None:
    out = kubectl("create", "--dry-run=client", "--validate=strict", "-o", "name", "-f", "-", stdin=BAD)
    assert out.returncode == 0, out.stderr


def test_kubectl_client_side_validation_uses_the_v2_schema(kubectl: Any) -> None:
    kubectl.handler.strip_field_validation = True  # as a server without fieldValidation support
    out = kubectl("create", "--dry-run=client", "--validate=strict", "-o", "name", "-f", "-", stdin=BAD)
    assert out.returncode != 0
    assert 'unknown field "bogus"' in out.stderr
    assert 'missing required field "model"' in out.stderr
    assert 'missing required field "maxReplicas"' in out.stderr
    assert "expected \"integer\"" in out.stderr
    ok = kubectl("create", "--dry-run=client", "--validate=strict", "-o", "name", "-f", "-", stdin=GOOD)
    assert ok.returncode == 0, ok.stderr
