"""A kind added with status and scale: its types, its validation, one strategy and one registration line, and
nothing in the server: routes, verbs, discovery and OpenAPI all come from what its REST objects can do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import Field

from kubellm.apis.base import APIModel
from kubellm.apis.meta.v1.types import ObjectMeta, TypedModel
from kubellm.apis.scheme import ResourceInfo, ScaleSpec
from kubellm.apis.validation import field
from kubellm.apis.validation.field import ErrorList
from kubellm.registry.registry import build_resources
from kubellm.registry.storage.etcd import EtcdStorage
from kubellm.registry.strategy import Strategy
from kubellm.server.app import APIServerApp
from kubellm.server.authentication import Authentication
from kubellm.server.authorization import Authorization
from kubellm.server.health import Health
from kubellm.service.authn import Chain, Credentials
from kubellm.service.identity import UserInfo
from kubellm.service.rbac import Authorizer, StaticRuleSource

# --- the new kind: types, validation, strategy -------------------------------------------------------------

GROUP = "test.kubellm.io"  # a types module names its group and version (the OpenAPI definitions' prefix)
VERSION = "v1"


class WidgetSpec(APIModel):
    """What a widget should be."""

    size: str = Field(default="", description="Size of the widget.")
    count: int = Field(default=1, description="How many widgets to run.")


class WidgetStatus(APIModel):
    """What a widget is."""

    running: int = Field(default=0, description="Widgets running.")
    selector: str = Field(default="", description="Label selector of the widgets' pods.")


class Widget(TypedModel):
    """Widget is a test kind with status and scale subresources."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard object metadata.")
    spec: WidgetSpec = Field(default_factory=WidgetSpec, description="Desired state.")
    status: WidgetStatus | None = Field(default=None, description="Observed state.")


def validate_widget(obj: Widget) -> ErrorList:
    return [field.required("spec.size")] if not obj.spec.size else []


def validate_widget_update(new: Widget, old: Widget) -> ErrorList:
    return validate_widget(new)


WIDGETS = ResourceInfo(group=GROUP, version=VERSION, kind="Widget", plural="widgets", singular="widget",
                       namespaced=True, model=Widget, validate=validate_widget,
                       validate_update=validate_widget_update,
                       scale=ScaleSpec(spec_replicas="spec.count", status_replicas="status.running",
                                       label_selector="status.selector"))


class WidgetStrategy(Strategy):
    printer_columns = (("Size", "string", ".spec.size"),)


# --- serving it, in process, over real etcd --------------------------------------------------------------------


class Tester:
    """Authenticates every request as a member of system:masters (the test speaks plain HTTP in process)."""

    def authenticate(self, creds: Credentials) -> UserInfo | None:
        return UserInfo("tester", ("system:masters",))


@pytest.fixture
async def client(etcd_storage: EtcdStorage) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    resources = build_resources(etcd_storage, infos=(WIDGETS,),
                                strategies={"Widget": lambda info, _: WidgetStrategy(info)})  # registration
    app = APIServerApp(resources, Health([]), {"gitVersion": "v0"}, "127.0.0.1:0",
                       Authentication(Chain((Tester(),))), Authorization(Authorizer(StaticRuleSource()))).build()
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield session, str(server.make_url(""))
    finally:
        await server.close()


async def call(c: tuple[aiohttp.ClientSession, str], method: str, path: str, body: Any = None,
               content_type: str = "application/json") -> tuple[int, Any]:
    session, base = c
    async with session.request(method, base.rstrip("/") + path, json=body,
                               headers={"Content-Type": content_type} if body is not None else {}) as resp:
        return resp.status, await resp.json()


NS = "/apis/test.kubellm.io/v1/namespaces/demo/widgets"


async def test_discovery_routes_and_openapi_come_from_the_kind(client: tuple[aiohttp.ClientSession, str]) -> None:
    code, listing = await call(client, "GET", "/apis/test.kubellm.io/v1")
    assert code == 200
    by_name = {r["name"]: r for r in listing["resources"]}
    assert set(by_name) == {"widgets", "widgets/status", "widgets/scale"}
    assert by_name["widgets"]["verbs"] == ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                                           "watch"]
    assert by_name["widgets/status"]["verbs"] == ["get", "patch", "update"]
    assert (by_name["widgets/scale"]["group"], by_name["widgets/scale"]["kind"]) == ("autoscaling", "Scale")

    code, doc = await call(client, "GET", "/openapi/v3/apis/test.kubellm.io/v1")
    assert code == 200
    paths = doc["paths"]
    assert set(paths[f"{NS.replace('/demo/', '/{namespace}/')}/{{name}}/scale"]) >= {"get", "put", "patch"}
    assert "io.kubellm.test.v1.Widget" in doc["components"]["schemas"]


async def test_status_and_scale_work(client: tuple[aiohttp.ClientSession, str]) -> None:
    code, body = await call(client, "POST", NS, {"metadata": {"name": "w"}, "spec": {"count": 2}})
    assert code == 422 and body["details"]["causes"][0]["field"] == "spec.size"
    code, created = await call(client, "POST", NS, {"metadata": {"name": "w"}, "spec": {"size": "xl", "count": 2}})
    assert code == 201, created
    code, status = await call(client, "PATCH", f"{NS}/w/status", {"status": {"running": 2, "selector": "app=w"}},
                              "application/merge-patch+json")
    assert code == 200 and status["status"] == {"running": 2, "selector": "app=w"}
    code, scale = await call(client, "GET", f"{NS}/w/scale")
    assert code == 200 and scale["spec"] == {"replicas": 2} and scale["status"] == {"replicas": 2,
                                                                                    "selector": "app=w"}
    code, scaled = await call(client, "PUT", f"{NS}/w/scale", {**scale, "spec": {"replicas": 5}})
    assert code == 200 and scaled["spec"]["replicas"] == 5
    code, got = await call(client, "GET", f"{NS}/w")
    assert got["spec"] == {"size": "xl", "count": 5} and got["metadata"]["generation"] == 2
    # what the scale subresource does not do is 405 or 415, as the served verbs say
    assert (await call(client, "DELETE", f"{NS}/w/scale"))[0] == 405
    assert (await call(client, "PATCH", f"{NS}/w/scale", {"spec": {"replicas": 1}},
                       "application/apply-patch+yaml"))[0] == 415
