"""kubellm-controller-manager: runs the registered controllers with leader election, health, readiness and
metrics endpoints (see `registry` to add a controller, `options` for the flags)."""

from kubellm.controller.manager.registry import ControllerContext, ControllerFactory, ControllerRegistry, ControllerSpec

__all__ = ["ControllerContext", "ControllerFactory", "ControllerRegistry", "ControllerSpec"]
