"""The object every benchmark writes: a realistic LLMService (about 700 bytes of JSON)."""

from __future__ import annotations

from typing import Any


def llmservice(name: str, namespace: str = "bench") -> dict[str, Any]:
    """As a client sends it; the server sets uid, creationTimestamp and generation."""
    return {
        "apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "bench", "tier": "gpu"}},
        "spec": {"model": "Qwen/Qwen2.5-3B-Instruct", "quantization": "awq", "maxModelLen": 4096,
                 "gpuMemoryUtilization": "0.85", "replicas": 2,
                 "image": "docker.m.daocloud.io/vllm/vllm-openai:v0.6.5", "hfEndpoint": "https://hf-mirror.com",
                 "autoscaling": {"minReplicas": 1, "maxReplicas": 4, "waitingThreshold": 5},
                 "extraArgs": ["--enable-prefix-caching"], "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}]},
    }
