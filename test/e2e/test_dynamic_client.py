"""The dynamic client: every KubeLLM resource through discovery, as dicts (asyncio and blocking), and a real
kube-apiserver's Deployments, Services and HorizontalPodAutoscalers with server-side apply, as the
controllers will use it against member clusters."""

from __future__ import annotations

import asyncio
import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import APIServer
from examples import KINDS
from hostcluster import ControlPlane
from test_clientset import CHANGES, SPECS, STATUSES

from kubellm.client import (
    AlreadyExists,
    AsyncDynamicClient,
    AsyncDynamicInformerFactory,
    Config,
    Conflict,
    DynamicClient,
    EventHandlerFuncs,
    Invalid,
    NotFound,
    ResourceNotFound,
)
from kubellm.client.dynamic import AsyncDynamicResource

KUBELLM_GROUPS = ("iam.kubellm.io", "cluster.kubellm.io", "model.kubellm.io")


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        out[key] = merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


@pytest.fixture(scope="module")
def config(apiserver: APIServer) -> Config:
    return Config.from_kubeconfig(apiserver.kubeconfig)


async def exercise(res: AsyncDynamicResource, namespace: str) -> None:
    """Every verb on one KubeLLM resource with dicts."""
    info = res.info
    run = uuid.uuid4().hex[:6]
    name = f"d-{run}"
    meta: dict[str, Any] = {"name": name, "labels": {"run": run}}
    if info.namespaced:
        meta["namespace"] = namespace
    obj = {"apiVersion": info.api_version, "kind": info.kind, "metadata": meta, **copy.deepcopy(SPECS[info.kind])}
    created = await res.create(obj)
    assert created["metadata"]["uid"] and created["kind"] == info.kind
    with pytest.raises(AlreadyExists):
        await res.create(obj)
    got = await res.get(name)
    watch = asyncio.ensure_future(_first_modified(res, got["metadata"]["resourceVersion"], name))
    updated = await res.update(merged(got, CHANGES[info.kind]))
    assert int(updated["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])
    with pytest.raises(Conflict):
        await res.update(merged(got, CHANGES[info.kind]))
    assert (await res.patch(name, {"metadata": {"annotations": {"a": "1"}}}))["metadata"]["annotations"] == {"a": "1"}
    patched = await res.patch(name, [{"op": "add", "path": "/metadata/annotations/b", "value": "2"}])
    assert patched["metadata"]["annotations"] == {"a": "1", "b": "2"}
    applied = await res.apply({"apiVersion": info.api_version, "kind": info.kind,
                               "metadata": {k: v for k, v in meta.items() if k != "labels"} | {"labels": {"x": "y"}}},
                              field_manager="dynamic-test", force=True)
    assert applied["metadata"]["labels"]["x"] == "y"
    assert (await asyncio.wait_for(watch, 20))["metadata"]["name"] == name
    if "status" in info.subresources:
        current = await res.get(name)
        with_status = await res.update({**current, "status": STATUSES[info.kind]}, subresource="status")
        assert with_status["status"]
        assert (await res.get(name, subresource="status"))["metadata"]["name"] == name
    if "scale" in info.subresources:
        scale = await res.get(name, subresource="scale")
        assert scale["kind"] == "Scale" and info.subresources["scale"].group == "autoscaling"
        scale["spec"]["replicas"] = 4
        assert (await res.update(scale, subresource="scale"))["spec"]["replicas"] == 4
    page = await res.list(label_selector={"run": run}, limit=1)
    assert [o["metadata"]["name"] for o in page.items] == [name] and page.resource_version
    assert [o["metadata"]["name"] async for o in res.iter(label_selector=f"run={run}")] == [name]
    deleted = await res.delete_collection(label_selector={"run": run})
    assert [o["metadata"]["name"] for o in deleted] == [name]
    with pytest.raises(NotFound):
        await res.delete(name)


async def _first_modified(res: AsyncDynamicResource, rv: str, name: str) -> dict[str, Any]:
    async for ev in res.watch(resource_version=rv):
        if ev.type == "MODIFIED" and ev.object["metadata"]["name"] == name:
            return ev.object
    raise AssertionError("the watch ended")


async def test_every_kubellm_resource_through_discovery(config: Config) -> None:
    async with AsyncDynamicClient(config) as dyn:
        resources = [r for r in await dyn.discovery.resources() if r.group in KUBELLM_GROUPS]
        assert dyn.discovery.aggregated is True
        assert {r.kind for r in resources} == {k for k in SPECS if not KINDS[k].host_kind}
        for info in resources:
            res = await dyn.resource(api_version=info.api_version, kind=info.kind)
            assert res.info == info
            await exercise(res.with_namespace("dyn") if info.namespaced else res, "dyn")
        by_short = await dyn.resource(resource="llms")
        assert by_short.info.kind == "LLMService"
        with pytest.raises(ResourceNotFound):
            await dyn.resource(api_version="model.kubellm.io/v1alpha1", kind="Nope")


def test_blocking_dynamic_client(config: Config) -> None:
    with DynamicClient(config) as dyn:
        llms = dyn.resource(api_version="model.kubellm.io/v1alpha1", kind="LLMService", namespace="dyn-sync")
        obj = {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService", "metadata": {"name": "s"},
               "spec": {"model": "Qwen/Qwen2.5-3B-Instruct"}}
        created = llms.create(obj)
        try:
            assert llms.get("s")["metadata"]["uid"] == created["metadata"]["uid"]
            assert llms.patch("s", {"spec": {"replicas": 2}})["spec"]["replicas"] == 2
            applied = llms.apply({**obj, "spec": {**obj["spec"], "replicas": 3}}, field_manager="sync", force=True)
            assert applied["spec"]["replicas"] == 3
            assert llms.update({**applied, "metadata": {**applied["metadata"], "labels": {"l": "1"}}})["metadata"][
                "labels"] == {"l": "1"}
            assert [o["metadata"]["name"] for o in llms.list().items] == ["s"]
            assert [o["metadata"]["name"] for o in llms.iter()] == ["s"]
            with pytest.raises(Invalid):
                llms.create({**obj, "metadata": {"name": "t"}, "spec": {"model": ""}})
            events = []
            for ev in llms.watch():
                events.append((ev.type, ev.object["metadata"]["name"]))
                break
            assert events == [("ADDED", "s")]
            assert any(r.kind == "RAGService" for r in dyn.resources())
        finally:
            llms.delete("s")
        assert llms.delete_collection() == []


# --- a real kube-apiserver ----------------------------------------------------------------------------------------


def deployment(name: str, replicas: int, image: str = "vllm/vllm-openai:v0.6.5") -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "vllm", "image": image,
                                                           "ports": [{"containerPort": 8000}]}]}}}}


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 8000, "targetPort": 8000}]}}


