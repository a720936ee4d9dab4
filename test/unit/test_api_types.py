"""API types, defaults and validation of iam, cluster and model.kubellm.io/v1alpha1 (no I/O)."""

from __future__ import annotations

import base64
import copy
import inspect
from types import ModuleType
from typing import Any

import pytest

from kubellm.apis import errors
from kubellm.apis.base import APIModel
from kubellm.apis.cluster import v1alpha1 as clusterv1
from kubellm.apis.cluster.v1alpha1 import types as cluster_types
from kubellm.apis.codec import MAX_WARNINGS, FieldValidation, decode
from kubellm.apis.iam import v1alpha1 as iamv1
from kubellm.apis.iam.v1alpha1 import types as iam_types
from kubellm.apis.model import v1alpha1 as modelv1
from kubellm.apis.model.v1alpha1 import types as model_types
from kubellm.apis.scheme import ResourceInfo
from kubellm.apis.validation.field import ErrorList, ErrorType

CERT = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
KEY = base64.b64encode(b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n").decode()
NOW = "2025-01-02T03:04:05Z"


def msgs(errs: ErrorList) -> list[str]:
    return [str(e) for e in errs]


def by_kind() -> dict[str, ResourceInfo]:
    return {info.kind: info for info in [*iamv1.RESOURCES, *clusterv1.RESOURCES, *modelv1.RESOURCES]}


def check(kind: str, data: dict[str, Any]) -> list[str]:
    """Decode like the server (Warn) and return decode errors followed by semantic errors."""
    info = by_kind()[kind]
    decoded = decode(info.model, data)
    return msgs(decoded.field_errors) + msgs(info.validate(decoded.obj))


def check_update(kind: str, new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    info = by_kind()[kind]
    return msgs(info.validate_update(decode(info.model, new).obj, decode(info.model, old).obj))


def obj(kind: str, namespaced: bool, **body: Any) -> dict[str, Any]:
    group = by_kind()[kind].group
    meta: dict[str, Any] = {"name": "x1", **({"namespace": "default"} if namespaced else {})}
    return {"apiVersion": f"{group}/v1alpha1", "kind": kind, "metadata": meta, **body}


def llm(**spec: Any) -> dict[str, Any]:
    return obj("LLMService", True, spec={"model": "Qwen/Qwen2.5-3B-Instruct", **spec})


def rag(**spec: Any) -> dict[str, Any]:
    base = {"llmServiceRef": {"name": "qwen-3b"}, "embedding": {"model": "bge-small-zh"}}
    return obj("RAGService", True, spec={**base, **spec})


def cluster(**spec: Any) -> dict[str, Any]:
    base = {"apiEndpoint": "https://10.0.0.1:6443", "credentials": {"token": "abc.def"}}
    return obj("Cluster", False, spec={**base, **spec})


# --- valid objects: decode, defaults, no errors ---------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    "User": obj(
        "User",
        False,
        spec={
            "email": "alice@example.com",
            "displayName": "Alice",
            "groups": ["dev", "ops"],
            "password": "s3cret-Passw0rd",
        },
    ),
    "Role": obj(
        "Role",
        True,
        rules=[
            {
                "verbs": ["get", "list"],
                "apiGroups": ["model.kubellm.io"],
                "resources": ["llmservices"],
                "resourceNames": ["qwen"],
            }
        ],
    ),
    "ClusterRole": obj(
        "ClusterRole",
        False,
        rules=[
            {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/metrics"]},
            {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
        ],
        aggregationRule={
            "clusterRoleSelectors": [
                {"matchLabels": {"iam.kubellm.io/aggregate-to-admin": "true"}},
                {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}]},
            ]
        },
    ),
    "RoleBinding": obj(
        "RoleBinding",
        True,
        roleRef={"apiGroup": "iam.kubellm.io", "kind": "ClusterRole", "name": "system:llm-viewer"},
        subjects=[
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "dev"},
            {"kind": "ServiceAccount", "name": "default"},
        ],
    ),
    "ClusterRoleBinding": obj(
        "ClusterRoleBinding",
        False,
        roleRef={"kind": "ClusterRole", "name": "admin"},
        subjects=[{"kind": "ServiceAccount", "name": "ctl", "namespace": "kubellm-system"}],
    ),
    "LoginRecord": obj(
        "LoginRecord",
        False,
        spec={
            "username": "alice",
            "success": True,
            "reason": "Succeeded",
            "sourceIP": "10.1.2.3",
            "userAgent": "kubectl/v1.30",
            "time": NOW,
        },
    ),
    "Cluster": cluster(
        caBundle=CERT,
        region="cn-east",
        zone="cn-east-1a",
        provider="k3s",
        taints=[{"key": "gpu", "value": "a100", "effect": "NoSchedule"}],
    ),
    "LLMService": llm(
        hfEndpoint="https://hf-mirror.com",
        resources={"gpu": 2, "cpu": "4", "memory": "16Gi"},
        autoscaling={"minReplicas": 1, "maxReplicas": 3, "waitingThreshold": 5},
        placement={
            "clusterAffinity": {"clusterNames": ["gpu-a", "gpu-b"]},
            "clusterTolerations": [{"key": "gpu", "operator": "Exists"}],
            "replicaScheduling": {
                "replicaSchedulingType": "Divided",
                "replicaDivisionPreference": "Weighted",
                "weightPreference": {
                    "staticWeightList": [
                        {"targetCluster": {"clusterNames": ["gpu-a"]}, "weight": 2},
                        {"targetCluster": {"labelSelector": {"matchLabels": {"zone": "b"}}}, "weight": 1},
                    ]
                },
            },
        },
        extraArgs=["--enable-prefix-caching"],
        env=[{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}],
    ),
    "RAGService": rag(
        vectorStore={"type": "chromadb", "storage": "5Gi", "storageClassName": "longhorn"},
        sources=[
            {
                "name": "docs",
                "type": "git",
                "uri": "http://gitea:3000/bootcamp/docs.git",
                "refreshInterval": "5m",
            },
            {"name": "faq", "type": "configMap", "configMapRef": {"name": "faq"}},
            {"name": "site", "type": "url", "uri": "https://kubernetes.io/docs/"},
        ],
    ),
}


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_object_decodes_and_validates(kind: str) -> None:
    info = by_kind()[kind]
    decoded = decode(info.model, copy.deepcopy(VALID[kind]), FieldValidation.STRICT)
    assert decoded.field_errors == []
    assert decoded.warnings == []
    assert msgs(info.validate(decoded.obj)) == []
    assert msgs(info.validate_update(decoded.obj, decoded.obj)) == []
    # What was sent comes back under the same JSON names.
    out = decoded.obj.to_dict()
    for key in VALID[kind]:
        assert key in out


