"""The LLMService controller as the manager runs it.

What enqueues an LLMService:
- its own spec changes and its deletion (generation; status writes do not);
- a change on a member to an object it owns (Deployment, Service, HPA, pods: the members' informers, narrowed
  to `app.kubernetes.io/managed-by=kubellm`), mapped back by the `app.kubernetes.io/instance` label;
- a Cluster that changes in a way placement reads (Ready, spec, free GPUs): the LLMServices placed on it, and
  every one not Serving (it may now fit), through an index of LLMServices by cluster.
"""

from __future__ import annotations

from typing import Any

from kubellm.client import EventHandlerFuncs
from kubellm.controller.conditions import find
from kubellm.controller.llmservice import resources
from kubellm.controller.llmservice.placement import as_json
from kubellm.controller.llmservice.reconciler import LLMServiceReconciler
from kubellm.controller.manager.registry import ControllerContext
from kubellm.controller.members import DEPLOYMENTS, HPAS, PODS, SERVICES, Members
from kubellm.controller.runtime.controller import Controller
from kubellm.controller.runtime.handlers import generation_changed
from kubellm.controller.runtime.objects import field_of, key_of, meta_field, unwrap

NAME = "llmservice"
CLUSTER_INDEX = "cluster"
UNSETTLED = "*unsettled*"
"""Index value of the LLMServices that are not Serving (a cluster's change may let them place)."""
MANAGED = f"{resources.MANAGED_BY_LABEL}={resources.MANAGED_BY}"


def clusters_of(obj: Any) -> list[str]:
    st = field_of(unwrap(obj), "status", "status")
    names = [str(n) for c in field_of(st, "clusters", "clusters") or [] if (n := field_of(c, "name", "name"))]
    return names if field_of(st, "phase", "phase") == "Serving" else [*names, UNSETTLED]


def cluster_changed(old: Any, new: Any) -> bool:
    """What placement reads: spec (generation), Ready, and the free GPUs; not the probe's heartbeat."""
    a, b = as_json(old), as_json(new)

    def seen(c: Any) -> tuple[Any, ...]:
        st = c.get("status") or {}
        ready = find(st.get("conditions") or [], "Ready") or {}
        gpus = [(g.get("model"), g.get("available"), g.get("largestFree")) for g in st.get("gpus") or []]
        return (c.get("metadata", {}).get("generation"), ready.get("status"), gpus)

    return a is b or seen(a) != seen(b)


def spec_or_deletion(old: Any, new: Any) -> bool:
    return generation_changed(old, new) or (meta_field(old, "deletion_timestamp", "deletionTimestamp")
                                            != meta_field(new, "deletion_timestamp", "deletionTimestamp"))


def owner_key(obj: dict[str, Any]) -> str | None:
    """The LLMService a member object belongs to (its namespace and instance label), None for others."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(resources.NAME_LABEL) != resources.APP_NAME or not labels.get(resources.INSTANCE_LABEL):
        return None
    return f"{meta.get('namespace')}/{labels[resources.INSTANCE_LABEL]}"


def new_controller(ctx: ControllerContext) -> Controller:
    llms = ctx.informers.model_v1alpha1.llmservices()
    informer = llms.informer()
    informer.add_indexers({CLUSTER_INDEX: clusters_of})
    clusters = ctx.informers.cluster_v1alpha1.clusters()
    members = Members(ctx.clientset.cluster_v1alpha1.clusters().ops, kinds=(DEPLOYMENTS, SERVICES, HPAS, PODS),
                      label_selector=MANAGED)
    reconciler = LLMServiceReconciler(llms.namespaced_lister(), clusters.cluster_lister(),
                                      ctx.clientset.model_v1alpha1.llmservices("").ops, members, ctx.recorder,
                                      settings=ctx.settings.llm)
    controller = ctx.new_controller(reconciler).watch_primary(informer, update_predicate=spec_or_deletion)
    members.route(owner_key, controller.enqueue)

    def placed_on(cluster: Any) -> list[str]:
        name = key_of(cluster)
        return [*informer.indexer.index_keys(CLUSTER_INDEX, name),
                *informer.indexer.index_keys(CLUSTER_INDEX, UNSETTLED)]

    async def cluster_deleted(obj: Any) -> None:
        await members.forget(key_of(unwrap(obj)))

    clusters.informer().add_event_handler(EventHandlerFuncs(delete=cluster_deleted))
    return controller.watch(clusters.informer(), placed_on, update_predicate=cluster_changed)

