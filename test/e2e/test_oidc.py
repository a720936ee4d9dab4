"""OIDC ID tokens end to end: a real HTTPS OpenID provider (discovery + JWKS) on loopback, and a
kubellm-apiserver configured with --oidc-* flags that accepts its tokens and refuses forged ones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import APIServer, running_apiserver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from loopback_https import LoopbackHTTPS
from test_authentication import request

from kubellm.server.certs import ensure_pki


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Provider(LoopbackHTTPS):
    """An OpenID provider: discovery document and JWKS over HTTPS, and the tokens it signs."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(ensure_pki(tmp / "idp-pki", ["127.0.0.1"]),
                         {"/.well-known/openid-configuration": self.discovery, "/keys": self.keys})
        self.issuer = self.url
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = jwk.construct(pem(self.key), "RS256").public_key().to_dict()
        self.jwks = {"keys": [{**public, "kid": "idp-1", "use": "sig", "alg": "RS256"}]}

    async def discovery(self, _: web.Request) -> web.Response:
        return web.json_response({"issuer": self.issuer, "jwks_uri": f"{self.issuer}/keys"})

    async def keys(self, _: web.Request) -> web.Response:
        return web.json_response(self.jwks)

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": "kubellm", "sub": "u-123", "email": "carol@example.com",
                "groups": ["ml-team"], "iat": now, "exp": now + 600, **claims}
        return str(jwt.encode(body, pem(self.key).decode(), algorithm="RS256", headers={"kid": "idp-1"}))


@pytest.fixture(scope="module")
def idp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Provider, APIServer]]:
    tmp = tmp_path_factory.mktemp("oidc")
    idp = Provider(tmp)
    idp.start()
    state = tmp / "state"
    state.mkdir()
    try:
        with running_apiserver(state, "--oidc-issuer-url", idp.issuer, "--oidc-client-id", "kubellm",
                               "--oidc-username-claim", "email", "--oidc-groups-claim", "groups",
                               "--oidc-groups-prefix", "oidc:", "--oidc-ca-file", str(idp.pki.serving_ca)) as server:
            yield idp, server
    finally:
        idp.stop()


def whoami(server: APIServer, token: str) -> tuple[int, Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    return request(server, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", None,
                   {"Authorization": f"Bearer {token}"}, body)


def test_oidc_tokens(idp_server: tuple[Provider, APIServer]) -> None:
    idp, server = idp_server
    deadline = time.monotonic() + 10
    code, review = whoami(server, idp.token())
    while code != 201 and time.monotonic() < deadline:  # the keys are fetched in the background at start
        time.sleep(0.1)
        code, review = whoami(server, idp.token())
    assert code == 201, review
    assert review["status"]["userInfo"]["username"] == "carol@example.com"
    assert review["status"]["userInfo"]["groups"] == ["oidc:ml-team", "system:authenticated"]
    # RBAC applies: no binding, no access
    assert request(server, "GET", "/apis/model.kubellm.io/v1alpha1/llmservices", None,
                   {"Authorization": f"Bearer {idp.token()}"})[0] == 403
    # refused: wrong audience, expired, another key, alg none, email not verified
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = str(jwt.encode({"iss": idp.issuer, "aud": "kubellm", "email": "carol@example.com",
                             "exp": int(time.time()) + 600}, pem(other).decode(), algorithm="RS256",
                            headers={"kid": "idp-1"}))
    for bad in (idp.token(aud="someone-else"), idp.token(exp=int(time.time()) - 3600), forged,
                idp.token(email_verified=False), idp.token()[:-6] + "AAAAAA"):
        assert whoami(server, bad)[0] == 401
    # a token of an unknown issuer is refused, not treated as anonymous
    assert whoami(server, idp.token(iss="https://elsewhere.example"))[0] == 401