def test_every_resource_is_registered() -> None:
    kinds = by_kind()
    assert set(kinds) == set(VALID)
    assert iamv1.GROUP == "iam.kubellm.io"
    assert clusterv1.GROUP == "cluster.kubellm.io"
    assert modelv1.GROUP == "model.kubellm.io"
    expect = {  # kind: (group, plural, namespaced, has_status)
        "User": (iamv1.GROUP, "users", False, True),
        "Role": (iamv1.GROUP, "roles", True, False),
        "ClusterRole": (iamv1.GROUP, "clusterroles", False, False),
        "RoleBinding": (iamv1.GROUP, "rolebindings", True, False),
        "ClusterRoleBinding": (iamv1.GROUP, "clusterrolebindings", False, False),
        "LoginRecord": (iamv1.GROUP, "loginrecords", False, False),
        "Cluster": (clusterv1.GROUP, "clusters", False, True),
        "LLMService": (modelv1.GROUP, "llmservices", True, True),
        "RAGService": (modelv1.GROUP, "ragservices", True, True),
    }
    for kind, (group, plural, namespaced, has_status) in expect.items():
        info = kinds[kind]
        assert (info.group, info.version, info.plural, info.namespaced, info.has_status) == (
            group,
            "v1alpha1",
            plural,
            namespaced,
            has_status,
        ), kind
        assert info.singular == kind.lower()
        assert info.has_scale == (kind == "LLMService")
        assert "kubellm" in info.categories
        assert ("status" in info.model.model_fields) == has_status, kind
    assert kinds["LLMService"].short_names == ("llms",)
    assert kinds["RAGService"].short_names == ("rags",)


@pytest.mark.parametrize("module", [iam_types, cluster_types, model_types], ids=lambda m: m.__name__)
def test_every_model_constructs_without_arguments(module: ModuleType) -> None:
    models = [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, APIModel) and c.__module__ == module.__name__
    ]
    assert len(models) >= 5
    for cls in models:
        cls()  # no pydantic-required field anywhere
        decode(cls, {})


def test_llmservice_defaults() -> None:
    spec = decode(modelv1.LLMService, llm()).obj.spec
    assert spec.max_model_len == 2048
    assert spec.gpu_memory_utilization == "0.85"
    assert spec.replicas == 1
    assert spec.quantization == ""
    assert spec.image == "" and spec.hf_endpoint == ""
    assert spec.autoscaling is None and spec.placement is None and spec.resources is None
    auto = decode(modelv1.LLMService, llm(autoscaling={"maxReplicas": 3})).obj.spec.autoscaling
    assert auto is not None
    assert (auto.enabled, auto.min_replicas, auto.max_replicas, auto.waiting_threshold) == (True, 1, 3, 5)
    out = decode(modelv1.LLMService, llm()).obj.to_dict()["spec"]
    assert out["maxModelLen"] == 2048 and out["gpuMemoryUtilization"] == "0.85"


