"""Serving limits: request kinds, in-flight budgets, protocol errors as Status, and the flags that set them."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import http_exceptions as hx

from kubellm.app.options import Options
from kubellm.server import requestinfo as ri
from kubellm.server.limits import LONG_RUNNING, MUTATING, READ_ONLY, Inflight, ServingLimits, request_kind
from kubellm.server.protocol import protocol_error
from kubellm.service.identity import UserInfo

LLMS = "/apis/model.kubellm.io/v1alpha1/namespaces/n/llmservices"


@pytest.mark.parametrize(("method", "path", "query", "kind"), [
    ("GET", LLMS, {}, READ_ONLY), ("GET", LLMS + "/a", {}, READ_ONLY), ("HEAD", "/healthz", {}, READ_ONLY),
    ("GET", "/metrics", {}, READ_ONLY), ("GET", LLMS, {"watch": "true"}, LONG_RUNNING),
    ("POST", LLMS, {}, MUTATING), ("PATCH", LLMS + "/a", {}, MUTATING), ("DELETE", LLMS, {}, MUTATING),
    ("POST", "/login", {}, MUTATING), ("OPTIONS", "/version", {}, MUTATING),
])
def test_request_kinds(method: str, path: str, query: dict[str, str], kind: str) -> None:
    assert request_kind(method, ri.parse(method, path, query)) == kind


def test_each_kind_has_its_own_budget() -> None:
    inflight = Inflight(ServingLimits(max_requests_inflight=2, max_mutating_requests_inflight=1,
                                      max_long_running_requests=1))
    assert inflight.try_acquire(MUTATING) and not inflight.try_acquire(MUTATING)
    assert inflight.try_acquire(READ_ONLY) and inflight.try_acquire(READ_ONLY) and not inflight.try_acquire(READ_ONLY)
    assert inflight.try_acquire(LONG_RUNNING) and not inflight.try_acquire(LONG_RUNNING)
    inflight.release(MUTATING)
    assert inflight.try_acquire(MUTATING)
    assert inflight.current == {READ_ONLY: 2, MUTATING: 1, LONG_RUNNING: 1}


def test_zero_means_no_limit() -> None:
    inflight = Inflight(ServingLimits(max_requests_inflight=0))
    assert all(inflight.try_acquire(READ_ONLY) for _ in range(10_000))


def test_system_masters_skip_the_request_budgets_but_not_the_watch_bound() -> None:
    admin, someone = UserInfo("admin", ("system:masters",)), UserInfo("alice", ("dev",))
    assert Inflight.exempt(MUTATING, admin) and Inflight.exempt(READ_ONLY, admin)
    assert not Inflight.exempt(LONG_RUNNING, admin)
    assert not Inflight.exempt(MUTATING, someone) and not Inflight.exempt(MUTATING, None)


@pytest.mark.parametrize(("exc", "code", "words"), [
    (hx.LineTooLong(b"x" * 100, 8190), 431, "too long"),
    (hx.BadHttpMessage("Too many headers received"), 431, "too many header fields"),
    (hx.BadHttpMethod("FOO / HTTP/1.1"), 400, "method"),
    (hx.BadStatusLine("garbage"), 400, "request line"),
    (hx.InvalidHeader(b"Bad\x01Header"), 400, "header field"),
    (hx.ContentLengthError("Not enough data"), 400, "not valid HTTP/1.1"),
])
def test_protocol_errors_are_statuses_that_quote_nothing(exc: BaseException, code: int, words: str) -> None:
    err = protocol_error(400, exc)
    assert err.code == code and words in err.message, err.status
    assert "xxxx" not in err.message and "garbage" not in err.message and "FOO" not in err.message


def test_server_side_protocol_errors() -> None:
    assert protocol_error(500, RuntimeError("secret detail")).code == 500
    assert "secret" not in protocol_error(500, RuntimeError("secret detail")).message
    assert protocol_error(504, None).reason == "Timeout"


def test_serving_flags_reach_the_config(tmp_path: Path) -> None:
    cfg = Options.parse(["--state-dir", str(tmp_path), "--max-requests-inflight", "7",
                         "--max-mutating-requests-inflight", "3", "--max-long-running-requests", "5",
                         "--max-open-connections", "50", "--request-timeout", "1m30s", "--tls-handshake-timeout",
                         "2s", "--read-header-timeout", "500ms", "--read-body-timeout", "20",
                         "--idle-connection-timeout", "1m"]).complete().config()
    assert cfg.serving == ServingLimits(7, 3, 5, 50, 90.0, 2.0, 0.5, 20.0, 60.0)


def test_serving_defaults_are_kube_apiservers() -> None:
    cfg = Options.parse([]).complete().config()
    assert (cfg.serving.max_requests_inflight, cfg.serving.max_mutating_requests_inflight) == (400, 200)
    assert (cfg.serving.request_timeout, cfg.serving.read_header_timeout) == (60.0, 32.0)
    assert cfg.serving.idle_connection_timeout == 90.0


def test_serving_flags_are_validated() -> None:
    problems = Options.parse(["--max-requests-inflight", "-1", "--request-timeout", "0s",
                              "--read-header-timeout=-2s"]).complete().validate()
    assert "--max-requests-inflight must not be negative" in problems
    assert "--request-timeout must be a positive duration" in problems
    assert "--read-header-timeout must be a positive duration" in problems
    with pytest.raises(SystemExit):
        Options.parse(["--request-timeout", "soon"])
