"""kubectl against a running KubeLLM: every command a platform engineer types against a CRD-backed resource."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest
import yaml
from conftest import APIServer

NS = "team-a"


def llm(name: str, *, replicas: int = 1, labels: dict[str, str] | None = None, model: str = "Qwen/Qwen2.5-3B-Instruct",
        finalizers: list[str] | None = None) -> str:
    meta: dict[str, object] = {"name": name, "namespace": NS}
    if labels:
        meta["labels"] = labels
    if finalizers:
        meta["finalizers"] = finalizers
    return yaml.safe_dump({"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService", "metadata": meta,
                           "spec": {"model": model, "replicas": replicas}})


@pytest.fixture
def k(apiserver: APIServer) -> Iterator[APIServer]:
    yield apiserver
    apiserver.kubectl("delete", "llmservices", "--all", "-n", NS, "--wait=false", check=False)


def test_api_resources_and_versions(k: APIServer) -> None:
    out = k.kubectl("api-resources", "--api-group=model.kubellm.io").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert any(line.split() == ["llmservices", "llms", "model.kubellm.io/v1alpha1", "true", "LLMService"]
               for line in lines), out
    wide = k.kubectl("api-resources", "-o", "wide", "--api-group=iam.kubellm.io").stdout
    assert "users" in wide and "create,delete,deletecollection,get,list,patch,update,watch" in wide
    versions = k.kubectl("api-versions").stdout.split()
    assert {"model.kubellm.io/v1alpha1", "iam.kubellm.io/v1alpha1", "cluster.kubellm.io/v1alpha1"} <= set(versions)
    cats = k.kubectl("get", "kubellm", "-A").stdout + k.kubectl("get", "kubellm", "-A").stderr
    assert "No resources found" in cats or "NAME" in cats


def test_explain(k: APIServer) -> None:
    out = k.kubectl("explain", "llmservice.spec").stdout
    assert "KIND:" in out and "LLMService" in out and "maxModelLen" in out and "quantization" in out
    rec = k.kubectl("explain", "llmservice.spec", "--recursive").stdout
    for field in ("model", "autoscaling", "minReplicas", "placement", "gpuMemoryUtilization"):
        assert field in rec, rec


def test_create_get_formats(k: APIServer) -> None:
    k.kubectl("create", "-f", "-", input=llm("qwen", labels={"app": "chat"}))
    table = k.kubectl("get", "llmservices", "-n", NS).stdout.splitlines()
    assert table[0].split() == ["NAME", "MODEL", "QUANT", "REPLICAS", "READY", "PHASE", "ENDPOINT", "AGE"]
    assert table[1].split()[:2] == ["qwen", "Qwen/Qwen2.5-3B-Instruct"]
    as_yaml = yaml.safe_load(k.kubectl("get", "llms", "qwen", "-n", NS, "-o", "yaml").stdout)
    assert as_yaml["spec"]["maxModelLen"] == 2048 and as_yaml["metadata"]["uid"]
    as_json = json.loads(k.kubectl("get", "llmservice/qwen", "-n", NS, "-o", "json").stdout)
    assert as_json["kind"] == "LLMService"
    assert k.kubectl("get", "llms", "-n", NS, "-o", "jsonpath={.items[0].spec.model}").stdout == \
        "Qwen/Qwen2.5-3B-Instruct"
    cc = k.kubectl("get", "llms", "-n", NS, "-o", "custom-columns=N:.metadata.name,R:.spec.replicas").stdout
    assert cc.split() == ["N", "R", "qwen", "1"]
    assert k.kubectl("get", "llms", "-n", NS, "-o", "name").stdout.strip() == "llmservice.model.kubellm.io/qwen"
    assert "qwen" in k.kubectl("get", "llms", "-A").stdout
    assert k.kubectl("get", "llms", "-n", NS, "-l", "app=chat", "-o", "name").stdout.strip()
    assert not k.kubectl("get", "llms", "-n", NS, "-l", "app=other", "-o", "name").stdout.strip()
    assert k.kubectl("get", "llms", "-n", NS, "--field-selector", "metadata.name=qwen", "-o", "name").stdout.strip()


def test_get_missing_object(k: APIServer) -> None:
    proc = k.kubectl("get", "llmservice", "nope", "-n", NS, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'Error from server (NotFound): llmservices.model.kubellm.io "nope" not found'


def test_chunked_list(k: APIServer) -> None:
    docs = "---\n".join(llm(f"chunk-{i:02d}") for i in range(8))
    k.kubectl("create", "-f", "-", input=docs)
    out = k.kubectl("get", "llms", "-n", NS, "--chunk-size=3", "-o", "name", "-v=6").stdout
    assert [line.split("/")[1] for line in out.split()] == [f"chunk-{i:02d}" for i in range(8)]
    verbose = k.kubectl("get", "llms", "-n", NS, "--chunk-size=3", "-v=6")
    assert verbose.stderr.count("limit=3") >= 3, verbose.stderr


def test_apply_twice_and_server_side(k: APIServer) -> None:
    k.kubectl("apply", "-f", "-", input=llm("applied", replicas=1))
    out = k.kubectl("apply", "-f", "-", input=llm("applied", replicas=2)).stdout
    assert "llmservice.model.kubellm.io/applied configured" in out
    assert k.kubectl("get", "llms", "applied", "-n", NS, "-o", "jsonpath={.spec.replicas}").stdout == "2"
    assert "unchanged" in k.kubectl("apply", "-f", "-", input=llm("applied", replicas=2)).stdout

    k.kubectl("apply", "--server-side", "--field-manager=alice", "-f", "-", input=llm("ssa", replicas=1))
    conflict = k.kubectl("apply", "--server-side", "--field-manager=bob", "-f", "-", input=llm("ssa", replicas=3),
                         check=False)
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr.lower() and ".spec.replicas" in conflict.stderr
    k.kubectl("apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", "-",
              input=llm("ssa", replicas=3))
    obj = json.loads(k.kubectl("get", "llms", "ssa", "-n", NS, "-o", "json", "--show-managed-fields").stdout)
    assert obj["spec"]["replicas"] == 3
    managers = {m["manager"]: m for m in obj["metadata"]["managedFields"]}
    assert "f:replicas" in json.dumps(managers["bob"]["fieldsV1"])


def test_patch_label_annotate_scale(k: APIServer) -> None:
    k.kubectl("create", "-f", "-", input=llm("p"))
    k.kubectl("patch", "llms", "p", "-n", NS, "--type=merge", "-p", '{"spec":{"quantization":"awq"}}')
    k.kubectl("patch", "llms", "p", "-n", NS, "--type=json", "-p",
              '[{"op":"replace","path":"/spec/maxModelLen","value":4096}]')
    k.kubectl("label", "llms", "p", "-n", NS, "team=a")
    k.kubectl("annotate", "llms", "p", "-n", NS, "owner=alice")
    out = k.kubectl("scale", "llms", "p", "-n", NS, "--replicas=5").stdout
    assert "scaled" in out
    obj = json.loads(k.kubectl("get", "llms", "p", "-n", NS, "-o", "json").stdout)
    assert obj["spec"]["quantization"] == "awq" and obj["spec"]["maxModelLen"] == 4096
    assert obj["spec"]["replicas"] == 5 and obj["metadata"]["labels"]["team"] == "a"
    assert obj["metadata"]["annotations"]["owner"] == "alice"
    bad = k.kubectl("patch", "llms", "p", "-n", NS, "--type=merge", "-p", '{"spec":{"quantization":"int3"}}',
                    check=False)
    assert bad.returncode != 0 and 'Unsupported value: "int3"' in bad.stderr
    smp = k.kubectl("patch", "llms", "p", "-n", NS, "-p", '{"spec":{"replicas":1}}', check=False)
    assert smp.returncode != 0
    assert ("application/strategic-merge-patch+json is not supported by model.kubellm.io/v1alpha1, Kind=LLMService: "
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml") in smp.stderr


def test_edit_with_scripted_editor(k: APIServer, tmp_path: pytest.TempPathFactory) -> None:
    k.kubectl("create", "-f", "-", input=llm("e"))
    editor = tmp_path / "editor.sh"  # type: ignore[operator]
    editor.write_text("#!/bin/sh\nsed -i 's/replicas: 1/replicas: 7/' \"$1\"\n")
    editor.chmod(0o755)
    out = k.kubectl("edit", "llms", "e", "-n", NS, env={"KUBE_EDITOR": str(editor), "EDITOR": str(editor)}).stdout
    assert "edited" in out
    assert k.kubectl("get", "llms", "e", "-n", NS, "-o", "jsonpath={.spec.replicas}").stdout == "7"


def test_describe_and_diff(k: APIServer) -> None:
    k.kubectl("create", "-f", "-", input=llm("d"))
    desc = k.kubectl("describe", "llms", "d", "-n", NS).stdout
    assert "Name:" in desc and "Qwen/Qwen2.5-3B-Instruct" in desc and "Max Model Len" in desc
    same = k.kubectl("diff", "-f", "-", input=llm("d"), check=False)
    assert same.returncode == 0, same.stderr
    changed = k.kubectl("diff", "-f", "-", input=llm("d", replicas=4), check=False)
    assert changed.returncode == 1 and "+  replicas: 4" in changed.stdout, changed.stdout + changed.stderr


def test_delete_waits_for_finalizers(k: APIServer) -> None:
    k.kubectl("create", "-f", "-", input=llm("fin", finalizers=["kubellm.io/test"]))
    done = threading.Event()
    result: dict[str, subprocess.CompletedProcess[str]] = {}

    def run() -> None:
        result["p"] = k.kubectl("delete", "llms", "fin", "-n", NS, "--timeout=30s", check=False)
        done.set()

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 20
    while not k.kubectl("get", "llms", "fin", "-n", NS, "-o", "jsonpath={.metadata.deletionTimestamp}").stdout:
        assert time.monotonic() < deadline, "the delete never marked the object"
        time.sleep(0.05)
    # marked for deletion and still held by its finalizer: kubectl delete must still be waiting
    assert not done.is_set(), "delete returned while a finalizer was pending"
    k.kubectl("patch", "llms", "fin", "-n", NS, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    t.join(30)
    assert result["p"].returncode == 0 and "deleted" in result["p"].stdout
    assert k.kubectl("get", "llms", "fin", "-n", NS, check=False).returncode == 1


def test_wait_for_jsonpath_and_watch(k: APIServer) -> None:
    k.kubectl("create", "-f", "-", input=llm("w"))
    watch = subprocess.Popen(["kubectl", "get", "llms", "-n", NS, "-w", "--request-timeout=20s"],
                             env={**os.environ, "KUBECONFIG": str(k.kubeconfig)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiter = subprocess.Popen(["kubectl", "wait", "llms/w", "-n", NS, "--for=jsonpath={.spec.replicas}=3",
                               "--timeout=20s"], env={**os.environ, "KUBECONFIG": str(k.kubeconfig)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert watch.stdout is not None
    lines = [watch.stdout.readline().split(), watch.stdout.readline().split()]  # the header, then w's row
    assert lines[0][:2] == ["NAME", "MODEL"] and lines[1][0] == "w", lines
    # the watch is established (it printed the initial list); kubectl wait sees the change whenever it starts
    k.kubectl("scale", "llms", "w", "-n", NS, "--replicas=3")
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0 and "condition met" in out, err
    lines.append(watch.stdout.readline().split())  # the change, as a new row
    watch.terminate()
    watch.communicate(timeout=10)
    assert lines[2][0] == "w" and "3" in lines[2][2:] and lines[1][2] == "1", lines


def test_bad_input_status_errors(k: APIServer) -> None:
    bad = textwrap.dedent(f"""
        apiVersion: model.kubellm.io/v1alpha1
        kind: LLMService
        metadata: {{name: bad, namespace: {NS}}}
        spec: {{model: ab, quantization: int3, maxModelLen: 256}}
    """)
    proc = k.kubectl("create", "-f", "-", input=bad, check=False)
    assert proc.returncode == 1
    assert 'The LLMService "bad" is invalid' in proc.stderr
    for text in ('spec.quantization: Unsupported value: "int3"', "spec.maxModelLen: Invalid value: 256",
                 'spec.model: Invalid value: "ab"'):
        assert text in proc.stderr, proc.stderr
    unknown = k.kubectl("create", "--validate=strict", "-f", "-", input=llm("u").replace("replicas: 1",
                                                                                           "replicas: 1\n  bogus: 1"),
                        check=False)
    assert unknown.returncode == 1 and 'unknown field "spec.bogus"' in unknown.stderr, unknown.stderr
