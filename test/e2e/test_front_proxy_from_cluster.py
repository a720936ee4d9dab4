"""Front-proxy settings read from the host cluster: a server with --authentication-kubeconfig and no
--requestheader-* flags takes the aggregator's CA, allowed names and header names from
`kube-system/extension-apiserver-authentication`, as kube's delegated authentication does.

kube-apiserver cannot run here, so the host is a small HTTPS server publishing that one ConfigMap the
way kube-apiserver does (read with the official Python client by the server under test)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from conftest import APIServer, running_apiserver
from loopback_https import LoopbackHTTPS
from test_authentication import request

from kubellm.server.certs import Pair, ensure_ca, ensure_pki, issue_client_certificate


class Host(LoopbackHTTPS):
    """A host cluster's API as far as this needs it: the published authentication ConfigMap."""

    def __init__(self, tmp: Path, proxy_ca: Pair) -> None:
        super().__init__(ensure_pki(tmp / "host-pki", ["127.0.0.1"]),
                         {"/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication":
                          self.configmap})
        self.data = {"requestheader-client-ca-file": proxy_ca.cert.read_text(),
                     "requestheader-allowed-names": json.dumps(["aggregator"]),
                     "requestheader-username-headers": json.dumps(["X-Proxy-User"]),
                     "requestheader-group-headers": json.dumps(["X-Proxy-Group"]),
                     "requestheader-extra-headers-prefix": json.dumps(["X-Proxy-Extra-"])}

    async def configmap(self, _: web.Request) -> web.Response:
        return web.json_response({"apiVersion": "v1", "kind": "ConfigMap", "data": self.data, "metadata": {
            "name": "extension-apiserver-authentication", "namespace": "kube-system"}})

    def kubeconfig(self, path: Path) -> Path:
        ca = base64.b64encode(self.pki.serving_ca.read_bytes()).decode()
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "host",
            "clusters": [{"name": "host", "cluster": {"server": self.url, "certificate-authority-data": ca}}],
            "users": [{"name": "host", "user": {"token": "host-token"}}],
            "contexts": [{"name": "host", "context": {"cluster": "host", "user": "host"}}]}))
        return path


@pytest.fixture(scope="module")
def extension(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[APIServer, Pair, Path]]:
    tmp = tmp_path_factory.mktemp("front-proxy")
    proxy_ca = Pair(tmp / "proxy-ca.crt", tmp / "proxy-ca.key")
    ensure_ca("aggregator-ca", proxy_ca)
    host = Host(tmp, proxy_ca)
    host.start()
    state = tmp / "state"
    state.mkdir()
    try:
        with running_apiserver(state, "--authentication-kubeconfig", str(host.kubeconfig(tmp / "host.kubeconfig"))
                               ) as server:
            yield server, proxy_ca, tmp
    finally:
        host.stop()


def test_front_proxy_settings_come_from_the_host(extension: tuple[APIServer, Pair, Path]) -> None:
    server, proxy_ca, tmp = extension
    aggregator = Pair(tmp / "aggregator.crt", tmp / "aggregator.key")
    issue_client_certificate(proxy_ca, aggregator, "aggregator")
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    path = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    headers = {"X-Proxy-User": "grace", "X-Proxy-Group": "ops", "X-Proxy-Extra-Scopes": "all"}
    code, review = request(server, "POST", path, aggregator, headers, body)
    assert code == 201, review
    assert review["status"]["userInfo"] == {"username": "grace", "groups": ["ops", "system:authenticated"],
                                            "extra": {"scopes": ["all"]}}
    # the host's header names, not the defaults; and only the allowed name
    assert request(server, "POST", path, aggregator, {"X-Remote-User": "grace"}, body)[0] == 401
    other = Pair(tmp / "other.crt", tmp / "other.key")
    issue_client_certificate(proxy_ca, other, "not-the-aggregator")
    assert request(server, "POST", path, other, headers, body)[0] == 401
