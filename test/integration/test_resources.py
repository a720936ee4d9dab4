"""Resource-specific behaviour: LLMService validation and scale, write-only secrets, size limits."""

from __future__ import annotations

import copy

import pytest
from samples import make
from test_store import KINDS, raises

from kubellm.registry.options import RegistryOptions
from kubellm.registry.registry import build_stores
from kubellm.registry.rest import Resource, ScaleREST
from kubellm.registry.storage.etcd import EtcdStorage
from kubellm.registry.store import ListParams, Store, WriteOptions


@pytest.fixture
def stores(storage: EtcdStorage) -> dict[str, Store]:
    opts = RegistryOptions(password_hasher=lambda p: "$test$" + p[::-1])
    return {s.info.kind: s for s in build_stores(storage, opts).values()}


async def test_llmservice_every_field_error_is_listed(stores: dict[str, Store]) -> None:
    llm = stores["LLMService"]
    body = make(KINDS["LLMService"], "Qwen_3B")
    body["spec"] = {"model": "ab", "quantization": "int3", "maxModelLen": 256, "replicas": "three",
                    "gpuMemoryUtilization": "1.5", "autoscaling": {"minReplicas": 5, "maxReplicas": 2}}
    err = await raises(llm.create(body, namespace="ns1"), 422, "Invalid")
    causes = {(c["field"], c["message"]) for c in err.status["details"]["causes"]}
    expected = {
        ("spec.quantization", 'Unsupported value: "int3": supported values: "awq", "fp8", "gptq"'),
        ("spec.maxModelLen", "Invalid value: 256: must be greater than or equal to 512"),
        ("spec.replicas", 'Invalid value: "three": must be of type integer'),
        ("spec.model", 'Invalid value: "ab": must be at least 3 characters'),
    }
    assert expected <= causes, causes
    fields = {f for f, _ in causes}
    assert {"metadata.name", "spec.gpuMemoryUtilization", "spec.autoscaling.minReplicas"} <= fields
    assert err.message.startswith('LLMService.model.kubellm.io "Qwen_3B" is invalid: [')
    assert (await llm.list(None))["items"] == []


async def test_llmservice_defaults_and_scale(stores: dict[str, Store]) -> None:
    llm = stores["LLMService"]
    created = (await llm.create(make(KINDS["LLMService"], "qwen"), namespace="ns1")).object
    spec = created["spec"]
    assert (spec["maxModelLen"], spec["gpuMemoryUtilization"], spec["replicas"], spec["quantization"]) == (
        2048, "0.85", 1, "")
    assert spec["image"] == RegistryOptions().default_image and spec["hfEndpoint"] == "https://hf-mirror.com"

    scales = Resource.of(llm).rest["scale"]
    assert isinstance(scales, ScaleREST)
    scale = await scales.get("ns1", "qwen")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 1 and scale["metadata"]["resourceVersion"] == created["metadata"][
        "resourceVersion"]
    scaled = await scales.update("ns1", "qwen", {"spec": {"replicas": 4}, "metadata": scale["metadata"]},
                                 WriteOptions())
    assert scaled.object["spec"]["replicas"] == 4
    current = await llm.get("ns1", "qwen")
    assert current["spec"]["replicas"] == 4 and current["metadata"]["generation"] == 2
    await raises(scales.update("ns1", "qwen", {"spec": {"replicas": 2}, "metadata": scale["metadata"]},
                               WriteOptions()), 409, "Conflict")
    err = await raises(scales.update("ns1", "qwen", {"spec": {"replicas": -1}}, WriteOptions()), 422, "Invalid")
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in err.message
    dry = await scales.update("ns1", "qwen", {"spec": {"replicas": 9}}, WriteOptions(dry_run=True))
    assert dry.object["spec"]["replicas"] == 9
    assert (await llm.get("ns1", "qwen"))["spec"]["replicas"] == 4
    assert "scale" not in Resource.of(stores["RAGService"]).rest


