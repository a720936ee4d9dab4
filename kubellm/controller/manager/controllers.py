"""The controllers kubellm-controller-manager runs. Adding a controller is one entry here:

    ControllerSpec("cluster", cluster.new_controller, workers=2, description="probes member clusters")

(see `registry.ControllerRegistry` for what a factory receives). Out-of-tree controllers can be loaded
with `--extra-controllers module:attribute` instead.
"""

from __future__ import annotations

from kubellm.controller.manager.registry import ControllerRegistry, ControllerSpec

CONTROLLERS: tuple[ControllerSpec, ...] = ()


def default_registry() -> ControllerRegistry:
    return ControllerRegistry(CONTROLLERS)
