"""The generated typed clients against a running KubeLLM: every method of every resource's client, asyncio and
blocking, with the typed errors the server's Status gives.

Each (resource, flavour) scenario runs in its own namespace and checks at the end that it called every
public method the generated class has, so a verb added to the generator without a test here fails.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import inspect
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import APIServer
from samples import HELD_ON_DELETE, SPECS, STATUSES

from kubellm.apis.meta.v1 import Preconditions
from kubellm.apis.model.v1alpha1 import LLMService, LLMServiceSpec
from kubellm.apis.scheme import ResourceInfo
from kubellm.client import (
    AlreadyExists,
    AsyncClientSet,
    ClientSet,
    Config,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Unauthorized,
    gen,
)
from kubellm.client import codec as client_codec
from kubellm.client.generated import model_v1alpha1
from kubellm.client.resource import ObjectList, WatchEvent
from kubellm.client.scale import Scale
from kubellm.server.certs import Pair, issue_client_certificate

GROUP_VERSIONS = gen.find_group_versions()  # every group/version the clientset is generated for
RESOURCES: tuple[ResourceInfo, ...] = tuple(info for gv in GROUP_VERSIONS for info in gv.resources)
GROUP_ATTR = {(gv.group, gv.version): gv.ident for gv in GROUP_VERSIONS}


def generated_module(info: ResourceInfo) -> Any:
    try:
        return importlib.import_module(f"kubellm.client.generated.{GROUP_ATTR[info.group, info.version]}")
    except ModuleNotFoundError:
        pytest.fail(f"no generated client for {info.api_version}: run hack/update-codegen.sh")


def group_client(clients: Any, info: ResourceInfo) -> Any:
    ident = GROUP_ATTR[info.group, info.version]
    if not hasattr(clients, ident):
        pytest.fail(f"the clientset has no {ident}: run hack/update-codegen.sh")
    return getattr(clients, ident)

CHANGES: dict[str, dict[str, Any]] = {  # a merge patch that changes something writable
    "User": {"spec": {"displayName": "Alice A."}},
    "Role": {"rules": [{"verbs": ["get", "list"], "apiGroups": ["model.kubellm.io"], "resources": ["llmservices"]}]},
    "ClusterRole": {"rules": [{"verbs": ["get", "head"], "nonResourceURLs": ["/healthz"]}]},
    "RoleBinding": {"subjects": [{"kind": "User", "name": "bob", "apiGroup": "iam.kubellm.io"}]},
    "ClusterRoleBinding": {"subjects": [{"kind": "Group", "name": "dev", "apiGroup": "iam.kubellm.io"}]},
    "LoginRecord": {"metadata": {"labels": {"reviewed": "true"}}},
    "Cluster": {"spec": {"region": "cn-east"}},
    "LLMService": {"spec": {"replicas": 3}},
    "RAGService": {"spec": {"replicas": 2}},
    "Namespace": {"metadata": {"labels": {"team": "a"}}},
    "Event": {"message": "placed again", "count": 2},
    "Lease": {"spec": {"holderIdentity": "kcm-1"}},
}
INVALID: dict[str, dict[str, Any]] = {  # a body the server refuses with 422 and a cause
    "User": {"spec": {"email": ""}},
    "Role": {"rules": [{"verbs": []}]},
    "ClusterRole": {"rules": [{"verbs": []}]},
    "RoleBinding": {"roleRef": {"apiGroup": "iam.kubellm.io", "kind": "Nope", "name": "x"}},
    "ClusterRoleBinding": {"roleRef": {"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": ""}},
    "LoginRecord": {"spec": {"username": ""}},
    "Cluster": {"spec": {"apiEndpoint": ""}},
    "LLMService": {"spec": {"model": "", "replicas": -1}},
    "RAGService": {"spec": {"llmServiceRef": {"name": ""}, "embedding": {"model": "x"}}},
    "Namespace": {"spec": {"finalizers": ["not-qualified"]}},
    "Event": {"involvedObject": {"kind": "", "name": "qwen"}},
    "Lease": {"spec": {"leaseDurationSeconds": 0}},
}
def body(info: ResourceInfo, name: str, namespace: str, extra: dict[str, Any] | None = None,
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if info.namespaced:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    data = {"apiVersion": info.api_version, "kind": info.kind, "metadata": meta, **copy.deepcopy(SPECS[info.kind])}
    for key, value in (extra or {}).items():
        data[key] = value if not isinstance(value, dict) else {**data.get(key, {}), **value}
    return data


async def gone_soon(f: Any, client: Any, name: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await f.call(client, "get", name)
        except NotFound:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{name} was not deleted"
        await asyncio.sleep(0.1)


def typed(info: ResourceInfo, data: dict[str, Any]) -> Any:
    return client_codec.decode(info.model, data)


def public_methods(cls: type) -> set[str]:
    return {n for n, v in vars(cls).items() if inspect.isfunction(v) and not n.startswith("_")}


# --- one scenario, two flavours -------------------------------------------------------------------------------


class Flavour:
    """Calls a client's methods the same way whether they are coroutines or blocking (run in a thread)."""

    def __init__(self, blocking: bool) -> None:
        self.blocking = blocking
        self.called: set[str] = set()

    async def call(self, client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        self.called.add(method)
        fn = getattr(client, method)
        if self.blocking:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return await fn(*args, **kwargs)

    async def take(self, client: Any, method: str, count: int, until: Callable[[Any], bool] = lambda _: True,
                   **kwargs: Any) -> list[Any]:
        """The first `count` items of an iterator method that satisfy `until`."""
        self.called.add(method)
        fn = getattr(client, method)
        if self.blocking:
            def run() -> list[Any]:
                out: list[Any] = []
                it: Iterator[Any] = fn(**kwargs)
                try:
                    for item in it:
                        if until(item):
                            out.append(item)
                            if len(out) == count:
                                break
                finally:
                    close = getattr(it, "close", None)
                    if close:
                        close()
                return out
            return await asyncio.wait_for(asyncio.to_thread(run), 30)

        async def collect() -> list[Any]:
            out: list[Any] = []
            agen: AsyncIterator[Any] = fn(**kwargs)
            try:
                async for item in agen:
                    if until(item):
                        out.append(item)
                        if len(out) == count:
                            break
            finally:
                aclose = getattr(agen, "aclose", None)
                if aclose:
                    await aclose()
            return out
        return await asyncio.wait_for(collect(), 30)


async def scenario(info: ResourceInfo, group_client: Any, flavour: Flavour, namespace: str) -> None:
    missing = [table for table, samples in (("SPECS", SPECS), ("CHANGES", CHANGES), ("INVALID", INVALID))
               if info.kind not in samples] + (["STATUSES"] if info.has_status and info.kind not in STATUSES else [])
    if missing:
        pytest.fail(f"{info.kind} is served and generated but has no sample in {missing} of {__file__}")
    f = flavour
    plural = info.plural
    client = getattr(group_client, plural)(namespace) if info.namespaced else getattr(group_client, plural)()
    run = uuid.uuid4().hex[:6]
    name = f"c-{run}"

    # create (dry run writes nothing), get, errors
    dry = await f.call(client, "create", typed(info, body(info, name, namespace)), dry_run=True)
    assert dry.metadata.name == name
    with pytest.raises(NotFound) as nf:
        await f.call(client, "get", name)
    assert nf.value.code == 404 and nf.value.status.details is not None and nf.value.status.details.name == name
    created = await f.call(client, "create", typed(info, body(info, name, namespace, labels={"run": run})),
                           field_manager="clientset-test")
    assert isinstance(created, info.model) and created.metadata.uid
    with pytest.raises(AlreadyExists):
        await f.call(client, "create", typed(info, body(info, name, namespace)))
    bad = {**body(info, f"bad-{run}", namespace)}
    for key, value in INVALID[info.kind].items():
        bad[key] = {**bad.get(key, {}), **value} if isinstance(value, dict) else value
    with pytest.raises(Invalid) as inv:
        await f.call(client, "create", typed(info, bad), field_validation="Strict")
    assert inv.value.code == 422 and inv.value.causes and all(c.field for c in inv.value.causes)
    got = await f.call(client, "get", name)
    assert got.metadata.uid == created.metadata.uid
    cached = await f.call(client, "get", name, resource_version="0")
    assert cached.metadata.name == name

    # watch from here on, in the background
    watch_from = got.metadata.resource_version
    watched = asyncio.ensure_future(f.take(client, "watch", 1, resource_version=watch_from,
                                           until=lambda ev: ev.type == "MODIFIED" and ev.object.metadata.name == name))

    # update, conflict, patches, apply
    changed = typed(info, _merged(client_codec.encode(got), CHANGES[info.kind]))
    updated = await f.call(client, "update", changed)
    assert int(updated.metadata.resource_version) > int(got.metadata.resource_version)
    with pytest.raises(Conflict) as conflict:
        await f.call(client, "update", changed)
    assert "the object has been modified" in conflict.value.message
    patched = await f.call(client, "patch", name, {"metadata": {"annotations": {"step": "merge"}}})
    assert patched.metadata.annotations == {"step": "merge"}
    patched = await f.call(client, "patch", name, [{"op": "add", "path": "/metadata/annotations/json", "value": "1"}])
    assert patched.metadata.annotations == {"step": "merge", "json": "1"}
    config = {"apiVersion": info.api_version, "kind": info.kind,
              "metadata": {"name": name, **({"namespace": namespace} if info.namespaced else {}),
                           "labels": {"applied": "yes"}}}
    applied = await f.call(client, "apply", config, field_manager="clientset-apply", force=True)
    assert applied.metadata.labels["applied"] == "yes"
    assert "clientset-apply" in {m.manager for m in applied.metadata.managed_fields or []}

    events: list[WatchEvent[Any]] = await watched
    assert events and events[0].object.metadata.name == name and isinstance(events[0].object, info.model)

    if info.has_status:
        current = await f.call(client, "get", name)
        with_status = typed(info, {**client_codec.encode(current), "status": STATUSES[info.kind]})
        st = await f.call(client, "update_status", with_status)
        assert st.status is not None
        st = await f.call(client, "patch_status", name, {"status": {"observedGeneration": 1}}
                          if info.kind != "User" else {"status": {"failedLoginCount": 1}})
        assert st.status is not None
        st = await f.call(client, "apply_status", {
            "apiVersion": info.api_version, "kind": info.kind,
            "metadata": {"name": name, **({"namespace": namespace} if info.namespaced else {})},
            "status": STATUSES[info.kind]}, field_manager="clientset-status", force=True)
        assert "clientset-status" in {m.manager for m in st.metadata.managed_fields or []}

    if info.has_scale:
        scale = await f.call(client, "get_scale", name)
        assert isinstance(scale, Scale) and scale.metadata.name == name
        scale.spec.replicas = 5
        scaled = await f.call(client, "update_scale", name, scale)
        assert scaled.spec.replicas == 5
        assert (await f.call(client, "get", name)).spec.replicas == 5
        with pytest.raises(Conflict):
            await f.call(client, "update_scale", name, scale)  # its resourceVersion is stale now

    # list: pages, continue, iterator; more objects for delete_collection
    for i in range(2):
        await f.call(client, "create", typed(info, body(info, f"{name}-{i}", namespace, labels={"run": run})))
    page: ObjectList[Any] = await f.call(client, "list", label_selector={"run": run}, limit=2)
    assert len(page.items) == 2 and page.continue_ and page.resource_version
    rest: ObjectList[Any] = await f.call(client, "list", label_selector={"run": run}, limit=2, continue_=page.continue_)
    names = {o.metadata.name for o in [*page.items, *rest.items]}
    assert names == {name, f"{name}-0", f"{name}-1"}
    walked = await f.take(client, "iter", 10, label_selector=f"run={run}", page_size=1)
    assert {o.metadata.name for o in walked} == names

    # delete with preconditions, then the rest as a collection
    with pytest.raises(Conflict):
        await f.call(client, "delete", name, preconditions=Preconditions(uid="not-the-uid"))
    gone = await f.call(client, "delete", name, preconditions=Preconditions(uid=created.metadata.uid),
                        propagation_policy="Background")
    assert gone is None or gone.metadata.name == name
    if info.kind in HELD_ON_DELETE:  # a namespace goes once its lifecycle job has emptied it
        await gone_soon(f, client, name)
    deleted = await f.call(client, "delete_collection", label_selector={"run": run})
    assert {o.metadata.name for o in deleted} == {f"{name}-0", f"{name}-1"}
    if info.kind in HELD_ON_DELETE:
        for i in range(2):
            await gone_soon(f, client, f"{name}-{i}")
    with pytest.raises(NotFound):
        await f.call(client, "delete", name)

    cls = type(client)
    assert f.called == public_methods(cls), f"{cls.__name__}: not exercised: {public_methods(cls) - f.called}"


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        out[key] = _merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


@pytest.fixture(scope="module")
def config(apiserver: APIServer) -> Config:
    return Config.from_kubeconfig(apiserver.kubeconfig)


@pytest.mark.parametrize("info", RESOURCES, ids=lambda i: i.kind)
async def test_every_method_asyncio(config: Config, info: ResourceInfo) -> None:
    async with AsyncClientSet(config) as clients:
        group = group_client(clients, info)
        await scenario(info, group, Flavour(blocking=False), f"aio-{info.plural}")


@pytest.mark.parametrize("info", RESOURCES, ids=lambda i: i.kind)
async def test_every_method_blocking(config: Config, info: ResourceInfo) -> None:
    clients = ClientSet(config)
    try:
        group = group_client(clients, info)
        await scenario(info, group, Flavour(blocking=True), f"sync-{info.plural}")
    finally:
        clients.close()


def test_every_resource_has_both_flavours() -> None:
    for info in RESOURCES:
        module = generated_module(info)
        sync_cls, async_cls = getattr(module, f"{info.kind}Client"), getattr(module, f"Async{info.kind}Client")
        assert public_methods(sync_cls) == public_methods(async_cls)
        expected = {"get", "list", "iter", "create", "update", "patch", "apply", "delete", "delete_collection",
                    "watch"}
        if info.has_status:
            expected |= {"update_status", "patch_status", "apply_status"}
        if info.has_scale:
            expected |= {"get_scale", "update_scale"}
        assert public_methods(sync_cls) == expected, info.kind


# --- errors that are about the caller -------------------------------------------------------------------------


def user_config(apiserver: APIServer, config: Config, user: str, tmp: Path) -> Config:
    ca = Pair(apiserver.state_dir / "pki" / "client-ca.crt", apiserver.state_dir / "pki" / "client-ca.key")
    pair = Pair(tmp / f"{user}.crt", tmp / f"{user}.key")
    issue_client_certificate(ca, pair, user, ("clientset-testers",))
    return config.replace(cert_file=str(pair.cert), key_file=str(pair.key), cert_data=None, key_data=None)


async def test_forbidden_and_unauthorized(apiserver: APIServer, config: Config, tmp_path: Path) -> None:
    async with AsyncClientSet(user_config(apiserver, config, "clientset-nobody", tmp_path)) as clients:
        with pytest.raises(Forbidden) as forbidden:
            await clients.model_v1alpha1.llmservices("default").get("qwen")
        assert forbidden.value.code == 403
        assert 'User "clientset-nobody" cannot get resource "llmservices"' in forbidden.value.message
    bogus = config.replace(cert_file=None, key_file=None, token="not-a-token-at-all")
    async with AsyncClientSet(bogus) as clients:
        with pytest.raises(Unauthorized) as unauthorized:
            await clients.model_v1alpha1.llmservices("default").list()
        assert unauthorized.value.code == 401 and unauthorized.value.status.reason == "Unauthorized"


async def test_unknown_fields_of_a_newer_server_survive_an_update(config: Config) -> None:
    """An older client (its LLMServiceSpec has no `hfEndpoint`, `image` nor `env`) reads an object a newer
    server wrote with them, changes something else and updates: nothing it did not know is lost."""
    from pydantic import create_model

    from kubellm.apis.model.v1alpha1 import types as model_types

    older_spec = create_model("LLMServiceSpec", __base__=model_types.APIModel, **{
        name: (field.annotation, field) for name, field in LLMServiceSpec.model_fields.items()
        if name not in ("hf_endpoint", "image", "env")})
    older = create_model("LLMService", __base__=model_types.TypedModel, metadata=(model_types.ObjectMeta, ...),
                         spec=(older_spec, ...), status=(model_types.LLMServiceStatus | None, None))

    async with AsyncClientSet(config) as clients:
        newer = clients.model_v1alpha1.llmservices("aio-compat")
        await newer.create(LLMService.model_validate({
            "metadata": {"name": "compat"},
            "spec": {"model": "Qwen/Qwen2.5-3B-Instruct", "hfEndpoint": "https://mirror.example",
                     "env": [{"name": "A", "value": "1"}]}}))
        try:
            old_client = model_v1alpha1.AsyncLLMServiceClient(clients.transport, "aio-compat")
            old_client.ops.codec.model = older  # type: ignore[attr-defined]
            obj = await old_client.ops.get("compat")
            assert type(obj) is older
            extra = obj.spec.__pydantic_extra__
            assert set(extra) == {"hfEndpoint", "env", "image"}
            assert extra["hfEndpoint"] == "https://mirror.example" and extra["env"] == [{"name": "A", "value": "1"}]
            obj.spec.replicas = 4
            await old_client.ops.update(obj)
            after = await newer.get("compat")
            assert after.spec.replicas == 4
            assert after.spec.hf_endpoint == "https://mirror.example"
            assert [e.name for e in after.spec.env] == ["A"]
        finally:
            await newer.delete("compat")
