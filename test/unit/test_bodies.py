"""Request bodies decode with bounded nesting and bounded alias expansion, or are a 400, never anything else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubellm.apis import errors
from kubellm.server import bodies, negotiation
from kubellm.server.bodies import MAX_DEPTH, MAX_EXPANDED, check_depth


@pytest.fixture(scope="module", autouse=True, params=["libyaml", "python"])
def loader(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every case with libyaml's parser and with PyYAML's own (used when libyaml is not installed)."""
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "python":
            mp.setattr(bodies, "BoundedLoader", bodies.PyBoundedLoader)
        yield


def nested(depth: int, leaf: Any = 1, *, as_list: bool = False) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


def bad_request(raw: bytes, content_type: str) -> str:
    with pytest.raises(errors.StatusError) as caught:
        negotiation.decode_body(raw, content_type)
    assert caught.value.code == 400, caught.value.status
    return caught.value.message


@pytest.mark.parametrize("content_type", ["application/json", "application/yaml", "application/merge-patch+json"])
def test_nesting_up_to_the_limit_decodes(content_type: str) -> None:
    body = nested(MAX_DEPTH)
    assert negotiation.decode_body(json.dumps(body).encode(), content_type) == body


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 1025, 100_000])
@pytest.mark.parametrize("content_type", ["application/json", "application/yaml"])
def test_deeper_nesting_is_a_bad_request(depth: int, content_type: str) -> None:
    raw = b"[" * depth + b"]" * depth
    assert "nested too deeply" in bad_request(raw, content_type)


def test_deep_block_yaml_is_a_bad_request() -> None:
    raw = ("username:\n" + "- " * (MAX_DEPTH + 5) + "x\n").encode()
    assert "nested too deeply" in bad_request(raw, "application/yaml")


def billion_laughs(levels: int, fanout: int = 9) -> bytes:
    lols = ", ".join(['"lol"'] * fanout)
    lines = [f"l0: &l0 [{lols}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]")
    return "\n".join(lines).encode()


def test_alias_bombs_are_refused_before_they_expand() -> None:
    assert "expands to too much data" in bad_request(billion_laughs(9), "application/yaml")
    assert "expands to too much data" in bad_request(billion_laughs(30, 2), "application/yaml")


def test_merge_key_bombs_are_refused() -> None:
    lines = ["m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 8)}], k{i}: {i}}}" for i in range(1, 12)]
    assert "expands to too much data" in bad_request("\n".join(lines).encode(), "application/yaml")


def test_recursive_aliases_are_refused() -> None:
    assert "alias" in bad_request(b"&a [*a]", "application/yaml")
    assert "alias" in bad_request(b"&a {x: {y: *a}}", "application/yaml")


def test_a_few_aliases_are_fine_and_timestamps_stay_strings() -> None:
    doc = b"base: &b {image: vllm, replicas: 2}\none: *b\ntwo: *b\nwhen: 2024-01-01T00:00:00Z\n"
    assert negotiation.decode_body(doc, "application/yaml") == {
        "base": {"image": "vllm", "replicas": 2}, "one": {"image": "vllm", "replicas": 2},
        "two": {"image": "vllm", "replicas": 2}, "when": "2024-01-01T00:00:00Z"}


def test_the_expansion_limit_is_of_the_expanded_size() -> None:
    big = "x" * 100_000
    fits = MAX_EXPANDED // len(big) - 2
    within = f"a: &a {big}\nb: [{', '.join(['*a'] * fits)}]\n".encode()
    assert len(negotiation.decode_body(within, "application/yaml")["b"]) == fits
    beyond = f"a: &a {big}\nb: [{', '.join(['*a'] * (fits + 3))}]\n".encode()
    assert "expands to too much data" in bad_request(beyond, "application/yaml")


INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
JSON_LEAF = st.one_of(st.none(), st.booleans(), INT64, st.text(max_size=5))
"""Integers as JSON decoders keep them exactly (beyond int64 they become floats, as in Go)."""


def json_trees(max_leaves: int) -> st.SearchStrategy[Any]:
    return st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                        max_leaves=max_leaves)


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


@settings(max_examples=100, deadline=None)
@given(tree=json_trees(20), wrap=st.integers(min_value=0, max_value=3 * MAX_DEPTH), as_list=st.booleans(),
       content_type=st.sampled_from(["application/json", "application/yaml"]))
def test_random_structures_decode_or_are_a_bad_request(tree: Any, wrap: int, as_list: bool,
                                                       content_type: str) -> None:
    body = nested(wrap, tree, as_list=as_list)
    raw = (json.dumps(body) if content_type.endswith("json") else yaml.safe_dump(body)).encode()
    if depth_of(body) > MAX_DEPTH:
        assert "nested too deeply" in bad_request(raw, content_type)
    else:
        assert negotiation.decode_body(raw, content_type) == body


def test_check_depth_walks_without_recursion() -> None:
    value: list[Any] = []
    for _ in range(50_000):
        value = [value]
    with pytest.raises(errors.StatusError):
        check_depth(value)