def test_other_defaults() -> None:
    r = decode(modelv1.RAGService, rag()).obj.spec
    assert (r.chunking.chunk_size, r.chunking.chunk_overlap, r.retrieval.top_k, r.replicas) == (512, 64, 4, 1)
    assert r.vector_store.type == "chromadb"
    u = decode(iamv1.User, VALID["User"]).obj
    assert u.spec.state == "Active" and u.spec.password_hash is None and u.status is None
    rb = decode(iamv1.RoleBinding, VALID["RoleBinding"]).obj
    assert [s.api_group for s in rb.subjects] == ["iam.kubellm.io", "iam.kubellm.io", ""]
    crb = decode(iamv1.ClusterRoleBinding, VALID["ClusterRoleBinding"]).obj
    assert crb.role_ref.api_group == "iam.kubellm.io"
    c = decode(clusterv1.Cluster, cluster()).obj
    assert c.spec.unschedulable is False and c.spec.insecure_skip_tls_verify is False


# --- the bad LLMService: every problem at once ------------------------------------------------------


def test_bad_llmservice_reports_every_error() -> None:
    data = llm(
        model="ab",
        quantization="int3",
        maxModelLen=256,
        replicas="three",
        autoscaling={"minReplicas": 5, "maxReplicas": 2},
    )
    assert check("LLMService", data) == [
        'spec.replicas: Invalid value: "three": must be of type integer',
        'spec.model: Invalid value: "ab": must be at least 3 characters',
        'spec.quantization: Unsupported value: "int3": supported values: "awq", "fp8", "gptq"',
        "spec.maxModelLen: Invalid value: 256: must be greater than or equal to 512",
        "spec.autoscaling.minReplicas: Invalid value: 5: must be less than or equal to "
        "spec.autoscaling.maxReplicas",
    ]
    decoded = decode(modelv1.LLMService, data)
    assert decoded.field_errors[0].type is ErrorType.TYPE_INVALID
    kinds = [e.type for e in modelv1.validate_llm_service(decoded.obj)]
    assert kinds == [ErrorType.INVALID, ErrorType.NOT_SUPPORTED, ErrorType.INVALID, ErrorType.INVALID]


def test_llmservice_field_rules() -> None:
    assert check("LLMService", obj("LLMService", True, spec={})) == ["spec.model: Required value"]
    assert check("LLMService", llm(quantization="awq", maxModelLen=512, replicas=0)) == []
    assert check("LLMService", llm(replicas=-1)) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    ]
    assert check("LLMService", llm(model="Qwen 2")) == [
        'spec.model: Invalid value: "Qwen 2": must not contain whitespace'
    ]
    assert check("LLMService", llm(hfEndpoint="hf-mirror.com")) == [
        'spec.hfEndpoint: Invalid value: "hf-mirror.com": must be an absolute URL with scheme http or https'
    ]
    assert check("LLMService", llm(autoscaling={"minReplicas": 0, "waitingThreshold": 0})) == [
        "spec.autoscaling.minReplicas: Invalid value: 0: must be greater than or equal to 1",
        "spec.autoscaling.maxReplicas: Required value",
        "spec.autoscaling.waitingThreshold: Invalid value: 0: must be greater than or equal to 1",
    ]
    assert check("LLMService", llm(resources={"gpu": 0, "cpu": "four", "memory": "16Gi"})) == [
        "spec.resources.gpu: Invalid value: 0: must be greater than or equal to 1",
        'spec.resources.cpu: Invalid value: "four": must be a quantity such as "500m", "4" or "16Gi"',
    ]
    assert check("LLMService", llm(extraArgs=["--max_model_len=4096", "--trust-remote-code"])) == [
        'spec.extraArgs[0]: Invalid value: "--max_model_len=4096": --max-model-len is set by the server '
        "from spec.maxModelLen"
    ]
    assert check("LLMService", llm(env=[{"value": "x"}, {"name": "1BAD"}])) == [
        "spec.env[0].name: Required value",
        'spec.env[1].name: Invalid value: "1BAD": a valid environment variable name must consist of '
        "alphabetic characters, digits, '_', '-', or '.', and must not start with a digit "
        "(e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', "
        "regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
    ]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("0.85", None),
        ("1", None),
        ("1.0", None),
        (".5", None),
        ("0.05", None),
        ("0", "must be greater than 0 and less than or equal to 1"),
        ("1.01", "must be greater than 0 and less than or equal to 1"),
        ("-0.5", 'must be a decimal number such as "0.85"'),
        ("85%", 'must be a decimal number such as "0.85"'),
        ("1e-1", 'must be a decimal number such as "0.85"'),
    ],
)
def test_gpu_memory_utilization(value: str, error: str | None) -> None:
    expected = [] if error is None else [f'spec.gpuMemoryUtilization: Invalid value: "{value}": {error}']
    assert check("LLMService", llm(gpuMemoryUtilization=value)) == expected


def test_gpu_memory_utilization_explicit_empty_is_required() -> None:
    assert check("LLMService", llm(gpuMemoryUtilization="")) == ["spec.gpuMemoryUtilization: Required value"]


