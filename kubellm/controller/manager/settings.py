"""Settings of individual controllers, from the manager's flags (kube-controller-manager's per-controller
option groups). A controller's factory reads its own part from `ControllerContext.settings`."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubellm.controller.cluster.reconciler import ClusterOptions
from kubellm.controller.llmservice.resources import LLMSettings
from kubellm.controller.ragservice.resources import RAGSettings


@dataclass(frozen=True)
class ControllerSettings:
    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    llm: LLMSettings = field(default_factory=LLMSettings)
    """The member objects of LLMServices: the default vLLM image, HF_ENDPOINT and the model cache."""
    rag: RAGSettings = field(default_factory=RAGSettings)
    """The member objects of RAGServices: the chat app's image and resources, the vector store's default size."""
