"""Login and tokens end to end: kubellm login → kubectl with a token; bad tokens, lockout, records,
disabled users."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, APIServer, eventually, secret
from test_authentication import request
from test_authorization import admin

USERS = "/apis/iam.kubellm.io/v1alpha1/users"
RECORDS = "/apis/iam.kubellm.io/v1alpha1/loginrecords"


def admin_password(apiserver: APIServer) -> str:
    return dict(line.split(": ", 1) for line in
                (apiserver.state_dir / "admin-credentials").read_text().splitlines())["password"]


def login(apiserver: APIServer, username: str, password: str,
          source: str = "127.0.0.1") -> tuple[int, dict[str, object], str]:
    """POST /login from `source` (a loopback address: failures are throttled per source)."""
    secret(password)
    import http.client

    from test_authentication import context

    host, port = apiserver.url.removeprefix("https://").rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=context(apiserver, None), timeout=15,
                                       source_address=(source, 0))
    conn.request("POST", "/login", body=json.dumps({"username": username, "password": password}),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    retry = resp.getheader("Retry-After") or ""
    conn.close()
    return resp.status, body, retry



def bearer(apiserver: APIServer, path: str, token: str) -> int:
    return request(apiserver, "GET", path, None, {"Authorization": f"Bearer {token}"})[0]


def make_user(apiserver: APIServer, name: str, password: str, groups: list[str] | None = None) -> None:
    secret(password)
    body = {"apiVersion": "iam.kubellm.io/v1alpha1", "kind": "User", "metadata": {"name": name},
            "spec": {"email": f"{name}@example.com", "password": password, "groups": groups or []}}
    code, out = request(apiserver, "POST", USERS, admin(apiserver), body=body)
    assert code == 201, out


def test_kubellm_login_then_kubectl(apiserver: APIServer, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "token.kubeconfig"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cmd" / "kubellm"), "login", "--server", apiserver.url, "--username", "admin",
         "--password-stdin", "--certificate-authority", str(apiserver.state_dir / "pki" / "serving-ca.crt"),
         "--kubeconfig", str(kubeconfig)],
        input=admin_password(apiserver) + "\n", capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Logged in as admin" in proc.stdout
    env = {"KUBECONFIG": str(kubeconfig)}
    who = json.loads(apiserver.kubectl("auth", "whoami", "-o", "json", env=env).stdout)
    assert who["status"]["userInfo"]["username"] == "admin"
    assert "system:masters" in who["status"]["userInfo"]["groups"]
    assert apiserver.kubectl("get", "llmservices", "-A", env=env).returncode == 0
    assert kubeconfig.stat().st_mode & 0o077 == 0


def test_bad_tokens_are_refused(apiserver: APIServer) -> None:
    code, body, _ = login(apiserver, "admin", admin_password(apiserver))
    assert code == 200
    token = str(body["status"]["token"])  # type: ignore[index]
    assert bearer(apiserver, "/apis", token) == 200
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    forged = ".".join([header, base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="),
                       signature])
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    for bad in (forged, f"{none_header}.{payload}.", token[:-4] + "AAAA", "garbage", ""):
        assert bearer(apiserver, "/apis", bad) == 401, bad


def test_wrong_passwords_lock_the_user_out(apiserver: APIServer) -> None:
    make_user(apiserver, "locky", "a long and good password")
    for _ in range(5):
        code, body, _ = login(apiserver, "locky", "wrong password!!")
        assert code == 401 and body["reason"] == "Unauthorized"
    code, body, retry = login(apiserver, "locky", "a long and good password")
    assert code == 429 and body["reason"] == "TooManyRequests" and int(retry) > 0
    # the count and the records are written just after the answers
    status = eventually(lambda: request(apiserver, "GET", f"{USERS}/locky", admin(apiserver))[1].get("status"),
                        lambda st: st and st["state"] == "LockedOut" and st["failedLoginCount"] == 5)
    assert status["lockedUntil"]

    def reasons() -> list[str]:
        listed = request(apiserver, "GET", RECORDS + "?fieldSelector=spec.username%3Dlocky", admin(apiserver))[1]
        return [r["spec"]["reason"] for r in listed["items"]]

    eventually(reasons, lambda rs: rs.count("BadCredentials") == 5 and "LockedOut" in rs)
    # unknown users fail the same way, and are recorded
    code, body, _ = login(apiserver, "nobody-at-all", "whatever password")
    assert code == 401 and body["message"] == "invalid username or password"


def test_disabled_users_tokens_stop_at_once(apiserver: APIServer) -> None:
    make_user(apiserver, "dora", "another long good password", ["system:masters"])
    code, body, _ = login(apiserver, "dora", "another long good password")
    token = str(body["status"]["token"])  # type: ignore[index]
    assert bearer(apiserver, "/apis/model.kubellm.io/v1alpha1/llmservices", token) == 200
    patch = {"spec": {"state": "Disabled"}}
    code, _ = request(apiserver, "PATCH", f"{USERS}/dora", admin(apiserver),
                      {"Content-Type": "application/merge-patch+json"}, patch)
    assert code == 200
    deadline = time.monotonic() + 5
    while bearer(apiserver, "/apis", token) != 401 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bearer(apiserver, "/apis", token) == 401
    assert login(apiserver, "dora", "another long good password")[0] == 401


def test_logout_revokes_the_token(apiserver: APIServer) -> None:
    code, body, _ = login(apiserver, "admin", admin_password(apiserver))
    token = str(body["status"]["token"])  # type: ignore[index]
    assert bearer(apiserver, "/apis", token) == 200
    code, _ = request(apiserver, "POST", "/logout", None, {"Authorization": f"Bearer {token}"})
    assert code == 200
    assert bearer(apiserver, "/apis", token) == 401
    assert request(apiserver, "POST", "/logout", None, {"Authorization": f"Bearer {token}"})[0] == 401


def test_failed_logins_are_throttled_per_source(apiserver: APIServer) -> None:
    """Afterwards this test's address is throttled for a minute."""
    source = "127.0.31.1"  # its own address: other tests keep logging in from 127.0.0.1
    attempts = [login(apiserver, f"ghost-{i}", "not the password", source) for i in range(25)]
    codes = [code for code, _, _ in attempts]
    assert 429 in codes and codes.index(429) <= 20, codes
    code, body, retry = attempts[-1]
    assert code == 429 and body["reason"] == "TooManyRequests" and 0 < int(retry) <= 61
    # even the right password waits
    assert login(apiserver, "admin", admin_password(apiserver), source)[0] == 429