async def test_field_selector_on_status_phase(stores: dict[str, Store]) -> None:
    llm = stores["LLMService"]
    for name, phase in (("a", "Serving"), ("b", "Loading")):
        obj = (await llm.create(make(KINDS["LLMService"], name), namespace="ns1")).object
        obj["status"] = {"phase": phase}
        await llm.update("ns1", name, obj, subresource="status")
    listed = await llm.list(None, ListParams(field_selector="status.phase=Serving"))
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]


async def test_oversized_object_is_rejected_and_not_written(stores: dict[str, Store]) -> None:
    llm = stores["LLMService"]
    big = make(KINDS["LLMService"], "big")
    big["spec"]["extraArgs"] = ["--x=" + "a" * 1024] * 2048  # about 2 MiB
    err = await raises(llm.create(big, namespace="ns1"), 413, "RequestEntityTooLarge")
    assert "too large" in err.message
    huge_note = make(KINDS["LLMService"], "big2")
    huge_note["metadata"]["annotations"] = {"note": "n" * (2 * 1024 * 1024)}
    err = await raises(llm.create(huge_note, namespace="ns1"), 422, "Invalid")
    assert "metadata.annotations: Too long: may not be more than 262144 bytes" in err.message
    assert (await llm.list(None))["items"] == []


async def test_user_password_is_hashed_and_write_only(stores: dict[str, Store], storage: EtcdStorage) -> None:
    users = stores["User"]
    body = make(KINDS["User"], "alice")
    body["spec"]["password"] = "correct horse battery"
    created = (await users.create(body, namespace=None)).object
    assert "password" not in created["spec"]
    stored = await storage.get("/iam.kubellm.io/users/alice")
    assert stored["spec"]["passwordHash"] == "$test$" + "correct horse battery"[::-1]
    assert "correct horse battery" not in str(stored)
    # an update without a password keeps the hash; a client cannot set the hash itself
    current = copy.deepcopy(created)
    current["spec"]["displayName"] = "Alice"
    current["spec"].pop("passwordHash", None)
    await users.update(None, "alice", current)
    assert (await storage.get("/iam.kubellm.io/users/alice"))["spec"]["passwordHash"].startswith("$test$")
    forged = await users.get(None, "alice")
    forged["spec"]["passwordHash"] = "forged"
    err = await raises(users.update(None, "alice", forged), 422, "Invalid")
    assert "spec.passwordHash: Forbidden" in err.message


async def test_user_password_refused_without_hasher(storage: EtcdStorage) -> None:
    users = {s.info.kind: s for s in build_stores(storage).values()}["User"]
    body = make(KINDS["User"], "bob")
    body["spec"]["password"] = "hunter2hunter2"
    err = await raises(users.create(body, namespace=None), 422, "Invalid")
    assert "spec.password: Forbidden" in err.message and "hunter2" not in err.message


async def test_cluster_credentials_survive_updates_that_omit_them(stores: dict[str, Store]) -> None:
    clusters = stores["Cluster"]
    created = (await clusters.create(make(KINDS["Cluster"], "gpu-a"), namespace=None)).object
    without = copy.deepcopy(created)
    del without["spec"]["credentials"]
    without["spec"]["region"] = "cn-north"
    updated = (await clusters.update(None, "gpu-a", without)).object
    assert updated["spec"]["credentials"]["token"] == "abc.def"
    assert updated["spec"]["region"] == "cn-north"


