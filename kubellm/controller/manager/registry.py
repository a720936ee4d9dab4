"""The controllers a manager can run: a registry of name → factory.

A factory takes the `ControllerContext` the manager builds for that controller (clientset, dynamic client,
shared informer factories, an Event recorder, metrics, options) and returns a `Controller` (or a coroutine
giving one) whose informers come from the context's factories, so all controllers share one watch per
resource:

    def new_cluster_controller(ctx: ControllerContext) -> Controller:
        clusters = ctx.informers.cluster_v1alpha1.clusters()
        reconciler = ClusterReconciler(ctx.clientset.cluster_v1alpha1.clusters().ops, ctx.recorder)
        return ctx.new_controller(reconciler).watch_primary(clusters.informer(),
                                                            update_predicate=generation_changed)

    ControllerSpec("cluster", new_cluster_controller, description="probes member clusters")

`--controllers` selects among them as kube-controller-manager does: `*` (every controller enabled by
default), `name`, `-name`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from kubellm.client.dynamic import AsyncDynamicClient
from kubellm.client.generated.clientset import AsyncClientSet, AsyncSharedInformerFactory
from kubellm.client.informers import AsyncDynamicInformerFactory
from kubellm.controller.manager.settings import ControllerSettings
from kubellm.controller.runtime.clock import Clock
from kubellm.controller.runtime.controller import Controller, ControllerOptions
from kubellm.controller.runtime.events import EventRecorder
from kubellm.controller.runtime.metrics import Metrics
from kubellm.controller.runtime.reconciler import Reconciler

NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class ControllerContext:
    """What the manager hands a controller's factory."""

    name: str
    clientset: AsyncClientSet
    """Typed clients of KubeLLM's API (`--kubeconfig`)."""
    dynamic: AsyncDynamicClient
    """Any resource of the same API, as dicts (shares the clientset's connections)."""
    informers: AsyncSharedInformerFactory
    """Shared typed informers: ask for what the controller watches; the manager starts them."""
    dynamic_informers: AsyncDynamicInformerFactory
    recorder: EventRecorder
    """Events with `source.component` `<name>-controller`."""
    metrics: Metrics
    options: ControllerOptions
    """Workers (`--concurrent-syncs`) and the reconcile timeout."""
    identity: str
    """This manager process (its leader election identity)."""
    clock: Clock
    settings: ControllerSettings = field(default_factory=ControllerSettings)
    """Each controller's own flags (`settings.cluster` for the Cluster controller)."""

    def new_controller(self, reconciler: Reconciler) -> Controller:
        """A controller named after this entry, with the context's options, recorder, metrics and clock."""
        return Controller(self.name, reconciler, options=self.options, recorder=self.recorder, metrics=self.metrics,
                          clock=self.clock)


ControllerFactory = Callable[[ControllerContext], "Controller | Awaitable[Controller]"]


@dataclass(frozen=True)
class ControllerSpec:
    name: str
    factory: ControllerFactory
    enabled_by_default: bool = True
    workers: int = 1
    """Workers unless `--concurrent-syncs` says otherwise."""
    description: str = ""


class ControllerRegistry:
    def __init__(self, specs: Iterable[ControllerSpec] = ()) -> None:
        self._specs: dict[str, ControllerSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ControllerSpec) -> None:
        if not NAME.fullmatch(spec.name):
            raise ValueError(f"controller name {spec.name!r}: lower-case letters, digits and '-' only")
        if spec.name in self._specs:
            raise ValueError(f"controller {spec.name!r} is registered twice")
        if spec.workers < 1:
            raise ValueError(f"controller {spec.name!r}: at least one worker")
        self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[ControllerSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def names(self) -> list[str]:
        return sorted(self._specs)

    def merged(self, other: Iterable[ControllerSpec]) -> ControllerRegistry:
        return ControllerRegistry([*self, *other])

    def unknown(self, selection: Sequence[str]) -> list[str]:
        """Names in a `--controllers` selection that no controller has."""
        return [item for item in selection if item != "*" and item.lstrip("-") not in self._specs]

    def select(self, selection: Sequence[str]) -> list[ControllerSpec]:
        """The controllers a `--controllers` selection enables, in registration order."""
        chosen = set(selection)
        return [spec for spec in self if f"-{spec.name}" not in chosen
                and (spec.name in chosen or ("*" in chosen and spec.enabled_by_default))]