def test_placement_rules() -> None:
    rs = "spec.placement.replicaScheduling"
    assert check(
        "LLMService",
        llm(
            placement={
                "replicaScheduling": {
                    "replicaSchedulingType": "Spread",
                    "replicaDivisionPreference": "Random",
                }
            }
        ),
    ) == [
        f'{rs}.replicaSchedulingType: Unsupported value: "Spread": supported values: "Divided", "Duplicated"',
        f'{rs}.replicaDivisionPreference: Unsupported value: "Random": supported values: "Aggregated", '
        '"Weighted"',
    ]
    assert check(
        "LLMService",
        llm(
            placement={
                "replicaScheduling": {
                    "replicaSchedulingType": "Duplicated",
                    "replicaDivisionPreference": "Weighted",
                    "weightPreference": {"dynamicWeight": "AvailableReplicas"},
                }
            }
        ),
    ) == [
        f"{rs}.replicaDivisionPreference: Forbidden: may only be set when replicaSchedulingType is Divided",
        f"{rs}.weightPreference: Forbidden: may only be set when replicaSchedulingType is Divided and "
        "replicaDivisionPreference is Weighted",
    ]
    assert check(
        "LLMService",
        llm(
            placement={
                "replicaScheduling": {
                    "weightPreference": {
                        "staticWeightList": [
                            {"targetCluster": {}, "weight": 0},
                            {"targetCluster": {"clusterNames": ["GPU_A", "b", "b"]}},
                        ]
                    }
                }
            }
        ),
    ) == [
        f"{rs}.weightPreference.staticWeightList[0].targetCluster: Required value: must specify clusterNames "
        "or labelSelector",
        f"{rs}.weightPreference.staticWeightList[0].weight: Invalid value: 0: must be greater than or equal "
        "to 1",
        f'{rs}.weightPreference.staticWeightList[1].targetCluster.clusterNames[0]: Invalid value: "GPU_A": '
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
        "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        f'{rs}.weightPreference.staticWeightList[1].targetCluster.clusterNames[2]: Duplicate value: "b"',
    ]
    assert check("LLMService", llm(placement={"replicaScheduling": {"weightPreference": {}}})) == [
        f"{rs}.weightPreference: Required value: must specify staticWeightList or dynamicWeight"
    ]
    errs = check(
        "LLMService",
        llm(
            placement={
                "clusterAffinity": {
                    "labelSelector": {
                        "matchExpressions": [
                            {"key": "zone", "operator": "Exists", "values": ["a"]},
                            {"key": "tier", "operator": "In"},
                        ]
                    }
                },
                "clusterTolerations": [
                    {"operator": "Equal", "value": "x"},
                    {"key": "gpu", "effect": "Evict"},
                ],
            }
        ),
    )
    assert errs == [
        "spec.placement.clusterAffinity.labelSelector.matchExpressions[0].values: Forbidden: may not be "
        "specified when `operator` is 'Exists' or 'DoesNotExist'",
        "spec.placement.clusterAffinity.labelSelector.matchExpressions[1].values: Required value: must be "
        "specified when `operator` is 'In' or 'NotIn'",
        'spec.placement.clusterTolerations[0].operator: Invalid value: "Equal": operator must be Exists when '
        '`key` is empty, which means "match all values and all keys"',
        'spec.placement.clusterTolerations[1].effect: Unsupported value: "Evict": supported values: '
        '"NoExecute", "NoSchedule", "PreferNoSchedule"',
    ]


def test_llmservice_status_rules() -> None:
    good = llm()
    good["status"] = {
        "phase": "Serving",
        "endpoint": "http://x1.default.svc:8000/v1",
        "replicas": 2,
        "readyReplicas": 2,
        "selector": "app=x1",
        "observedGeneration": 3,
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "AllReplicasReady", "lastTransitionTime": NOW}
        ],
        "clusters": [{"name": "gpu-a", "replicas": 2, "readyReplicas": 2, "phase": "Serving"}],
    }
    assert check("LLMService", good) == []
    bad = llm()
    bad["status"] = {
        "phase": "Running",
        "replicas": 1,
        "readyReplicas": 2,
        "conditions": [
            {"type": "Ready", "status": "Yes", "reason": "not ok"},
            {"type": "Ready", "status": "True", "reason": "Ok", "lastTransitionTime": "yesterday"},
        ],
        "clusters": [{"name": "a"}, {"name": "a", "phase": "Up"}],
    }
    assert check("LLMService", bad) == [
        'status.phase: Unsupported value: "Running": supported values: "Failed", "Loading", "Pending", '
        '"Scaling", "Serving"',
        "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
        'status.conditions[0].status: Unsupported value: "Yes": supported values: "False", "True", "Unknown"',
        "status.conditions[0].lastTransitionTime: Required value: must be set",
        'status.conditions[0].reason: Invalid value: "not ok": a condition reason must start with alphabetic '
        "character, optionally followed by a string of alphanumeric characters or '_,:', and must end with "
        "an alphanumeric character or '_'",
        'status.conditions[1].type: Duplicate value: "Ready"',
        'status.conditions[1].lastTransitionTime: Invalid value: "yesterday": must be an RFC3339 timestamp '
        'such as "2006-01-02T15:04:05Z"',
        'status.clusters[1].name: Duplicate value: "a"',
        'status.clusters[1].phase: Unsupported value: "Up": supported values: "Failed", "Loading", '
        '"Pending", "Removing", "Scaling", "Serving"',
    ]