async def test_moving_a_cluster_needs_its_credentials_again(stores: dict[str, Store]) -> None:
    """The stored credentials are never sent to an endpoint or CA the editor chose without supplying them."""
    clusters = stores["Cluster"]
    created = (await clusters.create(make(KINDS["Cluster"], "gpu-m"), namespace=None)).object
    for change in ({"apiEndpoint": "https://attacker.example:6443"}, {"caBundle": "Zm9v"},
                   {"insecureSkipTLSVerify": True}):
        moved = copy.deepcopy(created)
        del moved["spec"]["credentials"]
        moved["spec"].update(change)
        err = await raises(clusters.update(None, "gpu-m", moved), 422, "Invalid")
        causes = [(c["field"], c["message"]) for c in err.status["details"]["causes"]]
        assert ("spec.credentials", "Required value: must be given again when apiEndpoint, caBundle or "
                                    "insecureSkipTLSVerify changes") in causes, causes
        err = await raises(clusters.patch(None, "gpu-m", lambda o, c=change: {**o, "spec": {**o["spec"], **c}}),
                           422, "Invalid")
    assert (await clusters.get(None, "gpu-m"))["spec"]["apiEndpoint"] == created["spec"]["apiEndpoint"]
    moved = copy.deepcopy(created)
    moved["spec"].update(apiEndpoint="https://10.9.9.9:6443", credentials={"token": "new.token"})
    updated = (await clusters.update(None, "gpu-m", moved)).object
    assert updated["spec"]["credentials"]["token"] == "new.token"


async def test_last_applied_annotation_is_stored_without_secrets(stores: dict[str, Store]) -> None:
    import json

    from kubellm.apis.secrets import LAST_APPLIED

    body = make(KINDS["Cluster"], "gpu-la")
    body["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(body)}
    created = (await stores["Cluster"].create(body, namespace=None)).object
    assert "abc.def" not in created["metadata"]["annotations"][LAST_APPLIED]
    assert json.loads(created["metadata"]["annotations"][LAST_APPLIED])["metadata"]["name"] == "gpu-la"
    user = make(KINDS["User"], "la-user")
    user["spec"]["password"] = "a password long enough"
    user["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(user)}
    stored = (await stores["User"].create(user, namespace=None)).object
    assert "long enough" not in json.dumps(stored)
    patched = await stores["User"].patch(None, "la-user", lambda o: {**o, "metadata": {
        **o["metadata"], "annotations": {LAST_APPLIED: json.dumps(user)}}})
    assert "long enough" not in json.dumps(patched.object)


async def test_spec_and_status_are_validated_apart(stores: dict[str, Store]) -> None:
    """Each endpoint checks what it writes: a stored spec that fails today's rules does not block status
    writes (a controller reporting on an old object), and a failing status does not block spec edits."""
    llm = stores["LLMService"]
    await llm.create(make(KINDS["LLMService"], "rat"), namespace="ns1")
    key = llm.key("ns1", "rat")

    async def corrupt(obj: dict[str, object]) -> dict[str, object]:  # as if written under older, looser rules
        obj["spec"] = {**obj["spec"], "maxModelLen": 10}  # type: ignore[dict-item]
        obj["status"] = {"phase": "Sleeping"}
        return obj

    await llm.storage.guaranteed_update(key, corrupt)
    current = await llm.get("ns1", "rat")
    current["status"] = {"phase": "Serving", "replicas": 1, "readyReplicas": 1}
    updated = await llm.update("ns1", "rat", current, subresource="status")
    assert updated.object["status"]["phase"] == "Serving" and updated.object["spec"]["maxModelLen"] == 10
    await llm.storage.guaranteed_update(key, corrupt)
    fixed = await llm.patch("ns1", "rat", lambda o: {**o, "spec": {**o["spec"], "maxModelLen": 4096}})
    assert fixed.object["spec"]["maxModelLen"] == 4096 and fixed.object["status"]["phase"] == "Sleeping"
    # and each endpoint still refuses what it would write wrong
    await raises(llm.patch("ns1", "rat", lambda o: {**o, "spec": {**o["spec"], "maxModelLen": 10}}), 422, "Invalid")
    await raises(llm.patch("ns1", "rat", lambda o: {**o, "status": {"phase": "Sleeping"}}, subresource="status"),
                 422, "Invalid")
