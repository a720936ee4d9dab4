"""The objects an LLMService puts on a member cluster, as plain dicts for server-side apply.

On each member cluster that the placement gives replicas, the controller applies (field manager
`kubellm-controller`) the namespace, the vLLM Deployment exactly as the operator KubeLLM replaces built it
(`desiredDeployment`: the arguments in its order, `strategy: Recreate`, `runtimeClassName: nvidia`, the
`nvidia.com/gpu` limit, `HF_ENDPOINT`, the `hf-cache` hostPath and the 4Gi in-memory `/dev/shm`), a ClusterIP
Service on port 8000 named after the LLMService, and with autoscaling an `autoscaling/v2` HPA on the External
metric `vllm_num_requests_waiting` selected by `deployment: <name>` (`desiredHPA`), which the pods carry as a
label so the metric's series (the pods' labels) match it.

What an applied configuration holds is what the field manager owns, so these functions set only the fields the
controller decides: never status, and no `spec.replicas` on an autoscaled Deployment once the HPA has taken the
field over (`apply_replicas`, `include_replicas=False`), so the two do not fight over it. Owner references
cannot cross clusters: every object but the namespace (which LLMServices and RAGServices of one namespace share)
carries the `kubellm.io/owner` annotations naming the object it belongs to.

Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kubellm.apis.model.v1alpha1.types import DEFAULT_GPU_MEMORY_UTILIZATION, DEFAULT_MAX_MODEL_LEN
from kubellm.apis.validation.names import DNS1123_LABEL_MAX

Obj = dict[str, Any]

FIELD_MANAGER = "kubellm-controller"
MANAGED_BY = "kubellm"

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
DEPLOYMENT_LABEL = "deployment"
"""On the vLLM pods: the HPA's metric selector (`deployment: <name>`, as the operator's HPA) matches it."""

OWNER_ANNOTATION = "kubellm.io/owner"
OWNER_KIND_ANNOTATION = "kubellm.io/owner-kind"
OWNER_UID_ANNOTATION = "kubellm.io/owner-uid"

APP_NAME = "vllm"
CONTAINER = "vllm"
PORT = 8000
PORT_NAME = "http"
METRIC = "vllm_num_requests_waiting"
GPU_RESOURCE = "nvidia.com/gpu"
RUNTIME_CLASS = "nvidia"
HEALTH_PATH = "/health"
HF_CACHE_VOLUME = "hf-cache"
HF_CACHE_MOUNT = "/root/.cache/huggingface"
"""Where vLLM (Hugging Face hub, as root in the vllm-openai image) keeps downloaded weights."""
SHM_VOLUME = "dshm"
SHM_SIZE = "4Gi"

DEFAULT_VLLM_IMAGE = "docker.m.daocloud.io/vllm/vllm-openai:v0.6.5"
"""The operator's default image (kubebuilder default), also the API server's default."""
DEFAULT_HF_ENDPOINT = "https://hf-mirror.com"
DEFAULT_HF_CACHE_PATH = "/var/lib/kubellm/hf-cache"

PROBE_PERIOD = 10
READINESS_FAILURES = 3
STARTUP_FAILURES = 180
"""The startup probe gives 30 minutes (180 times 10 s) to download and load the weights before the kubelet restarts
the container; the readiness probe takes over once it passed."""

APPS_V1 = "apps/v1"
CORE_V1 = "v1"
AUTOSCALING_V2 = "autoscaling/v2"


@dataclass(frozen=True)
class HFCache:
    """The `hf-cache` volume: a directory of the node (the operator's hostPath), or a claim when set."""

    host_path: str = DEFAULT_HF_CACHE_PATH
    claim_name: str = ""
    """A PersistentVolumeClaim in the LLMService's namespace on the member, instead of the hostPath."""

    def volume(self) -> Obj:
        if self.claim_name:
            return {"name": HF_CACHE_VOLUME, "persistentVolumeClaim": {"claimName": self.claim_name}}
        return {"name": HF_CACHE_VOLUME, "hostPath": {"path": self.host_path, "type": "DirectoryOrCreate"}}


@dataclass(frozen=True)
class LLMSettings:
    """What the controller fills in where a spec leaves it empty (the API server's defaults, normally already
    written into the spec) and where the model cache lives."""

    image: str = DEFAULT_VLLM_IMAGE
    hf_endpoint: str = DEFAULT_HF_ENDPOINT
    hf_cache: HFCache = field(default_factory=HFCache)


class ObjectId(NamedTuple):
    """The identity of an object on a member cluster."""

    api_version: str
    kind: str
    namespace: str
    name: str


# --- metadata helpers (shared with the RAGService objects) ----------------------------------------


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name") or "")


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("namespace") or "")


