"""What a standalone KubeLLM serves of what a cluster would: Namespaces with a lifecycle, Events that
`kubectl describe` shows, and Leases for leader election; all through real kubectl."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest
from conftest import APIServer, eventually, running_apiserver

LLM = """apiVersion: model.kubellm.io/v1alpha1
kind: LLMService
metadata: {{name: {name}, namespace: {ns}{extra}}}
spec: {{model: Qwen/Qwen2.5-3B-Instruct}}
"""


def llm(name: str, ns: str, finalizers: list[str] | None = None) -> str:
    return LLM.format(name=name, ns=ns, extra=f", finalizers: {json.dumps(finalizers)}" if finalizers else "")


def test_default_namespaces_and_autoprovisioning(apiserver: APIServer) -> None:
    names = apiserver.kubectl("get", "ns", "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
    assert {"default", "kube-system"} <= set(names)
    apiserver.kubectl("apply", "-f", "-", input=llm("auto", "brand-new"))
    ns = json.loads(apiserver.kubectl("get", "ns", "brand-new", "-o", "json").stdout)
    assert ns["status"]["phase"] == "Active" and ns["spec"]["finalizers"] == ["kubernetes"]
    table = apiserver.kubectl("get", "ns", "brand-new").stdout.split()
    assert table[:3] == ["NAME", "STATUS", "AGE"] and table[3:5] == ["brand-new", "Active"]


@pytest.mark.parametrize("name", ["default", "kube-system"])
def test_system_namespaces_cannot_be_deleted(apiserver: APIServer, name: str) -> None:
    refused = apiserver.kubectl("delete", "ns", name, check=False)
    assert refused.returncode == 1
    assert f'namespaces "{name}" is forbidden: this namespace may not be deleted' in refused.stderr
    assert apiserver.kubectl("get", "ns", name, "-o", "jsonpath={.status.phase}").stdout == "Active"


def test_deleting_a_namespace_deletes_its_contents(apiserver: APIServer) -> None:
    apiserver.kubectl("create", "ns", "doomed")
    apiserver.kubectl("apply", "-f", "-", input=llm("a", "doomed") + "---\n" + llm("held", "doomed", ["test/hold"]))
    deleting = subprocess.Popen(["kubectl", "--kubeconfig", str(apiserver.kubeconfig), "delete", "ns", "doomed",
                                 "--timeout=60s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: apiserver.kubectl("get", "ns", "doomed", "-o", "jsonpath={.status.phase}").stdout,
                   lambda phase: phase == "Terminating")
        eventually(lambda: apiserver.kubectl("get", "llms", "-n", "doomed", "-o", "name").stdout.split(),
                   lambda left: left == ["llmservice.model.kubellm.io/held"])
        # nothing new while it terminates
        refused = apiserver.kubectl("apply", "-f", "-", input=llm("late", "doomed"), check=False)
        assert refused.returncode != 0
        assert "unable to create new content in namespace doomed because it is being terminated" in refused.stderr
        assert deleting.poll() is None  # still waiting for the held object
        apiserver.kubectl("patch", "llms", "held", "-n", "doomed", "--type=merge", "-p",
                          '{"metadata":{"finalizers":null}}')
        out, err = deleting.communicate(timeout=60)
        assert deleting.returncode == 0 and 'namespace "doomed" deleted' in out, err
    finally:
        if deleting.poll() is None:
            deleting.kill()
    assert apiserver.kubectl("get", "ns", "doomed", check=False).returncode == 1


def test_events_show_in_describe(apiserver: APIServer) -> None:
    apiserver.kubectl("apply", "-f", "-", input=llm("told", "stories"))
    uid = apiserver.kubectl("get", "llms", "told", "-n", "stories", "-o", "jsonpath={.metadata.uid}").stdout
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "told.placed", "namespace": "stories"},
             "involvedObject": {"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService", "name": "told",
                                "namespace": "stories", "uid": uid},
             "reason": "Placed", "message": "placed 1 replica on gpu-a", "type": "Normal", "count": 1,
             "firstTimestamp": now, "lastTimestamp": now, "source": {"component": "kubellm-controller"}}
    apiserver.kubectl("create", "-f", "-", input=json.dumps(event))
    described = apiserver.kubectl("describe", "llms", "told", "-n", "stories").stdout
    assert "Events:" in described and "Placed" in described and "placed 1 replica on gpu-a" in described
    listed = apiserver.kubectl("get", "events", "-n", "stories",
                               "--field-selector", "involvedObject.name=told").stdout
    assert "Placed" in listed


def test_leases(apiserver: APIServer) -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "kubellm-controller-manager", "namespace": "kube-system"},
             "spec": {"holderIdentity": "kcm-0", "leaseDurationSeconds": 15,
                      "renewTime": "2026-01-01T00:00:00.000000Z"}}
    apiserver.kubectl("create", "-f", "-", input=json.dumps(lease))
    got = json.loads(apiserver.kubectl("get", "lease", "kubellm-controller-manager", "-n", "kube-system",
                                       "-o", "json").stdout)
    assert got["spec"]["holderIdentity"] == "kcm-0"
    bad = {**lease, "metadata": {**lease["metadata"], "name": "bad"}, "spec": {"leaseDurationSeconds": 0}}
    out = apiserver.kubectl("create", "-f", "-", input=json.dumps(bad), check=False)
    assert out.returncode != 0 and "spec.leaseDurationSeconds" in out.stderr


@pytest.fixture(scope="module")
def short_ttl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APIServer]:
    with running_apiserver(tmp_path_factory.mktemp("event-ttl"), "--event-ttl-seconds", "2") as server:
        yield server


def test_events_expire(short_ttl: APIServer) -> None:
    old = "2020-01-01T00:00:00Z"
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "stale", "namespace": "default"},
             "involvedObject": {"kind": "LLMService", "name": "x", "namespace": "default"},
             "reason": "Old", "lastTimestamp": old, "firstTimestamp": old}
    short_ttl.kubectl("create", "-f", "-", input=json.dumps(event))
    eventually(lambda: short_ttl.kubectl("get", "events", "stale", "-n", "default", check=False).returncode,
               lambda code: code == 1)
