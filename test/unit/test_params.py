"""Query parameters and DeleteOptions are checked for type and range at the edge: 400 (or 422) naming the field."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from kubellm.apis import errors
from kubellm.registry.storage import errors as serr
from kubellm.registry.storage.etcd import continue_token
from kubellm.registry.storage.etcd.client import translate
from kubellm.server import params

INT64_MAX = 2**63 - 1


def refused(fn: Any, *args: Any, **kwargs: Any) -> errors.StatusError:
    with pytest.raises(errors.StatusError) as caught:
        fn(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize("raw", ["1e20", "100000000000000000000", str(2**63), "-1", "abc", "1_000", " 5", "\u0663",
                                 "9" * 5000])
def test_limits_outside_int64_or_not_integers_are_bad_requests(raw: str) -> None:
    err = refused(params.list_params, {"limit": raw})
    assert err.code == 400 and "limit" in err.message
    assert len(err.message) < 200  # the value is quoted shortened


def test_limits_in_range_pass() -> None:
    assert params.list_params({"limit": str(INT64_MAX)}).limit == INT64_MAX
    assert params.list_params({"limit": "0"}).limit == 0


@pytest.mark.parametrize("raw", [str(2**63), "-3", "abc", "1.5", "\u0661", "0x10", "9" * 100])
def test_resource_versions_outside_int64_are_bad_requests(raw: str) -> None:
    err = refused(params.list_params, {"resourceVersion": raw})
    assert err.code == 400 and "resourceVersion" in err.message


def test_a_watch_resource_version_leaves_room_for_the_next_revision() -> None:
    assert params.list_params({"resourceVersion": str(INT64_MAX)}).resource_version == str(INT64_MAX)
    assert refused(params.list_params, {"resourceVersion": str(INT64_MAX)}, watch=True).code == 400
    assert params.list_params({"resourceVersion": str(INT64_MAX - 1)}, watch=True).resource_version


@pytest.mark.parametrize("raw", ["-5", "100000000000000000000000", "soon", "1.5"])
def test_timeout_seconds_must_be_a_non_negative_int64(raw: str) -> None:
    err = refused(params.timeout_seconds, {"timeoutSeconds": raw}, 1800)
    assert err.code == 400 and "timeoutSeconds" in err.message


def test_timeout_seconds_zero_is_the_default() -> None:
    assert params.timeout_seconds({"timeoutSeconds": "0"}, 1800) == 1800
    assert params.timeout_seconds({}, 1800) == 1800
    assert params.timeout_seconds({"timeoutSeconds": "5"}, 1800) == 5


def test_booleans_and_include_object() -> None:
    assert refused(params.boolean, {"allowWatchBookmarks": "maybe"}, "allowWatchBookmarks").code == 400
    err = refused(params.include_object, {"includeObject": "Everything"})
    assert err.code == 422 and err.reason == "Invalid" and "includeObject" in err.message


@pytest.mark.parametrize(("text", "seconds"), [("1m0s", 60.0), ("500ms", 0.5), ("1h2m3.5s", 3723.5), ("30", 30.0),
                                               ("2.5", 2.5), ("0", 0.0), ("1us", 1e-6)])
def test_go_durations(text: str, seconds: float) -> None:
    assert params.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "1x", "1m-3s", "s", "1" * 100])
def test_malformed_durations(text: str) -> None:
    with pytest.raises(ValueError):
        params.parse_duration(text)


def test_request_deadline_is_the_shorter_of_the_parameter_and_the_server_timeout() -> None:
    assert params.request_deadline({}, 60) == 60
    assert params.request_deadline({"timeout": "5s"}, 60) == 5
    assert params.request_deadline({"timeout": "10m"}, 60) == 60
    assert params.request_deadline({"timeout": "0s"}, 60) == 60
    for bad in ("-1s", "soon"):
        err = refused(params.request_deadline, {"timeout": bad}, 60)
        assert err.code == 400 and "invalid timeout specified in the request URL" in err.message


# --- DeleteOptions --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "field"), [
    ({"preconditions": "x"}, "preconditions"), ({"preconditions": {"uid": 5}}, "preconditions.uid"),
    ({"preconditions": {"resourceVersion": 7}}, "preconditions.resourceVersion"),
    ({"gracePeriodSeconds": "x"}, "gracePeriodSeconds"), ({"gracePeriodSeconds": True}, "gracePeriodSeconds"),
    ({"gracePeriodSeconds": 1.5}, "gracePeriodSeconds"), ({"gracePeriodSeconds": 2**64}, "gracePeriodSeconds"),
    ({"propagationPolicy": ["Orphan"]}, "propagationPolicy"), ({"orphanDependents": "yes"}, "orphanDependents"),
    ({"dryRun": "All"}, "dryRun"), ({"dryRun": [1]}, "dryRun"), ({"kind": 3}, "kind"), ({"kind": "Pod"}, "Pod"),
    ([1, 2], "DeleteOptions"), ("x", "DeleteOptions"),
])
def test_undecodable_delete_options_are_bad_requests(body: Any, field: str) -> None:
    err = refused(params.delete_params, MultiDict(), body)
    assert err.code == 400 and err.reason == "BadRequest" and field in err.message, err.message


def test_delete_options_of_the_right_types() -> None:
    got = params.delete_params(MultiDict(), {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                                             "preconditions": {"uid": "u", "resourceVersion": "7"},
                                             "propagationPolicy": "Foreground", "dryRun": ["All"], "extra": 1})
    assert got.grace_period_seconds == 0 and got.propagation_policy == "Foreground" and got.dry_run
    assert got.preconditions is not None and got.preconditions.uid == "u"
    assert got.preconditions.resource_version == "7"
    assert params.delete_params(MultiDict(), {"orphanDependents": True}).propagation_policy == "Orphan"
    assert params.delete_params(MultiDict({"gracePeriodSeconds": "5"}), None).grace_period_seconds == 5


def test_orphan_dependents_and_a_propagation_policy_cannot_be_both_set() -> None:
    err = refused(params.delete_params, MultiDict({"propagationPolicy": "Background"}), {"orphanDependents": False})
    assert err.code == 422 and "cannot be both set" in err.message


def test_delete_option_queries_are_checked() -> None:
    assert refused(params.delete_params, MultiDict({"gracePeriodSeconds": "1e3"}), None).code == 400
    assert refused(params.delete_params, MultiDict({"orphanDependents": "perhaps"}), None).code == 400
    assert refused(params.delete_params, MultiDict({"dryRun": "Some"}), None).code == 422


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=4)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner,
                                                                                         max_size=3)), max_leaves=8)
FIELDS = st.sampled_from(["kind", "apiVersion", "gracePeriodSeconds", "preconditions", "propagationPolicy",
                          "orphanDependents", "dryRun"])


@settings(max_examples=300)
@given(body=st.one_of(JSON, st.dictionaries(FIELDS, JSON, max_size=5),
                      st.dictionaries(st.just("preconditions"), st.dictionaries(
                          st.sampled_from(["uid", "resourceVersion"]), JSON), max_size=1)))
def test_any_delete_options_body_is_options_or_a_client_error(body: Any) -> None:
    try:
        params.delete_params(MultiDict(), body)
    except errors.StatusError as err:
        assert err.code in (400, 422), err.status


# --- continue tokens ------------------------------------------------------------------------------------------

def token(rv: Any) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": "a"}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("rv", [True, False, 2**63, 2**64 + 1, -1, 0, 1.5, "5", None])
def test_continue_tokens_carry_an_etcd_revision(rv: Any) -> None:
    with pytest.raises(serr.InvalidContinue):
        continue_token.decode(token(rv))


def test_a_valid_continue_token() -> None:
    assert continue_token.decode(token(INT64_MAX)) == (INT64_MAX, "a")


# --- the etcd gateway's own words -----------------------------------------------------------------------------

@pytest.mark.parametrize("message", ["json: cannot unmarshal number 100000000000000000000 into Go value of type int64",
                                     "invalid character 'T' looking for beginning of value",
                                     "etcdserver: too many operations in txn request"])
def test_gateway_messages_are_never_passed_on(message: str) -> None:
    err = translate({"message": message, "code": 3})
    assert isinstance(err, serr.Unavailable)
    assert message not in err.message and "unmarshal" not in err.message and "etcdserver" not in err.message


def test_known_gateway_errors_keep_their_meaning() -> None:
    assert isinstance(translate({"message": "etcdserver: mvcc: required revision has been compacted"}), serr.Expired)
    too_large = translate({"message": "etcdserver: mvcc: required revision is a future revision"})
    assert isinstance(too_large, serr.TooLargeResourceVersion) and "etcdserver" not in too_large.message
