"""Authentication against the running server: client certificates, front-proxy headers, anonymous 401."""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from conftest import APIServer

from kubellm.server.certs import Pair, ensure_ca, issue_client_certificate

LLMS = "/apis/model.kubellm.io/v1alpha1/namespaces/default/llmservices"
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def context(apiserver: APIServer, cert: Pair | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(apiserver.state_dir / "pki" / "serving-ca.crt"))
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
    return ctx


def request(apiserver: APIServer, method: str, path: str, cert: Pair | None, headers: dict[str, str] | None = None,
            body: Any = None) -> tuple[int, dict[str, Any] | str]:
    host, port = apiserver.url.removeprefix("https://").rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=context(apiserver, cert), timeout=15)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read().decode()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw
    finally:
        conn.close()


def whoami(apiserver: APIServer, cert: Pair | None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    return request(apiserver, "POST", WHOAMI, cert, headers, body)


def client_cert(apiserver: APIServer, tmp: Path, user: str, groups: tuple[str, ...] = ()) -> Pair:
    pki = apiserver.state_dir / "pki"
    out = Pair(tmp / f"{user}.crt", tmp / f"{user}.key")
    issue_client_certificate(Pair(pki / "client-ca.crt", pki / "client-ca.key"), out, user, groups)
    return out


def front_proxy_cert(apiserver: APIServer, tmp: Path, cn: str) -> Pair:
    out = Pair(tmp / f"fp-{cn}.crt", tmp / f"fp-{cn}.key")
    ca = Pair(apiserver.state_dir / "front-proxy-ca.crt", apiserver.state_dir / "front-proxy-ca.key")
    issue_client_certificate(ca, out, cn)
    return out


def test_anonymous_requests_get_401_except_health_and_version(apiserver: APIServer) -> None:
    for path in ("/healthz", "/livez", "/readyz", "/readyz/etcd", "/version"):
        assert request(apiserver, "GET", path, None)[0] == 200, path
    for method, path in (("GET", LLMS), ("GET", "/apis"), ("GET", "/openapi/v2"), ("GET", "/metrics"),
                         ("POST", LLMS), ("GET", "/api")):
        code, body = request(apiserver, method, path, None)
        assert code == 401, (method, path, body)
        assert isinstance(body, dict)
        assert (body["kind"], body["reason"], body["message"]) == ("Status", "Unauthorized", "Unauthorized")


def test_client_certificate_identity(apiserver: APIServer, tmp_path: Path) -> None:
    code, review = whoami(apiserver, Pair(apiserver.state_dir / "pki" / "admin.crt",
                                          apiserver.state_dir / "pki" / "admin.key"))
    assert code == 201
    assert review["status"]["userInfo"] == {"username": "kubellm-admin",
                                            "groups": ["system:masters", "system:authenticated"]}
    alice = client_cert(apiserver, tmp_path, "alice", ("dev", "ops"))
    code, review = whoami(apiserver, alice)
    assert review["status"]["userInfo"] == {"username": "alice", "groups": ["dev", "ops", "system:authenticated"]}
    out = apiserver.kubectl("auth", "whoami", "-o", "json")
    assert json.loads(out.stdout)["status"]["userInfo"]["username"] == "kubellm-admin"


def test_untrusted_certificate_is_refused(apiserver: APIServer, tmp_path: Path) -> None:
    rogue_ca = Pair(tmp_path / "rogue-ca.crt", tmp_path / "rogue-ca.key")
    ensure_ca("rogue", rogue_ca)
    rogue = Pair(tmp_path / "rogue.crt", tmp_path / "rogue.key")
    issue_client_certificate(rogue_ca, rogue, "kubellm-admin", ("system:masters",))
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        whoami(apiserver, rogue)


def test_front_proxy_headers(apiserver: APIServer, tmp_path: Path) -> None:
    proxy = front_proxy_cert(apiserver, tmp_path, "front-proxy-client")
    headers = {"X-Remote-User": "bob", "X-Remote-Group": "team-a", "X-Remote-Extra-Scopes": "read"}
    code, review = whoami(apiserver, proxy, headers)
    assert code == 201
    assert review["status"]["userInfo"] == {"username": "bob", "groups": ["team-a", "system:authenticated"],
                                            "extra": {"scopes": ["read"]}}
    # a certificate from the front-proxy CA with a name that is not allowed: refused
    other = front_proxy_cert(apiserver, tmp_path, "someone-else")
    assert whoami(apiserver, other, headers)[0] == 401
    # the aggregator sends no X-Remote-Group when it fetches OpenAPI as system:aggregator
    code, review = whoami(apiserver, proxy, {"X-Remote-User": "system:aggregator"})
    assert code == 201
    assert review["status"]["userInfo"]["groups"] == ["system:authenticated"]
    # the proxy certificate without headers is nobody
    assert whoami(apiserver, proxy)[0] == 401
    # headers from an ordinary client certificate are not trusted: the certificate's own identity counts
    alice = client_cert(apiserver, tmp_path, "alice")
    code, review = whoami(apiserver, alice, headers)
    assert review["status"]["userInfo"]["username"] == "alice"
