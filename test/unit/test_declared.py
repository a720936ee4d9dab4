"""Constraints declared once (kubellm.apis.constraints): what is published is enforced, and what is enforced is
published.

For every registered kind a complete valid object is broken once per published constraint (a required field
removed, a value outside its enum, range, length or pattern), and validation must refuse each with a cause at
that field; then every value of the object is probed (empty, unknown, far too long, out of range) and every
refusal that is a simple constraint (Required value, Unsupported value, a bound, a length) must be published.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
from examples import FULL

from kubellm.apis import constraints
from kubellm.apis.codec import decode
from kubellm.apis.constraints import constrained, rules
from kubellm.apis.meta.v1.types import Condition
from kubellm.apis.scheme import ResourceInfo
from kubellm.apis.validation import declared
from kubellm.apis.validation.field import ErrorList, Path
from kubellm.apis.validation.meta import validate_object_meta
from kubellm.registry.registry import ALL_RESOURCES
from kubellm.server.openapi.schemas import SchemaBuilder, definition_name

KINDS: dict[str, ResourceInfo] = {info.kind: info for info in ALL_RESOURCES}


@pytest.fixture(scope="module")
def definitions() -> dict[str, Any]:
    builder = SchemaBuilder()
    builder.add_meta(sorted({(i.group, i.version) for i in ALL_RESOURCES}))
    for info in ALL_RESOURCES:
        builder.add_kind(info)
    return builder.definitions


def causes(kind: str, body: dict[str, Any]) -> ErrorList:
    """What the Store refuses a new object for: decoding, metadata and the kind's validation."""
    info = KINDS[kind]
    decoded = decode(info.model, copy.deepcopy(body))
    meta = decoded.obj.metadata  # type: ignore[attr-defined]
    return [*decoded.field_errors, *validate_object_meta(meta.to_dict(), namespaced=info.namespaced,
                                                         name_fn=info.validate_name),
            *info.validate(decoded.obj)]


def test_every_kind_has_a_valid_complete_example() -> None:
    assert set(FULL) == set(KINDS)
    for kind, body in FULL.items():
        assert [str(e) for e in causes(kind, body)] == [], kind


# --- walking an example with its published schema --------------------------------------------------------


def _target(definitions: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any] | None:
    ref = schema.get("$ref") or next((s["$ref"] for s in schema.get("allOf", []) if "$ref" in s), None)
    return definitions[ref.rsplit("/", 1)[-1]] if ref else None


def _objects(definitions: dict[str, Any], name: str, value: Any, path: tuple[str | int, ...]
             ) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    """(definition name, path) of every object in `value` whose schema is definition `name`."""
    yield name, path
    for prop, sub in definitions[name].get("properties", {}).items():
        if not isinstance(value, dict) or prop not in value:
            continue
        child = value[prop]
        target = _target(definitions, sub)
        if target is not None and isinstance(child, dict):
            yield from _objects(definitions, _name(definitions, target), child, (*path, prop))
        elif sub.get("type") == "array" and isinstance(child, list):
            item = _target(definitions, sub["items"])
            for i, elem in enumerate(child):
                if item is not None:
                    yield from _objects(definitions, _name(definitions, item), elem, (*path, prop, i))


def _name(definitions: dict[str, Any], schema: dict[str, Any]) -> str:
    return next(n for n, s in definitions.items() if s is schema)


def _field(path: tuple[str | int, ...]) -> str:
    text = Path()
    for part in path:
        text = text.index(part) if isinstance(part, int) else text.child(part)
    return str(text)