def test_llmservice_name_rule() -> None:
    assert modelv1.dns1035_label("qwen-3b") == []
    assert len(modelv1.dns1035_label("3b-qwen")) == 1
    assert modelv1.dns1035_label("a" * 64)[0] == "must be no more than 63 characters"


# --- unknown fields -------------------------------------------------------------------------------


def test_unknown_fields_follow_field_validation() -> None:
    data = llm(foo=1)
    data["bar"] = True
    warned = decode(modelv1.LLMService, copy.deepcopy(data), FieldValidation.WARN)
    assert sorted(warned.warnings) == ['unknown field "bar"', 'unknown field "spec.foo"']
    assert warned.field_errors == []
    assert "foo" not in warned.obj.to_dict()["spec"]
    ignored = decode(modelv1.LLMService, copy.deepcopy(data), FieldValidation.IGNORE)
    assert ignored.warnings == [] and ignored.field_errors == []
    with pytest.raises(errors.StatusError) as exc:
        decode(modelv1.LLMService, copy.deepcopy(data), FieldValidation.STRICT)
    assert exc.value.code == 400 and exc.value.reason == "BadRequest"
    assert 'unknown field "spec.foo"' in exc.value.message
    # A misspelt name is unknown and leaves the default in place.
    typo = decode(modelv1.LLMService, llm(maxModelLength=4096))
    assert typo.warnings == ['unknown field "spec.maxModelLength"']
    assert typo.obj.spec.max_model_len == 2048


def test_unknown_field_warnings_are_quoted_as_go_does_and_bounded() -> None:
    """Found by the schema fuzzer: a field name with a newline or control character made a Warning header aiohttp
    refuses to write (the connection was dropped), and a hundred unknown fields made more headers than HTTP
    clients read. Names are quoted as Go's %q (kube-apiserver's messages), and warnings are capped."""
    data = llm(**{"a\nb": 1, "c\x1d\"d": 2, "é": 3})
    warned = decode(modelv1.LLMService, data, FieldValidation.WARN).warnings
    assert sorted(warned) == ['unknown field "spec.a\\nb"', 'unknown field "spec.c\\x1d\\"d"',
                              'unknown field "spec.é"']
    assert all(c.isprintable() for w in warned for c in w)
    many = decode(modelv1.LLMService, llm(**{f"f{i}": i for i in range(100)}), FieldValidation.WARN).warnings
    assert len(many) == MAX_WARNINGS and many[-1] == f"and {100 - MAX_WARNINGS + 1} more unknown fields"
    with pytest.raises(errors.StatusError) as exc:
        decode(modelv1.LLMService, llm(**{f"f{i}": i for i in range(100)}), FieldValidation.STRICT)
    assert exc.value.message.count("unknown field") == 100  # an error body lists them all


def test_special_json_names() -> None:
    c = decode(clusterv1.Cluster, cluster(insecureSkipTLSVerify=True), FieldValidation.STRICT).obj
    assert c.spec.insecure_skip_tls_verify is True
    assert "insecureSkipTLSVerify" in c.to_dict()["spec"]
    r = decode(iamv1.ClusterRole, VALID["ClusterRole"], FieldValidation.STRICT).obj
    assert r.rules[0].non_resource_urls == ["/healthz", "/metrics"]
    assert r.to_dict()["rules"][0]["nonResourceURLs"] == ["/healthz", "/metrics"]
    lr = decode(iamv1.LoginRecord, VALID["LoginRecord"], FieldValidation.STRICT).obj
    assert lr.to_dict()["spec"]["sourceIP"] == "10.1.2.3"


# --- RBAC -----------------------------------------------------------------------------------------


