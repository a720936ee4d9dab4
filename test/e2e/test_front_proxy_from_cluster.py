"""Front-proxy settings read from the host cluster: a server with --authentication-kubeconfig and no
--requestheader-* flags takes the aggregator's CA, allowed names and header names from
`kube-system/extension-apiserver-authentication`, as kube's delegated authentication does.

kube-apiserver cannot run here, so the host is a small HTTPS server publishing that one ConfigMap the
way kube-apiserver does (read with the official Python client by the server under test)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from conftest import APIServer, running_apiserver
from test_authentication import request

from kubellm.registry.storage.etcd.embedded import free_port
from kubellm.server.certs import Pair, ensure_ca, ensure_pki, issue_client_certificate


class Host:
    def __init__(self, tmp: Path, proxy_ca: Pair) -> None:
        self.pki = ensure_pki(tmp / "host-pki", ["127.0.0.1"])
        self.port = free_port()
        self.configmap = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
            "data": {"requestheader-client-ca-file": proxy_ca.cert.read_text(),
                     "requestheader-allowed-names": json.dumps(["aggregator"]),
                     "requestheader-username-headers": json.dumps(["X-Proxy-User"]),
                     "requestheader-group-headers": json.dumps(["X-Proxy-Group"]),
                     "requestheader-extra-headers-prefix": json.dumps(["X-Proxy-Extra-"])}}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    def kubeconfig(self, path: Path) -> Path:
        ca = base64.b64encode(self.pki.serving_ca.read_bytes()).decode()
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "host",
            "clusters": [{"name": "host", "cluster": {"server": f"https://127.0.0.1:{self.port}",
                                                      "certificate-authority-data": ca}}],
            "users": [{"name": "host", "user": {"token": "host-token"}}],
            "contexts": [{"name": "host", "context": {"cluster": "host", "user": "host"}}]}))
        return path

    def start(self) -> None:
        import ssl

        async def configmap(_: web.Request) -> web.Response:
            return web.json_response(self.configmap)

        app = web.Application()
        app.router.add_get("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication", configmap)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.pki.serving.cert), str(self.pki.serving.key))

        async def serve() -> None:
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=ctx).start()
            self.ready.set()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(serve())
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        assert self.ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


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