def hpa(name: str, max_replicas: int) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": 1, "maxReplicas": max_replicas,
                     "metrics": [{"type": "Pods", "pods": {"metric": {"name": "vllm:num_requests_waiting"},
                                                           "target": {"type": "AverageValue",
                                                                      "averageValue": "5"}}}]}}


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with ControlPlane(Path(tmp_path_factory.mktemp("member")), "member") as cp:
        yield cp


async def test_server_side_apply_on_a_real_kube_apiserver(member: ControlPlane) -> None:
    config = Config.from_kubeconfig(member.kubeconfig)
    async with AsyncDynamicClient(config) as dyn:
        assert (await dyn.discovery.resources())  # kube 1.36 serves aggregated discovery
        assert dyn.discovery.aggregated is True
        deployments = await dyn.resource(api_version="apps/v1", kind="Deployment", namespace="default")
        services = await dyn.resource(api_version="v1", kind="Service", namespace="default")
        hpas = await dyn.resource(api_version="autoscaling/v2", kind="HorizontalPodAutoscaler", namespace="default")
        assert deployments.info.subresources["scale"].kind == "Scale" and "status" in hpas.info.subresources
        assert (await dyn.resource(resource="deploy")).info.plural == "deployments"

        # a dynamic informer on the member's Deployments, as a controller would run
        factory = AsyncDynamicInformerFactory(dyn.transport, namespace="default")
        seen: list[tuple[str, str]] = []
        informer = factory.for_resource(deployments.ref).informer()
        informer.add_event_handler(EventHandlerFuncs(
            add=lambda o: seen.append(("add", o["metadata"]["name"])),
            update=lambda old, new: seen.append(("update", new["metadata"]["name"])),
            delete=lambda o: seen.append(("delete", o["metadata"]["name"]))))
        factory.start()
        assert all((await factory.wait_for_cache_sync(10)).values())

        d = await deployments.apply(deployment("qwen", 2), field_manager="kubellm", force=True)
        s = await services.apply(service("qwen"), field_manager="kubellm", force=True)
        h = await hpas.apply(hpa("qwen", 4), field_manager="kubellm", force=True)
        assert d["spec"]["replicas"] == 2 and s["spec"]["clusterIP"] and h["spec"]["maxReplicas"] == 4
        for obj in (d, s, h):
            assert [m["manager"] for m in obj["metadata"]["managedFields"]] == ["kubellm"]
            assert obj["metadata"]["managedFields"][0]["operation"] == "Apply"

        # applying again is idempotent; a change is applied; another manager conflicts unless it forces
        again = await deployments.apply(deployment("qwen", 2), field_manager="kubellm")
        assert again["metadata"]["resourceVersion"] == d["metadata"]["resourceVersion"]
        changed = await deployments.apply(deployment("qwen", 3, image="vllm/vllm-openai:v0.7.0"),
                                          field_manager="kubellm")
        assert changed["spec"]["replicas"] == 3
        replicas_only = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "qwen"},
                         "spec": {"replicas": 5}}
        with pytest.raises(Conflict) as conflict:
            await deployments.apply(replicas_only, field_manager="someone-else")
        assert any(c.reason == "FieldManagerConflict" and c.field == ".spec.replicas" for c in conflict.value.causes)
        forced = await deployments.apply(replicas_only, field_manager="someone-else", force=True)
        assert forced["spec"]["replicas"] == 5
        h2 = await hpas.apply(hpa("qwen", 8), field_manager="kubellm")
        assert h2["spec"]["maxReplicas"] == 8
        dry = await services.apply({**service("qwen"), "metadata": {"name": "qwen", "labels": {"d": "r"}}},
                                   field_manager="kubellm", dry_run=True)
        assert dry["metadata"]["labels"] == {"d": "r"} and "labels" not in (await services.get("qwen"))["metadata"]

        # the other verbs on kube: get, list, strategic merge patch, JSON patch, scale, status, update, watch
        assert (await deployments.get("qwen"))["spec"]["template"]["spec"]["containers"][0]["image"].endswith("v0.7.0")
        smp = await deployments.patch("qwen", {"spec": {"template": {"spec": {"containers": [
            {"name": "vllm", "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}]}]}}}}, patch_type="strategic")
        container = smp["spec"]["template"]["spec"]["containers"][0]
        assert container["image"].endswith("v0.7.0") and container["env"][0]["value"] == "INFO"
        jp = await services.patch("qwen", [{"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}])
        assert jp["metadata"]["annotations"] == {"k": "v"}
        scale = await deployments.get("qwen", subresource="scale")
        assert scale["apiVersion"] == "autoscaling/v1" and scale["spec"]["replicas"] == 5
        scale["spec"]["replicas"] = 1
        assert (await deployments.update(scale, subresource="scale"))["spec"]["replicas"] == 1
        status = await hpas.get("qwen", subresource="status")
        assert status["kind"] == "HorizontalPodAutoscaler"
        current = await services.get("qwen")
        current["metadata"].setdefault("labels", {})["tier"] = "gpu"
        assert (await services.update(current))["metadata"]["labels"]["tier"] == "gpu"
        with pytest.raises(Invalid):
            await services.create({**service("bad"), "spec": {"ports": [{"port": 0}]}})
        listed = await deployments.list()
        assert [o["metadata"]["name"] for o in listed.items] == ["qwen"]
        events = []
        async for ev in deployments.watch():
            events.append(ev)
            break
        assert events[0].type == "ADDED" and events[0].object["metadata"]["name"] == "qwen"
        await asyncio.sleep(0.2)
        assert ("add", "qwen") in seen and ("update", "qwen") in seen
        assert informer.indexer.get_by_key("default/qwen") is not None

        # deletes: propagation policy, then collections by label
        await hpas.delete("qwen")
        await services.delete("qwen", propagation_policy="Background")
        # no garbage collector runs here: a foreground delete waits on its finalizer, which shows the policy arrived
        pending = await deployments.delete("qwen", propagation_policy="Foreground")
        assert pending is not None and pending["metadata"]["finalizers"] == ["foregroundDeletion"]
        assert pending["metadata"]["deletionTimestamp"]
        await deployments.patch("qwen", {"metadata": {"finalizers": None}})
        for i in range(2):
            await deployments.apply({**deployment(f"batch-{i}", 1), "metadata": {
                "name": f"batch-{i}", "labels": {"batch": "yes", "app": f"batch-{i}"}}}, field_manager="kubellm")
        await deployments.delete_collection(label_selector={"batch": "yes"})
        for _ in range(50):
            remaining = {o["metadata"]["name"] for o in (await deployments.list()).items}
            if not remaining:
                break
            await asyncio.sleep(0.1)
        assert remaining == set()
        with pytest.raises(NotFound):
            await hpas.get("qwen")
        await asyncio.sleep(0.2)
        assert ("delete", "qwen") in seen
        await factory.shutdown()


def test_blocking_dynamic_client_on_kube(member: ControlPlane) -> None:
    with DynamicClient(Config.from_kubeconfig(member.kubeconfig)) as dyn:
        services = dyn.resource(api_version="v1", kind="Service", namespace="default")
        created = services.apply(service("sync"), field_manager="kubellm")
        assert created["spec"]["ports"][0]["port"] == 8000
        assert services.get("sync")["metadata"]["uid"] == created["metadata"]["uid"]
        assert "sync" in {o["metadata"]["name"] for o in services.iter()}
        services.delete("sync")
        with pytest.raises(NotFound):
            services.get("sync")