def owner_annotations(owner: Mapping[str, Any], kind: str) -> dict[str, str]:
    """`kubellm.io/owner: <ns>/<name>`, the owner's kind and, when it has one, its UID."""
    meta = _meta(owner)
    out = {OWNER_ANNOTATION: f"{namespace_of(owner)}/{name_of(owner)}", OWNER_KIND_ANNOTATION: kind}
    if meta.get("uid"):
        out[OWNER_UID_ANNOTATION] = str(meta["uid"])
    return out


def child_name(base: str, suffix: str = "", maximum: int = DNS1123_LABEL_MAX) -> str:
    """`<base>-<suffix>` (or `base`) when it fits in `maximum` characters; otherwise `base` cut short plus a
    hash of the whole name, so the result stays a DNS label, deterministic and distinct for distinct inputs."""
    full = f"{base}-{suffix}" if suffix else base
    if len(full) <= maximum:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    tail = f"-{suffix}-{digest}" if suffix else f"-{digest}"
    keep = max(0, maximum - len(tail))
    head = base[:keep].rstrip("-.")
    if len(tail) > maximum or not head:  # an absurd suffix: keep the name valid anyway
        return f"x{digest}"[:maximum]
    return head + tail


def selector_string(labels: Mapping[str, str]) -> str:
    """The label selector `k1=v1,k2=v2` with keys sorted, as `labels.SelectorFromSet(...).String()`."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def namespace_object(namespace: str) -> Obj:
    """The namespace, bare: applying it only makes sure it exists (it is shared, so it has no owner)."""
    return {"apiVersion": CORE_V1, "kind": "Namespace", "metadata": {"name": namespace}}


def identity(obj: Mapping[str, Any]) -> ObjectId:
    return ObjectId(str(obj["apiVersion"]), str(obj["kind"]), namespace_of(obj), name_of(obj))


# --- LLMService --------------------------------------------------------------------------------


def selector_labels(llm: Mapping[str, Any]) -> dict[str, str]:
    """The Deployment's (immutable) selector, and the Service's: name, instance and managed-by."""
    return {NAME_LABEL: APP_NAME, INSTANCE_LABEL: name_of(llm), MANAGED_BY_LABEL: MANAGED_BY}


def status_selector(llm: Mapping[str, Any]) -> str:
    """`status.selector` of the LLMService, for its scale subresource."""
    return selector_string(selector_labels(llm))


def pod_labels(llm: Mapping[str, Any]) -> dict[str, str]:
    """The selector labels plus `deployment: <name>`, which the HPA's metric selector matches."""
    return {**selector_labels(llm), DEPLOYMENT_LABEL: name_of(llm)}


def endpoint(name: str, namespace: str) -> str:
    """The OpenAI-compatible base URL of an LLMService inside a member cluster."""
    return f"http://{name}.{namespace}.svc.cluster.local:{PORT}/v1"


def llm_endpoint(llm: Mapping[str, Any]) -> str:
    return endpoint(name_of(llm), namespace_of(llm))


def autoscaled(llm: Mapping[str, Any]) -> bool:
    """Whether `spec.autoscaling` is set and not disabled."""
    auto = _spec(llm).get("autoscaling")
    return isinstance(auto, Mapping) and auto.get("enabled", True) is not False


def vllm_args(llm: Mapping[str, Any]) -> list[str]:
    """The operator's arguments in its order, `--quantization` when set, then `extraArgs`."""
    spec = _spec(llm)
    args = [
        "--model", str(spec.get("model") or ""),
        "--host", "0.0.0.0",
        "--port", str(PORT),
        "--gpu-memory-utilization", str(spec.get("gpuMemoryUtilization") or DEFAULT_GPU_MEMORY_UTILIZATION),
        "--max-model-len", str(spec.get("maxModelLen") or DEFAULT_MAX_MODEL_LEN),
        "--served-model-name", name_of(llm),
    ]
    if spec.get("quantization"):
        args += ["--quantization", str(spec["quantization"])]
    return args + [str(a) for a in spec.get("extraArgs") or []]


def _env(pairs: Iterable[tuple[str, str]]) -> list[Obj]:
    """Env entries without repeated names (server-side apply rejects them): each name where it first appears,
    with its last value (the kubelet's rule when a name repeats)."""
    values: dict[str, str] = {}
    for name, value in pairs:
        values[name] = value
    return [{"name": n, "value": v} for n, v in values.items()]


