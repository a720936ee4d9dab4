"""A member cluster's GPU inventory from its Nodes and Pods (pure functions over their JSON).

GPUs are the extended resource `nvidia.com/gpu`; their model and memory come from the labels NVIDIA's GPU
feature discovery puts on nodes (`nvidia.com/gpu.product`, `nvidia.com/gpu.memory` in MiB). A model's
`count` is its nodes' capacity; `allocatable` what Ready, schedulable nodes offer; `available` that minus
what pods bound to those nodes request, unless they have finished; `largestFree` the most available on one
node: the largest replica that fits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
MEMORY_LABEL = "nvidia.com/gpu.memory"
UNKNOWN_MODEL = "unknown"
FINISHED_PHASES = ("Succeeded", "Failed")

_INTEGER = re.compile(r"^\+?([0-9]{1,9})$")


def count(value: Any) -> int:
    """An integer quantity (GPUs are whole devices); anything else counts as none."""
    m = _INTEGER.match(str(value).strip()) if isinstance(value, str | int) and not isinstance(value, bool) else None
    return int(m.group(1)) if m else 0


def node_ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, dict))


def pod_gpus(pod: dict[str, Any]) -> int:
    """GPUs a pod holds, as the scheduler counts them: the larger of its containers' sum and any init container
    (for an extended resource, a limit alone is also the request)."""
    spec = pod.get("spec") or {}

    def one(container: dict[str, Any]) -> int:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        return count(requests.get(GPU_RESOURCE, limits.get(GPU_RESOURCE, 0)))

    main = sum(one(c) for c in spec.get("containers") or [] if isinstance(c, dict))
    init = max((one(c) for c in spec.get("initContainers") or [] if isinstance(c, dict)), default=0)
    return max(main, init)


def gpu_inventory(nodes: Iterable[dict[str, Any]], pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The status' `gpus` list, by model name."""
    used: dict[str, int] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (pod.get("status") or {}).get("phase") not in FINISHED_PHASES:
            used[node] = used.get(node, 0) + pod_gpus(pod)
    models: dict[str, dict[str, Any]] = {}
    for node in nodes:
        status = node.get("status") or {}
        capacity = count((status.get("capacity") or {}).get(GPU_RESOURCE, 0))
        if capacity <= 0:
            continue
        labels = (node.get("metadata") or {}).get("labels") or {}
        model = labels.get(PRODUCT_LABEL) or UNKNOWN_MODEL
        entry = models.setdefault(model, {"model": model, "memoryMiB": 0, "nodes": 0, "count": 0,
                                          "allocatable": 0, "available": 0, "largestFree": 0})
        entry["memoryMiB"] = max(entry["memoryMiB"], count(labels.get(MEMORY_LABEL, 0)))
        entry["count"] += capacity
        if not node_ready(node) or (node.get("spec") or {}).get("unschedulable"):
            continue
        allocatable = min(count((status.get("allocatable") or {}).get(GPU_RESOURCE, 0)), capacity)
        free = max(allocatable - used.get((node.get("metadata") or {}).get("name", ""), 0), 0)
        entry["nodes"] += 1
        entry["allocatable"] += allocatable
        entry["available"] += free
        entry["largestFree"] = max(entry["largestFree"], free)
    return [models[m] for m in sorted(models)]