def _set(body: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    if value is _DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return out


_DELETE = object()
_NOT_MATCHING = ["", " ", "!", "a b", "-", "0", "é", "a" * 300]
PUBLISHED = ("required", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "format", "minItems")
SKIPPED = {"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "io.k8s.apimachinery.pkg.apis.meta.v1.Time"}


def _violations(definitions: dict[str, Any], prop_schema: dict[str, Any]) -> Iterator[tuple[str, Any, str]]:
    """(keyword, a value that breaks it, what the refusal says) for each constraint published on a property."""
    if "enum" in prop_schema:
        yield "enum", "NotAValue", r"^(Unsupported value|Invalid value)"
    if "minimum" in prop_schema:
        yield "minimum", prop_schema["minimum"] - 1, rf"greater than or equal to (zero|{prop_schema['minimum']})"
    if "maximum" in prop_schema:
        yield "maximum", prop_schema["maximum"] + 1, rf"less than or equal to {prop_schema['maximum']}$"
    if "minLength" in prop_schema:
        n = prop_schema["minLength"]
        yield "minLength", "a" * (n - 1), r"^Required value" if n == 1 else rf"at least {n} characters"
    if "maxLength" in prop_schema:
        n = prop_schema["maxLength"]
        yield "maxLength", "a" * (n + 1), rf"(may not be more than {n} bytes|no more than {n} characters)"
    if "pattern" in prop_schema:
        regex = re.compile(prop_schema["pattern"].replace("$", r"\Z"))
        bad = next(v for v in _NOT_MATCHING if not regex.match(v))
        yield "pattern", bad, r"^(Invalid value|Required value)"
    if prop_schema.get("format") == "byte":
        yield "format", "not base64!", r"^Invalid value"
    if prop_schema.get("minItems"):
        yield "minItems", [], r"^Required value"
    target = _target(definitions, prop_schema)
    if target is not None and target.get("format") == "date-time":
        yield "format", "yesterday", r"RFC3339"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_published_constraint_is_enforced(kind: str, definitions: dict[str, Any]) -> None:
    """Each constraint the documents publish, broken alone in a valid object, is refused at its field."""
    info = KINDS[kind]
    body = FULL[kind]
    checked: set[tuple[str, str, str]] = set()
    for name, path in _objects(definitions, definition_name(info.model), body, ()):
        if name in SKIPPED:
            continue
        schema = definitions[name]
        for prop, sub in schema.get("properties", {}).items():
            where = (*path, prop)
            found: list[tuple[str, Any, str]] = list(_violations(definitions, sub))
            if prop in schema.get("required", []):
                found.append(("required", _DELETE, r"Required value"))
            for keyword, value, message in found:
                errs = causes(kind, _set(body, where, value))
                field = _field(where)
                at = [e for e in errs if e.field == field or e.field.startswith((f"{field}.", f"{field}["))]
                assert any(re.search(message, e.body()) for e in at), (kind, field, keyword, value,
                                                                       [str(e) for e in errs])
                checked.add((name, prop, keyword))
    # every constraint published in the kind's definitions was broken at least once
    published = set()
    for name in _reachable(definitions, definition_name(info.model)) - SKIPPED:
        schema = definitions[name]
        for prop, sub in schema.get("properties", {}).items():
            target = _target(definitions, sub) or {}
            for keyword in PUBLISHED:
                if keyword == "format":  # int32/int64 say how a number is stored, not what is accepted
                    found = sub.get("format") == "byte" or target.get("format") == "date-time"
                elif keyword == "required":
                    found = prop in schema.get("required", [])
                else:
                    found = keyword in sub
                if found:
                    published.add((name, prop, keyword))
    assert published - checked == set(), f"{kind}: the example misses these constraints"


def _reachable(definitions: dict[str, Any], root: str) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in SKIPPED:  # object metadata is validated as kube does, not declared
            todo.extend(re.findall(r"#/definitions/([^\"']+)", str(definitions[name])))
    return seen


# --- probing what is enforced ----------------------------------------------------------------------------

CROSS_FIELD = (
    # Refusals that depend on other fields: rules of the object, not constraints of the field alone, so not
    # published on the field (what kube's own published schemas do not say either).
    "Required value: must specify token, or clientCertificate and clientKey",  # one of two ways to log in
    "Required value: must be set when",  # clientKey with clientCertificate, uri with its source type
    "Required value: must be specified when `operator` is",  # selector values with In and NotIn
    "Required value: resource rules must supply",  # apiGroups and resources unless nonResourceURLs
)
_SIMPLE = re.compile(r"^(Required value(: .*)?|Unsupported value: .*|Invalid value: .*: must be (greater|less) than or "
                     r"equal to -?\d+|Invalid value: .*: must be at least \d+ characters|Too long: may not be more "
                     r"than \d+ bytes)$")


def _leaves(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(value, dict):
        for key, child in value.items():
            if path or key not in ("apiVersion", "kind", "metadata"):
                yield from _leaves(child, (*path, key))
    elif isinstance(value, list) and any(isinstance(child, dict) for child in value):
        for i, child in enumerate(value):
            yield from _leaves(child, (*path, i))
    else:
        yield path, value


def _probes(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [[]]
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [-1, 0, 10**9]
    return ["", "NotAValue", "a" * 40000]


def _published_at(definitions: dict[str, Any], info: ResourceInfo, path: tuple[str | int, ...]
                  ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The schema of the property at `path` and the definition holding it (None inside a map)."""
    schema = definitions[definition_name(info.model)]
    for part in path[:-1]:
        if isinstance(part, int):
            continue
        sub = schema["properties"][part]
        if sub.get("type") == "array":
            sub = sub["items"]
        target = _target(definitions, sub)
        if target is None:
            return None  # a map's values: label values and the like, checked as names
        schema = target
    return schema, schema["properties"][path[-1]]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_enforced_simple_constraint_is_published(kind: str, definitions: dict[str, Any]) -> None:
    info = KINDS[kind]
    body = FULL[kind]
    probed = 0
    for path, value in _leaves(body, ()):
        field = _field(path)
        published = _published_at(definitions, info, path)
        if published is None:
            continue
        parent, prop = published
        for probe in _probes(value):
            errs = [e for e in causes(kind, _set(body, path, probe)) if e.field == field]
            for err in errs:
                text = err.body()
                if not _SIMPLE.match(text) or text.startswith(CROSS_FIELD):
                    continue
                probed += 1
                if text.startswith("Required value"):
                    empty_refused = ("" not in prop.get("enum", [""]) or prop.get("minLength", 0) >= 1
                                     or prop.get("minItems", 0) >= 1
                                     or ("pattern" in prop and not re.match(prop["pattern"].replace("$", r"\Z"), "")))
                    assert path[-1] in parent.get("required", []) or ("default" in prop and empty_refused), (
                        kind, field, text)
                elif text.startswith("Unsupported value"):
                    supported = re.findall(r'"([^"]*)"', text.split("supported values: ", 1)[1])
                    assert set(supported) == set(prop["enum"]) - {""}, (kind, field, text)
                elif "greater than or equal to" in text:
                    assert prop.get("minimum") == int(text.rsplit(" ", 1)[1]), (kind, field, text)
                elif "less than or equal to" in text:
                    assert prop.get("maximum") == int(text.rsplit(" ", 1)[1]), (kind, field, text)
                elif "at least" in text:
                    assert prop.get("minLength") == int(text.split("at least ")[1].split()[0]), (kind, field, text)
                else:
                    assert prop.get("maxLength") == int(text.split("more than ")[1].split()[0]), (kind, field, text)
    assert probed, kind


# --- the declaration API ---------------------------------------------------------------------------------


def test_declarations_combine_with_other_schema_extras_and_are_checked() -> None:
    from kubellm.apis import listtypes, secrets

    info = listtypes.set_list(json_schema_extra=rules(required=True), default_factory=list, description="d.")
    assert info.json_schema_extra == {constraints.CONSTRAINTS: {"required": True}, "x-kubernetes-list-type": "set"}
    secret = constrained(json_schema_extra=secrets.SECRET, min_length=2, default="")
    assert secrets.is_secret(secret.json_schema_extra)
    assert constraints.of(secret) == constraints.Constraints(min_length=2)
    with pytest.raises(TypeError, match="anchored"):
        rules(pattern="[a-z]+", messages={"pattern": "m"})
    with pytest.raises(TypeError, match="needs its message"):
        rules(pattern="^[a-z]+$")
    with pytest.raises(TypeError, match=r"\\d"):
        rules(pattern=r"^\d+$", messages={"pattern": "m"})
    with pytest.raises(TypeError, match="unknown format"):
        rules(format="uuid")
    with pytest.raises(TypeError, match="nothing declared"):
        rules()


def test_a_declaration_that_does_not_fit_its_field_is_refused() -> None:
    from kubellm.apis.base import APIModel

    class Bad(APIModel):
        count: int = constrained(default=0, enum=("a",))

    with pytest.raises(TypeError, match=r"Bad.count: \['enum'\] cannot be declared on a integer field"):
        constraints.declared_fields(Bad)

    class BadDefault(APIModel):
        mode: str = constrained(default="b", enum=("a",))

    with pytest.raises(TypeError, match="the default 'b' is not in the enum"):
        constraints.declared_fields(BadDefault)


def test_every_declaration_of_every_type_fits() -> None:
    from pydantic import BaseModel

    todo: list[type[BaseModel]] = [info.model for info in ALL_RESOURCES]
    seen: set[type[BaseModel]] = set()
    while todo:
        model = todo.pop()
        if model not in seen:
            seen.add(model)
            todo.extend(m for d in constraints.declared_fields(model) for m in d.models)
    assert Condition in seen and len(seen) > 30


def test_declared_messages_are_apimachinerys() -> None:
    cond = Condition(type="Ready", status="Maybe", observed_generation=-1, last_transition_time="now",
                     reason="a" * 1025, message="m")
    assert [str(e) for e in declared.validate(cond, Path("c"))] == [
        'c.status: Unsupported value: "Maybe": supported values: "False", "True", "Unknown"',
        "c.observedGeneration: Invalid value: -1: must be greater than or equal to zero",
        'c.lastTransitionTime: Invalid value: "now": must be an RFC3339 timestamp such as "2006-01-02T15:04:05Z"',
        "c.reason: Too long: may not be more than 1024 bytes",
    ]
    assert [str(e) for e in declared.validate(Condition(), Path("c"))] == [
        "c.type: Required value",
        "c.status: Required value",
        "c.lastTransitionTime: Required value: must be set",
        "c.reason: Required value: must be set",
    ]


def test_secret_values_are_never_echoed() -> None:
    info = KINDS["Cluster"]
    body = _set(FULL["Cluster"], ("spec", "credentials", "token"), "se cret")
    body = _set(body, ("spec", "credentials", "clientKey"), "PRIVATE KEY!")
    errs = [str(e) for e in info.validate(decode(info.model, body).obj)]
    assert errs == [
        "spec.credentials.token: Invalid value: must consist of printable ASCII characters without whitespace",
        "spec.credentials.clientKey: Invalid value: must be base64-encoded PEM data",
    ]


def test_errors_come_in_the_order_of_the_fields() -> None:
    model = KINDS["LLMService"].model
    paths = ["status.phase", "spec.env[1].name", "spec.env[0].name", "spec.model", "metadata.labels[a]",
             "spec.placement.clusterTolerations[0].effect", "spec.bogus", "spec.resources.gpu"]
    ordered = sorted(paths, key=lambda p: declared.position(model, p))
    assert ordered == ["metadata.labels[a]", "spec.model", "spec.resources.gpu",
                       "spec.placement.clusterTolerations[0].effect", "spec.env[0].name", "spec.env[1].name",
                       "spec.bogus", "status.phase"]