def vllm_env(llm: Mapping[str, Any], settings: LLMSettings) -> list[Obj]:
    """`HF_ENDPOINT` first, then `spec.env` (an entry named HF_ENDPOINT there sets its value)."""
    spec = _spec(llm)
    hf = str(spec.get("hfEndpoint") or settings.hf_endpoint)
    extra = [(str(e.get("name") or ""), str(e.get("value") or "")) for e in spec.get("env") or []]
    return _env([("HF_ENDPOINT", hf), *extra])


def vllm_resources(llm: Mapping[str, Any]) -> Obj:
    """`nvidia.com/gpu` limit of `spec.resources.gpu` (1 by default); CPU/memory requests when given."""
    res = _spec(llm).get("resources") or {}
    out: Obj = {"limits": {GPU_RESOURCE: str(res.get("gpu") or 1)}}
    requests = {k: str(res[k]) for k in ("cpu", "memory") if res.get(k)}
    if requests:
        out["requests"] = requests
    return out


def _health_probe(failures: int) -> Obj:
    return {"httpGet": {"path": HEALTH_PATH, "port": PORT}, "periodSeconds": PROBE_PERIOD, "timeoutSeconds": 5,
            "failureThreshold": failures}


def _metadata(llm: Mapping[str, Any], name: str) -> Obj:
    return {"name": name, "namespace": namespace_of(llm), "labels": selector_labels(llm),
            "annotations": owner_annotations(llm, "LLMService")}


def deployment(llm: Mapping[str, Any], replicas: int | None, settings: LLMSettings | None = None) -> Obj:
    """The vLLM Deployment; `replicas` None leaves `spec.replicas` out of the applied configuration."""
    settings = settings or LLMSettings()
    spec = _spec(llm)
    container: Obj = {
        "name": CONTAINER,
        "image": str(spec.get("image") or settings.image),
        "args": vllm_args(llm),
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "env": vllm_env(llm, settings),
        "resources": vllm_resources(llm),
        "readinessProbe": _health_probe(READINESS_FAILURES),
        "startupProbe": _health_probe(STARTUP_FAILURES),
        "volumeMounts": [{"name": HF_CACHE_VOLUME, "mountPath": HF_CACHE_MOUNT},
                         {"name": SHM_VOLUME, "mountPath": "/dev/shm"}],
    }
    dspec: Obj = {} if replicas is None else {"replicas": replicas}
    dspec |= {
        "selector": {"matchLabels": selector_labels(llm)},
        "strategy": {"type": "Recreate"},  # a GPU cannot be shared by the old and the new pod
        "template": {
            "metadata": {"labels": pod_labels(llm)},
            "spec": {
                "runtimeClassName": RUNTIME_CLASS,
                "containers": [container],
                "volumes": [settings.hf_cache.volume(),
                            {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}}],
            },
        },
    }
    return {"apiVersion": APPS_V1, "kind": "Deployment", "metadata": _metadata(llm, name_of(llm)), "spec": dspec}


