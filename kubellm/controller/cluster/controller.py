"""The Cluster controller as the manager runs it: a Cluster informer (spec changes only: the reconciler's
own status writes must not enqueue it again) feeding `ClusterReconciler`, which requeues each cluster after
its probe interval."""

from __future__ import annotations

from kubellm.controller.cluster.reconciler import ClusterReconciler
from kubellm.controller.manager.registry import ControllerContext
from kubellm.controller.runtime.controller import Controller
from kubellm.controller.runtime.handlers import generation_changed

NAME = "cluster"


def new_controller(ctx: ControllerContext) -> Controller:
    informer = ctx.informers.cluster_v1alpha1.clusters().informer()
    reconciler = ClusterReconciler(ctx.clientset.cluster_v1alpha1.clusters().ops, ctx.recorder,
                                   ctx.settings.cluster)
    return ctx.new_controller(reconciler).watch_primary(informer, update_predicate=generation_changed)