def test_role_rules() -> None:
    assert check(
        "Role",
        obj(
            "Role",
            True,
            rules=[
                {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
                {"apiGroups": [""], "resources": ["pods"]},
                {"verbs": ["get"]},
            ],
        ),
    ) == [
        'rules[0].nonResourceURLs: Invalid value: ["/healthz"]: namespaced rules cannot apply to '
        "non-resource URLs",
        "rules[1].verbs: Required value: verbs must contain at least one value",
        "rules[2].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[2].resources: Required value: resource rules must supply at least one resource",
    ]


def test_cluster_role_rules() -> None:
    assert check(
        "ClusterRole",
        obj(
            "ClusterRole",
            False,
            rules=[
                {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
                {"verbs": ["get"], "nonResourceURLs": ["/metrics"], "apiGroups": [""], "resources": ["pods"]},
            ],
        ),
    ) == [
        'rules[1].nonResourceURLs: Invalid value: ["/metrics"]: rules cannot apply to both regular resources '
        "and non-resource URLs",
    ]
    assert check("ClusterRole", obj("ClusterRole", False, aggregationRule={})) == [
        "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if "
        "aggregationRule is non-nil"
    ]
    assert check(
        "ClusterRole",
        obj(
            "ClusterRole",
            False,
            aggregationRule={
                "clusterRoleSelectors": [{"matchExpressions": [{"key": "a", "operator": "Near"}]}]
            },
        ),
    ) == [
        'aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator: Invalid value: "Near": not a '
        "valid selector operator"
    ]


def test_bindings() -> None:
    assert check(
        "RoleBinding",
        obj(
            "RoleBinding",
            True,
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Policy"},
            subjects=[
                {"kind": "Robot", "name": "r"},
                {"kind": "User"},
                {"kind": "ServiceAccount", "name": "sa", "apiGroup": "iam.kubellm.io"},
                {"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"},
            ],
        ),
    ) == [  # in the order of the fields: subjects, then roleRef
        'subjects[0].kind: Unsupported value: "Robot": supported values: "Group", "ServiceAccount", "User"',
        "subjects[1].name: Required value",
        'subjects[2].apiGroup: Unsupported value: "iam.kubellm.io": supported values: ""',
        'subjects[3].apiGroup: Unsupported value: "rbac.authorization.k8s.io": supported values: '
        '"iam.kubellm.io"',
        'roleRef.apiGroup: Unsupported value: "rbac.authorization.k8s.io": supported values: '
        '"iam.kubellm.io"',
        'roleRef.kind: Unsupported value: "Policy": supported values: "ClusterRole", "Role"',
        "roleRef.name: Required value",
    ]
    assert check(
        "ClusterRoleBinding",
        obj(
            "ClusterRoleBinding",
            False,
            roleRef={"kind": "Role", "name": "a/b"},
            subjects=[{"kind": "ServiceAccount", "name": "sa"}],
        ),
    ) == [
        "subjects[0].namespace: Required value",
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "roleRef.name: Invalid value: \"a/b\": may not contain '/'",
    ]
    assert iamv1.rbac_name("system:controller:foo") == []
    assert iamv1.rbac_name("..") == ["may not be '..'"]


@pytest.mark.parametrize("kind", ["RoleBinding", "ClusterRoleBinding"])
def test_role_ref_is_immutable(kind: str) -> None:
    old = copy.deepcopy(VALID[kind])
    new = copy.deepcopy(old)
    new["subjects"] = [{"kind": "User", "name": "bob"}]
    assert check_update(kind, new, old) == []  # subjects may change
    new["roleRef"]["name"] = "other"
    assert check_update(kind, new, old) == [
        'roleRef: Invalid value: {"apiGroup":"iam.kubellm.io","kind":"ClusterRole","name":"other"}: '
        "cannot change roleRef"
    ]


# --- Cluster --------------------------------------------------------------------------------------


def test_cluster_credentials_rule() -> None:
    no_creds = cluster()
    del no_creds["spec"]["credentials"]
    assert check("Cluster", no_creds) == [
        "spec.credentials: Required value: must specify token, or clientCertificate and clientKey"
    ]
    assert check("Cluster", cluster(credentials={})) == [
        "spec.credentials: Required value: must specify token, or clientCertificate and clientKey"
    ]
    assert check("Cluster", cluster(credentials={"clientCertificate": CERT, "clientKey": KEY})) == []
    assert (
        check("Cluster", cluster(credentials={"token": "t", "clientCertificate": CERT, "clientKey": KEY}))
        == []
    )
    assert check("Cluster", cluster(credentials={"clientCertificate": CERT})) == [
        "spec.credentials.clientKey: Required value: must be set when clientCertificate is set"
    ]
    assert check("Cluster", cluster(credentials={"clientKey": KEY})) == [
        "spec.credentials.clientCertificate: Required value: must be set when clientKey is set"
    ]
    # Secrets are never echoed back in errors.
    errs = check(
        "Cluster",
        cluster(credentials={"token": "sec ret\n", "clientCertificate": CERT, "clientKey": "PRIVATE KEY!"}),
    )
    assert errs == [
        "spec.credentials.token: Invalid value: must consist of printable ASCII characters without "
        "whitespace",
        "spec.credentials.clientKey: Invalid value: must be base64-encoded PEM data",
    ]
    assert not any("sec ret" in e or "PRIVATE" in e for e in errs)


def test_cluster_spec_rules() -> None:
    assert check("Cluster", cluster(apiEndpoint="")) == ["spec.apiEndpoint: Required value"]
    assert check("Cluster", cluster(apiEndpoint="http://10.0.0.1:6443")) == [
        'spec.apiEndpoint: Invalid value: "http://10.0.0.1:6443": must be an absolute URL with scheme https'
    ]
    assert check("Cluster", cluster(apiEndpoint="https://admin:pw@k8s.example.com?x=1")) == [
        'spec.apiEndpoint: Invalid value: "https://admin:pw@k8s.example.com?x=1": user information is not '
        "permitted in the URL",
        'spec.apiEndpoint: Invalid value: "https://admin:pw@k8s.example.com?x=1": query parameters are not '
        "permitted",
    ]
    assert check(
        "Cluster",
        cluster(
            caBundle="not base64!",
            insecureSkipTLSVerify=True,
            region="cn east",
            taints=[
                {"key": "gpu", "effect": "NoSchedule"},
                {"key": "gpu", "effect": "NoSchedule"},
                {"key": "x"},
            ],
        ),
    ) == [
        'spec.caBundle: Invalid value: "not base64!": must be base64-encoded PEM data',
        "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present",
        'spec.region: Invalid value: "cn east": a valid label must be an empty string or consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        'spec.taints[1]: Duplicate value: {"effect":"NoSchedule","key":"gpu","value":""}: taints must be '
        "unique by key and effect pair",
        "spec.taints[2].effect: Required value",
    ]


def test_cluster_status_rules() -> None:
    good = cluster()
    good["status"] = {
        "kubernetesVersion": "v1.30.2",
        "nodeCount": 3,
        "lastProbeTime": "2025-01-02T03:04:05.123456789+08:00",
        "gpus": [{"model": "NVIDIA A100-SXM4-80GB", "memoryMiB": 81920, "nodes": 2, "count": 8, "allocatable": 6,
                  "available": 4, "largestFree": 3}],
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "ClusterReady", "lastTransitionTime": NOW}
        ],
    }
    assert check("Cluster", good) == []
    bad = cluster()
    bad["status"] = {
        "nodeCount": -1,
        "lastProbeTime": "2025-13-02T03:04:05Z",
        "gpus": [{"count": 2, "allocatable": 3}, {"model": "T4", "allocatable": 2, "available": 3, "largestFree": 1},
                 {"model": "T4", "count": 4, "allocatable": 4, "available": 1, "largestFree": 2}],
    }
    assert check("Cluster", bad) == [
        "status.nodeCount: Invalid value: -1: must be greater than or equal to 0",
        "status.gpus[0].model: Required value",
        "status.gpus[0].allocatable: Invalid value: 3: must be less than or equal to status.gpus[0].count",
        "status.gpus[1].allocatable: Invalid value: 2: must be less than or equal to status.gpus[1].count",
        "status.gpus[1].available: Invalid value: 3: must be less than or equal to status.gpus[1].allocatable",
        'status.gpus[2].model: Duplicate value: "T4"',
        "status.gpus[2].largestFree: Invalid value: 2: must be less than or equal to status.gpus[2].available",
        'status.lastProbeTime: Invalid value: "2025-13-02T03:04:05Z": must be an RFC3339 timestamp such as '
        '"2006-01-02T15:04:05Z"',
    ]


