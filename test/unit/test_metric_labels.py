"""Request metric labels come from the served resources and fixed sets, whatever the request."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kubellm.server import requestinfo as ri
from kubellm.server.metrics import OTHER, SCOPES, VERBS, ServedResources, code_label, scope_label, verb_label

SERVED = ServedResources.of([
    ("model.kubellm.io", "v1alpha1", "llmservices", ["status", "scale"]),
    ("iam.kubellm.io", "v1alpha1", "users", ["status"]),
])
SEGMENT = st.one_of(st.sampled_from(["apis", "model.kubellm.io", "v1alpha1", "llmservices", "namespaces", "status",
                                     "scale", "users", "iam.kubellm.io", "x"]),
                    st.text(alphabet="abcxyz.-_%0123456789", min_size=1, max_size=12))
METHOD = st.one_of(st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"]),
                   st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=10))


def allowed_resource_labels() -> set[tuple[str, str, str, str]]:
    out = {(OTHER, OTHER, OTHER, ""), (OTHER, OTHER, OTHER, OTHER)}
    for (g, v, r), subs in SERVED.resources.items():
        out |= {(g, v, r, s) for s in ("", OTHER, *subs)}
    return out


@settings(max_examples=400)
@given(method=METHOD, segments=st.lists(SEGMENT, max_size=9), watch=st.booleans(),
       content_type=st.sampled_from(["", "application/json", "application/apply-patch+yaml", "text/x-garbage"]))
def test_random_requests_never_make_new_label_values(method: str, segments: list[str], watch: bool,
                                                     content_type: str) -> None:
    info = ri.parse(method, "/" + "/".join(segments), {"watch": "true"} if watch else {})
    if not info.is_resource_request:
        return
    assert SERVED.labels(info) in allowed_resource_labels()
    assert verb_label(method, info, content_type) in VERBS | {OTHER}
    assert scope_label(info) in SCOPES


def test_served_resources_keep_their_names() -> None:
    info = ri.parse("GET", "/apis/model.kubellm.io/v1alpha1/namespaces/ns/llmservices/a/scale", {})
    assert SERVED.labels(info) == ("model.kubellm.io", "v1alpha1", "llmservices", "scale")
    info = ri.parse("PUT", "/apis/iam.kubellm.io/v1alpha1/users/a/scale", {})
    assert SERVED.labels(info) == ("iam.kubellm.io", "v1alpha1", "users", OTHER)  # users have no scale
    info = ri.parse("GET", "/apis/iam.kubellm.io/v1/users", {})
    assert SERVED.labels(info) == (OTHER, OTHER, OTHER, "")


def test_verbs() -> None:
    info = ri.parse("PATCH", "/apis/model.kubellm.io/v1alpha1/namespaces/n/llmservices/a", {})
    assert verb_label("PATCH", info, "application/apply-patch+yaml") == "APPLY"
    assert verb_label("PATCH", info, "application/merge-patch+json") == "PATCH"
    assert verb_label("PROPFIND", ri.parse("PROPFIND", info.path, {}), "") == OTHER
    listing = ri.parse("GET", "/apis/model.kubellm.io/v1alpha1/llmservices", {"watch": "1"})
    assert verb_label("GET", listing, "") == "WATCH"
    assert verb_label("HEAD", ri.parse("HEAD", info.path, {}), "") == "GET"


@given(st.integers(min_value=-10**6, max_value=10**6))
def test_codes_are_a_fixed_set(code: int) -> None:
    label = code_label(code)
    assert label == OTHER or label in {f"{c}xx" for c in range(1, 6)} or label.isdigit()
    if label.isdigit():
        assert int(label) == code


def test_known_codes_and_classes() -> None:
    assert [code_label(c) for c in (200, 404, 429, 504, 599, 299, 42, 1000)] == [
        "200", "404", "429", "504", "5xx", "2xx", OTHER, OTHER]
