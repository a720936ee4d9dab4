"""An attacker against the running server: each class of attack found by probing it from outside.

Its own server (short lockouts, a per-source throttle), so guessing passwords here never disturbs other
tests; each test speaks from its own loopback address (127.0.0.x) where the throttle matters.
The wire-level classes (limits, timeouts, nesting, metric labels, parameters) are in test_edge_limits.py;
secrets in responses and etcd in test_write_only.py; impersonation in test_impersonation.py.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import APIServer, eventually, running_apiserver, secret
from test_authentication import client_cert, context

from kubellm.server.certs import Pair

IAM = "/apis/iam.kubellm.io/v1alpha1"
USERS = f"{IAM}/users"
RECORDS = f"{IAM}/loginrecords"
LOCKOUT = 10  # long enough that 30 parallel argon2 checks on a busy machine end within it
GOOD = secret("the right password 123")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APIServer]:
    state = tmp_path_factory.mktemp("attacked")
    with running_apiserver(state, "--login-max-failures", "5", "--login-lockout-seconds", str(LOCKOUT),
                           "--login-source-max-failures", "40") as server:
        yield server


def call(server: APIServer, method: str, path: str, cert: Pair | None = None, body: Any = None,
         headers: dict[str, str] | None = None, source: str = "127.0.0.1",
         raw: bytes | None = None) -> tuple[int, Any, dict[str, str]]:
    host, port = server.url.removeprefix("https://").rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=context(server, cert), timeout=30,
                                       source_address=(source, 0))
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        text = resp.read().decode()
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return resp.status, parsed, dict(resp.getheaders())
    finally:
        conn.close()


def admin(server: APIServer) -> Pair:
    return Pair(server.state_dir / "pki" / "admin.crt", server.state_dir / "pki" / "admin.key")


def login(server: APIServer, username: str, password: str, source: str = "127.0.0.1") -> tuple[int, Any, str]:
    secret(password)
    code, body, headers = call(server, "POST", "/login", body={"username": username, "password": password},
                               source=source)
    return code, body, headers.get("Retry-After", "")


def token_of(server: APIServer, username: str, password: str = GOOD, source: str = "127.0.0.1") -> str:
    code, body, _ = login(server, username, password, source)
    assert code == 200, body
    return str(body["status"]["token"])


def bearer(server: APIServer, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    code, out, _ = call(server, method, path, body=body, headers={"Authorization": f"Bearer {token}"})
    return code, out


def user(name: str, groups: list[str] | None = None, password: str | None = GOOD) -> dict[str, Any]:
    spec: dict[str, Any] = {"email": f"{name}@example.com", "groups": groups or []}
    if password:
        spec["password"] = secret(password)
    return {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "User", "metadata": {"name": name}, "spec": spec}


def create(server: APIServer, path: str, obj: dict[str, Any], cert: Pair | None = None) -> None:
    code, out, _ = call(server, "POST", path, cert or admin(server), obj)
    assert code == 201, out


def cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "ClusterRole", "metadata": {"name": name},
            "rules": rules}


def cluster_binding(name: str, role: str, kind: str, subject: str) -> dict[str, Any]:
    return {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "iam.kubellm.io", "kind": kind, "name": subject}]}


def settle(server: APIServer, cert: Pair, path: str) -> None:
    """RBAC reads the watch cache: wait until `cert` may GET `path`."""
    eventually(lambda: call(server, "GET", path, cert)[0], lambda code: code == 200)


# --- 1. Privilege through Users ----------------------------------------------------------------------------

def test_users_create_is_not_cluster_admin(target: APIServer, tmp_path: Path) -> None:
    """Someone allowed only to write Users cannot grant themselves (or anyone) more than they hold."""
    create(target, f"{IAM}/clusterroles", cluster_role("user-writer", [
        {"apiGroups": ["iam.kubellm.io"], "resources": ["users"], "verbs": ["get", "list", "create", "update",
                                                                            "patch"]}]))
    create(target, f"{IAM}/clusterrolebindings", cluster_binding("user-writer", "user-writer", "User", "mallory"))
    create(target, f"{IAM}/clusterrolebindings", cluster_binding("ops-admin", "cluster-admin", "Group", "ops"))
    create(target, f"{IAM}/clusterrolebindings", cluster_binding("boss-admin", "cluster-admin", "User", "boss"))
    mallory = client_cert(target, tmp_path, "mallory")
    settle(target, mallory, USERS)

    attempts = {
        "system:masters": user("evil-1", ["system:masters"]),
        "a group bound to cluster-admin": user("evil-2", ["ops"]),
        "a name bound to cluster-admin, with a password": user("boss"),
    }
    for what, obj in attempts.items():
        code, out, _ = call(target, "POST", USERS, mallory, obj)
        assert code == 403, (what, out)
        assert out["reason"] == "Forbidden" and out["details"]["kind"] == "users", out
        assert login(target, obj["metadata"]["name"], GOOD)[0] == 401, what
    code, out, _ = call(target, "POST", USERS, mallory, user("evil-1", ["system:masters"]))
    assert "only members of system:masters" in out["message"]

    # the same through updates: adding the group later, or resetting a privileged user's password
    create(target, USERS, user("plain", password=None), mallory)
    merge = {"Content-Type": "application/merge-patch+json"}
    for patch in ({"spec": {"groups": ["system:masters"]}}, {"spec": {"groups": ["ops"]}}):
        code, out, _ = call(target, "PATCH", f"{USERS}/plain", mallory, patch, merge)
        assert code == 403, out
    create(target, USERS, user("ops-member", ["ops"], password=None))  # by the admin: allowed
    stolen = {"spec": {"password": secret("mallory knows it")}}
    code, out, _ = call(target, "PATCH", f"{USERS}/ops-member", mallory, stolen, merge)
    assert code == 403 and "attempting to grant RBAC permissions not currently held" in out["message"], out
    code, out, _ = call(target, "PATCH", f"{USERS}/admin", mallory, stolen, merge)
    assert code == 403, out
    assert login(target, "admin", "mallory knows it")[0] == 401

    # what mallory does hold may be handed on: a group with no permissions, a password for a plain user
    code, out, _ = call(target, "PATCH", f"{USERS}/plain", mallory,
                        {"spec": {"groups": ["readers"], "password": secret("a fine new password")}}, merge)
    assert code == 200, out
    # and with `escalate` on users, groups (not system:masters) may be given
    create(target, f"{IAM}/clusterroles", cluster_role("user-escalator", [
        {"apiGroups": ["iam.kubellm.io"], "resources": ["users"], "verbs": ["escalate"]}]))
    create(target, f"{IAM}/clusterrolebindings", cluster_binding("user-escalator", "user-escalator", "User",
                                                                 "mallory"))
    eventually(lambda: call(target, "POST", USERS, mallory, user("trusted-op", ["ops"]))[0], lambda c: c == 201)
    code, out, _ = call(target, "POST", USERS, mallory, user("evil-3", ["system:masters"]))
    assert code == 403, out


# --- 3. Groups are read at each request, and a token names one user --------------------------------------

def test_tokens_follow_the_current_user(target: APIServer) -> None:
    create(target, f"{IAM}/clusterroles", cluster_role("llm-reader", [
        {"apiGroups": ["model.kubellm.io"], "resources": ["llmservices"], "verbs": ["list"]}]))
    create(target, f"{IAM}/clusterrolebindings", cluster_binding("readers", "llm-reader", "Group", "llm-readers"))
    create(target, USERS, user("carol", ["llm-readers"]))
    token = token_of(target, "carol")
    llms = "/apis/model.kubellm.io/v1alpha1/llmservices"
    eventually(lambda: bearer(target, "GET", llms, token)[0], lambda c: c == 200)
    # the group goes: the same token loses its permissions at once
    code, _, _ = call(target, "PATCH", f"{USERS}/carol", admin(target), {"spec": {"groups": []}},
                      {"Content-Type": "application/merge-patch+json"})
    assert code == 200
    eventually(lambda: bearer(target, "GET", llms, token)[0], lambda c: c == 403)
    # a group added later counts at once too
    call(target, "PATCH", f"{USERS}/carol", admin(target), {"spec": {"groups": ["llm-readers"]}},
         {"Content-Type": "application/merge-patch+json"})
    eventually(lambda: bearer(target, "GET", llms, token)[0], lambda c: c == 200)
    # deleted: refused; created again with the same name and groups: the old token stays refused
    assert call(target, "DELETE", f"{USERS}/carol", admin(target))[0] == 200
    eventually(lambda: bearer(target, "GET", llms, token)[0], lambda c: c == 401)
    create(target, USERS, user("carol", ["llm-readers"]))
    fresh = token_of(target, "carol")
    eventually(lambda: bearer(target, "GET", llms, fresh)[0], lambda c: c == 200)
    assert bearer(target, "GET", llms, token)[0] == 401


# --- 6, 7. Lockout: atomic, only for new logins, expiring ------------------------------------------------

def test_parallel_wrong_passwords_all_count(target: APIServer) -> None:
    create(target, USERS, user("paula"))
    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(lambda i: login(target, "paula", f"wrong guess {i}", f"127.0.1.{i + 1}")[0],
                              range(30)))
    assert set(codes) <= {401, 429}, codes
    status = eventually(lambda: call(target, "GET", f"{USERS}/paula", admin(target))[1].get("status") or {},
                        lambda st: st.get("state") == "LockedOut")
    assert status["failedLoginCount"] >= 5, status
    code, _, retry = login(target, "paula", GOOD, "127.0.2.1")
    assert code == 429 and 0 < int(retry) <= LOCKOUT + 1


def test_lockout_blocks_only_new_logins_and_expires(target: APIServer) -> None:
    create(target, USERS, user("dave"))
    token = token_of(target, "dave", source="127.0.3.1")
    for i in range(5):
        assert login(target, "dave", f"stranger guess {i}", "127.0.3.2")[0] == 401
    code, body, retry = login(target, "dave", GOOD, "127.0.3.1")
    assert code == 429 and body["message"] == "too many failed logins; try again later"
    # dave's session goes on: a stranger guessing does not log him out
    assert bearer(target, "GET", "/apis", token)[0] == 200
    eventually(lambda: call(target, "GET", f"{USERS}/dave", admin(target))[1]["status"]["state"],
               lambda state: state == "LockedOut")
    time.sleep(int(retry))  # the lockout's own length: nothing to poll before it has passed
    # one wrong guess after the lock does not lock again, and the right password works
    assert login(target, "dave", "one more stranger guess", "127.0.3.2")[0] == 401
    assert login(target, "dave", GOOD, "127.0.3.1")[0] == 200
    status = eventually(lambda: call(target, "GET", f"{USERS}/dave", admin(target))[1]["status"],
                        lambda st: st["failedLoginCount"] == 0)
    assert status["state"] == "Active" and not status.get("lockedUntil")


def test_an_expired_lockout_is_swept_back_to_active(target: APIServer) -> None:
    create(target, USERS, user("erin"))
    for i in range(5):
        login(target, "erin", f"guess {i}", "127.0.4.1")
    eventually(lambda: call(target, "GET", f"{USERS}/erin", admin(target))[1].get("status", {}).get("state"),
               lambda state: state == "LockedOut")
    # nobody logs in: the server's sweep still turns the user Active once the time has passed
    eventually(lambda: call(target, "GET", f"{USERS}/erin", admin(target))[1]["status"],
               lambda st: st["state"] == "Active" and st["failedLoginCount"] == 0, timeout=LOCKOUT + 10)


# --- 8. Usernames cannot be enumerated -------------------------------------------------------------------

def test_known_and_unknown_users_answer_alike(target: APIServer) -> None:
    create(target, USERS, user("frank"))
    known = [login(target, "frank", f"guess {i}", "127.0.5.1") for i in range(7)]
    unknown = [login(target, "frank-does-not-exist", f"guess {i}", "127.0.5.2") for i in range(7)]
    for (kc, kb, kr), (uc, ub, ur) in zip(known, unknown):
        assert (kc, kb.get("reason"), kb.get("message")) == (uc, ub.get("reason"), ub.get("message"))
        assert bool(kr) == bool(ur)
    assert [c for c, _, _ in known] == [401] * 5 + [429] * 2


def test_known_and_unknown_users_take_as_long(target: APIServer) -> None:
    """Timing: interleaved failed logins of existing users and of names that do not exist; the medians agree
    (a password verification dominates both, about 50 ms; an inline status write would add about 10)."""
    for i in range(4):
        create(target, USERS, user(f"timed-{i}"))
    known: list[float] = []
    unknown: list[float] = []
    for i in range(20):
        for name, out in ((f"timed-{i % 4}", known), (f"untimed-{i}", unknown)):
            # let the previous attempt's background writes finish, so each sample times one request alone
            time.sleep(0.1)
            start = time.perf_counter()
            assert login(target, name, f"wrong {i}", f"127.0.6.{i + 1}")[0] == 401
            out.append(time.perf_counter() - start)
    ratio = statistics.median(known) / statistics.median(unknown)
    assert 0.85 < ratio < 1.15, (statistics.median(known), statistics.median(unknown))


# --- 9. Login records cannot fill etcd --------------------------------------------------------------------

def test_login_bodies_and_records_are_bounded(target: APIServer) -> None:
    huge = "u" * 1_400_000
    code, body, _ = call(target, "POST", "/login", raw=json.dumps({"username": huge, "password": "x"}).encode(),
                         source="127.0.7.1")
    assert code == 413 and body["reason"] == "RequestEntityTooLarge"
    code, body, _ = call(target, "POST", "/login", body={"username": "v" * 300, "password": "x"},
                         source="127.0.7.1")
    assert code == 400 and body["reason"] == "BadRequest"
    code, body, _ = call(target, "POST", "/login", body={"username": "w", "password": "p" * 2000},
                         source="127.0.7.1")
    assert code == 400
    records = call(target, "GET", RECORDS, admin(target))[1]["items"]
    assert all(len(r["spec"]["username"]) <= 253 for r in records)


def test_throttled_attempts_leave_no_record(target: APIServer) -> None:
    source = "127.0.8.1"
    codes = [login(target, f"flood-{i}", "x", source)[0] for i in range(45)]
    assert codes[:40] == [401] * 40 and set(codes[40:]) == {429}, codes
    eventually(lambda: call(target, "GET", RECORDS, admin(target))[1]["items"],
               lambda items: sum(r["spec"]["sourceIP"] == source for r in items) == 40)
    metrics = call(target, "GET", "/metrics", admin(target))[1]
    throttled = [line for line in metrics.splitlines()
                 if line.startswith('kubellm_login_attempts_total{result="throttled"}')]
    assert throttled and float(throttled[0].split()[-1]) >= 5


def test_any_username_leaves_a_record(target: APIServer) -> None:
    for name in ("Alice@Example.COM", "under_score", "---", "ünïcödé", "a" * 253):
        assert login(target, name, "x", "127.0.9.1")[0] == 401
    names = eventually(lambda: {r["spec"]["username"] for r in call(target, "GET", RECORDS, admin(target))[1]["items"]},
                       lambda seen: {"Alice@Example.COM", "under_score", "---", "ünïcödé", "a" * 253} <= seen)
    assert names