# --- User, LoginRecord ----------------------------------------------------------------------------


def test_user_rules() -> None:
    assert check("User", obj("User", False, spec={})) == ["spec.email: Required value"]
    assert check(
        "User",
        obj("User", False, spec={"email": "alice@localhost", "groups": ["a", "", "a"], "state": "LockedOut"}),
    ) == [
        'spec.email: Invalid value: "alice@localhost": must be a valid email address',
        'spec.groups[1]: Invalid value: "": must not be empty',
        'spec.groups[2]: Duplicate value: "a"',
        'spec.state: Unsupported value: "LockedOut": supported values: "Active", "Disabled"',
    ]
    locked = copy.deepcopy(VALID["User"])
    locked["status"] = {"state": "LockedOut", "lockedUntil": NOW, "failedLoginCount": 5}
    assert check("User", locked) == []
    locked["status"] = {"state": "Banned", "failedLoginCount": -1}
    assert check("User", locked) == [
        'status.state: Unsupported value: "Banned": supported values: "Active", "Disabled", "LockedOut"',
        "status.failedLoginCount: Invalid value: -1: must be greater than or equal to 0",
    ]


def test_login_record_rules() -> None:
    assert check("LoginRecord", obj("LoginRecord", False, spec={})) == ["spec.username: Required value"]
    assert check(
        "LoginRecord",
        obj(
            "LoginRecord",
            False,
            spec={
                "username": "bob",
                "success": True,
                "reason": "BadCredentials",
                "sourceIP": "10.0.0.300",
                "time": "now",
            },
        ),
    ) == [
        'spec.reason: Invalid value: "BadCredentials": must be "Succeeded" when success is true',
        'spec.sourceIP: Invalid value: "10.0.0.300": must be a valid IP address',
        'spec.time: Invalid value: "now": must be an RFC3339 timestamp such as "2006-01-02T15:04:05Z"',
    ]
    assert check("LoginRecord", obj("LoginRecord", False, spec={"username": "bob", "reason": "Hacked"})) == [
        'spec.reason: Unsupported value: "Hacked": supported values: "BadCredentials", "Disabled", '
        '"LockedOut", '
        '"Succeeded", "Throttled", "UnknownUser"'
    ]
    old = VALID["LoginRecord"]
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["labels"] = {"reviewed": "true"}
    assert check_update("LoginRecord", relabelled, old) == []
    forged = copy.deepcopy(old)
    forged["spec"]["sourceIP"] = "10.9.9.9"
    assert check_update("LoginRecord", forged, old) == ["spec: Forbidden: login records are immutable"]