def service(llm: Mapping[str, Any]) -> Obj:
    """ClusterIP Service on port 8000 named after the LLMService: `http://<name>.<ns>.svc:8000/v1`."""
    return {"apiVersion": CORE_V1, "kind": "Service", "metadata": _metadata(llm, name_of(llm)),
            "spec": {"type": "ClusterIP", "selector": selector_labels(llm),
                     "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}]}}


def autoscaling_bounds(llm: Mapping[str, Any]) -> tuple[int, int]:
    """(minReplicas, maxReplicas) of the spec, with max at least min."""
    auto = _spec(llm).get("autoscaling") or {}
    low = max(1, int(auto.get("minReplicas") or 1))
    return low, max(low, int(auto.get("maxReplicas") or low))


def hpa(llm: Mapping[str, Any], bounds: tuple[int, int]) -> Obj:
    """The operator's HPA: External metric `vllm_num_requests_waiting{deployment=<name>}`, AverageValue target
    `waitingThreshold`, between `bounds` (this cluster's share; min at least 1, max at least min)."""
    auto = _spec(llm).get("autoscaling") or {}
    low = max(1, bounds[0])
    metric = {"name": METRIC, "selector": {"matchLabels": {DEPLOYMENT_LABEL: name_of(llm)}}}
    target = {"type": "AverageValue", "averageValue": str(auto.get("waitingThreshold") or 5)}
    return {
        "apiVersion": AUTOSCALING_V2, "kind": "HorizontalPodAutoscaler", "metadata": _metadata(llm, name_of(llm)),
        "spec": {
            "scaleTargetRef": {"apiVersion": APPS_V1, "kind": "Deployment", "name": name_of(llm)},
            "minReplicas": low,
            "maxReplicas": max(low, bounds[1]),
            "metrics": [{"type": "External", "external": {"metric": metric, "target": target}}],
        },
    }


def llm_objects(llm: Mapping[str, Any], replicas: int, *, settings: LLMSettings | None = None,
                autoscaling_share: tuple[int, int] | None = None, include_replicas: bool = True) -> list[Obj]:
    """Namespace, Deployment, Service and (when autoscaled) HPA of `llm` for one member cluster.

    `replicas`: the replicas placed on this cluster. `autoscaling_share`: this cluster's (min, max) from
    `hpa_bounds`; unset, the spec's own bounds (one cluster). `include_replicas=False` leaves `spec.replicas`
    out of the Deployment: pass `apply_replicas(llm, live)`, false once the HPA owns the count.
    """
    settings = settings or LLMSettings()
    out = [namespace_object(namespace_of(llm)),
           deployment(llm, replicas if include_replicas else None, settings),
           service(llm)]
    if autoscaled(llm):
        out.append(hpa(llm, autoscaling_share or autoscaling_bounds(llm)))
    return out


def replicas_managed_elsewhere(live: Mapping[str, Any] | None, manager: str = FIELD_MANAGER) -> bool:
    """Whether a manager other than `manager` owns `spec.replicas` of the live Deployment (the HPA controller's
    updates through the scale subresource take it over)."""
    for entry in _meta(live or {}).get("managedFields") or []:
        if entry.get("manager") != manager and "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {}):
            return True
    return False


def apply_replicas(llm: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Whether to put `spec.replicas` in the applied Deployment (`include_replicas`): always without autoscaling;
    with it, until another manager (the HPA) owns the field. Dropping a field only this manager owns resets it
    to the default (1), so the count is handed over, not dropped, on creation."""
    return not autoscaled(llm) or not replicas_managed_elsewhere(live)


def owned_identities(llm: Mapping[str, Any]) -> list[ObjectId]:
    """Every object the controller may have applied for `llm` on a member, for deletion (not the shared
    namespace)."""
    ns, name = namespace_of(llm), name_of(llm)
    return [ObjectId(AUTOSCALING_V2, "HorizontalPodAutoscaler", ns, name), ObjectId(CORE_V1, "Service", ns, name),
            ObjectId(APPS_V1, "Deployment", ns, name)]


def stale_identities(llm: Mapping[str, Any], desired: Iterable[Mapping[str, Any]]) -> list[ObjectId]:
    """Owned objects that `desired` no longer has (the HPA once autoscaling is off)."""
    keep = {identity(o) for o in desired}
    return [i for i in owned_identities(llm) if i not in keep]


# --- dividing the autoscaling bounds between clusters ------------------------------------------


def _apportion(total: int, weights: Mapping[str, int], minimum: int) -> dict[str, int]:
    """`total` divided in proportion to `weights` (positive only) by largest remainder, each part at least
    `minimum`; when `total` cannot give every part `minimum`, every part gets `minimum` (and the sum exceeds
    it). Ties go to the larger weight, then to the name that sorts first."""
    keys = sorted(k for k, w in weights.items() if w > 0)
    if not keys:
        return {}
    if total <= minimum * len(keys):
        return dict.fromkeys(keys, minimum)
    out: dict[str, int] = {}
    free, remaining = list(keys), total
    while True:  # parts whose share falls below the minimum get it, the others share the rest
        wsum = sum(weights[k] for k in free)
        below = [k for k in free if remaining * weights[k] < minimum * wsum]
        if not below:
            break
        for k in below:
            out[k] = minimum
            free.remove(k)
            remaining -= minimum
    wsum = sum(weights[k] for k in free)
    for k in free:
        out[k] = remaining * weights[k] // wsum
    left = remaining - sum(out[k] for k in free)
    order = sorted(free, key=lambda k: (-(remaining * weights[k] % wsum), -weights[k], k))
    for k in order[:left]:
        out[k] += 1
    return {k: out[k] for k in keys}


def hpa_bounds(min_replicas: int, max_replicas: int, placement: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """Each cluster's (minReplicas, maxReplicas), divided in proportion to the replicas placed on it.

    Only clusters with replicas get bounds. The mins are divided by largest remainder with at least 1 each, so
    they add up to `min_replicas`, or to the number of clusters when that is larger; the maxes are each
    cluster's min plus its proportional share of what `max_replicas` leaves above the mins, so every max is at
    least its min and they add up to `max(max_replicas, sum of the mins)`.
    """
    placed = {c: r for c, r in placement.items() if r > 0}
    mins = _apportion(max(1, min_replicas), placed, 1)
    extra = _apportion(max(0, max_replicas - sum(mins.values())), placed, 0)
    return {c: (mins[c], mins[c] + extra[c]) for c in sorted(placed)}
