"""The controllers kubellm-controller-manager runs. Adding a controller is one entry here:

    ControllerSpec("cluster", cluster.new_controller, workers=2, description="probes member clusters")

(see `registry.ControllerRegistry` for what a factory receives). Out-of-tree controllers can be loaded
with `--extra-controllers module:attribute` instead.
"""

from __future__ import annotations

from kubellm.controller.cluster import controller as cluster
from kubellm.controller.llmservice import controller as llmservice
from kubellm.controller.manager.registry import ControllerRegistry, ControllerSpec
from kubellm.controller.ragservice import controller as ragservice

CONTROLLERS: tuple[ControllerSpec, ...] = (
    ControllerSpec(cluster.NAME, cluster.new_controller, workers=4,
                   description="probes member clusters and keeps their conditions and GPU inventory"),
    ControllerSpec(llmservice.NAME, llmservice.new_controller, workers=8,
                   description="places LLMServices on member clusters and runs vLLM there"),
    ControllerSpec(ragservice.NAME, ragservice.new_controller, workers=2,
                   description="runs RAGServices' chat app next to their LLMService on member clusters"),
)


def default_registry() -> ControllerRegistry:
    return ControllerRegistry(CONTROLLERS)