# --- RAGService -----------------------------------------------------------------------------------


def test_rag_service_rules() -> None:
    assert check("RAGService", obj("RAGService", True, spec={})) == [
        "spec.llmServiceRef.name: Required value",
        "spec.embedding.model: Required value",
    ]
    assert check(
        "RAGService",
        rag(
            llmServiceRef={"name": "Qwen_3b"},
            embedding={"model": "m", "dimension": 0},
            vectorStore={"type": "milvus"},
            chunking={"chunkSize": 256, "chunkOverlap": 256},
            retrieval={"topK": 101},
            replicas=-1,
        ),
    )[1:] == [
        "spec.embedding.dimension: Invalid value: 0: must be greater than or equal to 1",
        'spec.vectorStore.endpoint: Required value: must be set when type is "milvus"',
        "spec.chunking.chunkOverlap: Invalid value: 256: must be less than spec.chunking.chunkSize",
        "spec.retrieval.topK: Invalid value: 101: must be less than or equal to 100",
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    ]
    assert check("RAGService", rag(vectorStore={"type": "faiss"})) == [
        'spec.vectorStore.type: Unsupported value: "faiss": supported values: "chromadb", "milvus", '
        '"pgvector", '
        '"qdrant", "weaviate"'
    ]
    assert (
        check(
            "RAGService",
            rag(vectorStore={"type": "milvus", "endpoint": "milvus-proxy:19530", "collection": "docs_v1"}),
        )
        == []
    )
    assert check(
        "RAGService",
        rag(
            sources=[
                {"name": "a", "type": "s3", "uri": "https://bucket/x"},
                {"name": "a", "type": "configMap", "uri": "x"},
                {"name": "c", "type": "ftp"},
                {"name": "d", "type": "url", "refreshInterval": "5 minutes"},
            ]
        ),
    ) == [
        'spec.sources[0].uri: Invalid value: "https://bucket/x": must be an absolute URL with scheme s3',
        'spec.sources[1].name: Duplicate value: "a"',
        "spec.sources[1].uri: Forbidden: may not be set when type is configMap",
        "spec.sources[1].configMapRef.name: Required value: must be set when type is configMap",
        'spec.sources[2].type: Unsupported value: "ftp": supported values: "configMap", "git", "s3", "url"',
        "spec.sources[3].uri: Required value: must be set when type is url",
        'spec.sources[3].refreshInterval: Invalid value: "5 minutes": must be a duration such as "30s", '
        '"5m" or "1h"',
    ]


def test_rag_service_update_immutability() -> None:
    old = rag(embedding={"model": "bge-small-zh", "dimension": 512})
    new = copy.deepcopy(old)
    new["spec"]["llmServiceRef"]["name"] = "qwen-7b"
    new["spec"]["retrieval"] = {"topK": 8}
    assert check_update("RAGService", new, old) == []
    new["spec"]["embedding"] = {"model": "bge-large-zh", "dimension": 1024}
    new["spec"]["vectorStore"] = {"type": "qdrant", "endpoint": "http://qdrant:6333"}
    assert check_update("RAGService", new, old) == [
        'spec.embedding.model: Invalid value: "bge-large-zh": field is immutable',
        "spec.embedding.dimension: Invalid value: 1024: field is immutable",
        'spec.vectorStore.type: Invalid value: "qdrant": field is immutable',
    ]


# --- wiring ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(VALID))
def test_update_revalidates_the_new_object(kind: str) -> None:
    info = by_kind()[kind]
    good = decode(info.model, copy.deepcopy(VALID[kind])).obj
    breakage: dict[str, dict[str, Any]] = {
        "User": {"spec": {"email": "nope"}},
        "Role": {"rules": [{}]},
        "ClusterRole": {"rules": [{}]},
        "RoleBinding": {"subjects": [{"kind": "Nobody"}]},
        "ClusterRoleBinding": {"subjects": [{"kind": "Nobody"}]},
        "LoginRecord": {"spec": {}},
        "Cluster": {"spec": {}},
        "LLMService": {"spec": {}},
        "RAGService": {"spec": {}},
    }
    data = copy.deepcopy(VALID[kind])
    data.update(breakage[kind])
    bad = decode(info.model, data).obj
    assert info.validate(bad), kind
    assert info.validate_update(bad, good), kind
