"""The RAGService controller as the manager runs it.

What enqueues a RAGService:
- its own spec changes and its deletion (generation; its status and record writes do not);
- a change of the LLMService it references that it reads (phase, message, ready replicas, endpoint, clusters,
  deletion), through an index of RAGServices by `<namespace>/<spec.llmServiceRef.name>`;
- a change on a member to one of its objects (Deployment, Service, claim, pods: its own member informers,
  narrowed to `app.kubernetes.io/managed-by=kubellm,app.kubernetes.io/name=rag-chat-ui`, so the vLLM objects and
  pods are neither cached nor mistaken for the chat app's), mapped back by the `app.kubernetes.io/instance`
  label and the namespace;
- a Cluster it recorded that changes (spec, Ready) or goes away (an index by the record annotation); a deleted
  Cluster's connection is dropped.
"""

from __future__ import annotations

from typing import Any

from kubellm.client import EventHandlerFuncs
from kubellm.controller.conditions import find
from kubellm.controller.llmservice.controller import spec_or_deletion
from kubellm.controller.llmservice.placement import as_json
from kubellm.controller.llmservice.resources import (
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    namespace_of,
)
from kubellm.controller.manager.registry import ControllerContext
from kubellm.controller.members import DEPLOYMENTS, PODS, PVCS, SERVICES, Members
from kubellm.controller.ragservice import resources
from kubellm.controller.ragservice.reconciler import RAGServiceReconciler, recorded_clusters
from kubellm.controller.runtime.controller import Controller
from kubellm.controller.runtime.handlers import indexed_keys
from kubellm.controller.runtime.objects import key_of, unwrap

NAME = "ragservice"
LLM_INDEX = "llmservice"
CLUSTER_INDEX = "cluster"
SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY},{NAME_LABEL}={resources.APP_NAME}"
"""The member objects the controller caches: the chat app's only."""


def llm_of(obj: Any) -> list[str]:
    """Index value of a RAGService: the key of the LLMService it references."""
    data = as_json(unwrap(obj))
    name = resources.llm_name(data)
    return [f"{namespace_of(data)}/{name}"] if name else []


def clusters_of(obj: Any) -> list[str]:
    """Index values of a RAGService: the clusters it recorded."""
    return recorded_clusters(as_json(unwrap(obj)))


def llm_changed(old: Any, new: Any) -> bool:
    """What a RAGService reads of its LLMService: phase, message, ready replicas, endpoint, clusters, deletion."""
    if old is new:
        return True

    def seen(obj: Any) -> tuple[Any, ...]:
        data = as_json(obj)
        st = data.get("status") or {}
        clusters = [(c.get("name"), c.get("replicas"), c.get("readyReplicas"), c.get("phase"))
                    for c in st.get("clusters") or []]
        return (st.get("phase"), st.get("message"), st.get("readyReplicas"), st.get("endpoint"), clusters,
                (data.get("metadata") or {}).get("deletionTimestamp"))

    return seen(old) != seen(new)


def cluster_changed(old: Any, new: Any) -> bool:
    """A Cluster's spec (its credentials, endpoint) or Ready; not the probe's heartbeat."""
    if old is new:
        return True

    def seen(obj: Any) -> tuple[Any, ...]:
        data = as_json(obj)
        ready = find((data.get("status") or {}).get("conditions") or [], "Ready") or {}
        return (data.get("metadata") or {}).get("generation"), ready.get("status")

    return seen(old) != seen(new)


def owner_key(obj: dict[str, Any]) -> str | None:
    """The RAGService a member object belongs to (its namespace and instance label), None for others."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(NAME_LABEL) != resources.APP_NAME or not labels.get(INSTANCE_LABEL) or not meta.get("namespace"):
        return None
    return f"{meta['namespace']}/{labels[INSTANCE_LABEL]}"


def new_controller(ctx: ControllerContext) -> Controller:
    rags = ctx.informers.model_v1alpha1.ragservices()
    informer = rags.informer()
    informer.add_indexers({LLM_INDEX: llm_of, CLUSTER_INDEX: clusters_of})
    llms = ctx.informers.model_v1alpha1.llmservices()
    clusters = ctx.informers.cluster_v1alpha1.clusters()
    members = Members(ctx.clientset.cluster_v1alpha1.clusters().ops, kinds=(DEPLOYMENTS, SERVICES, PVCS, PODS),
                      label_selector=SELECTOR)
    reconciler = RAGServiceReconciler(rags.namespaced_lister(), llms.namespaced_lister(), clusters.cluster_lister(),
                                      ctx.clientset.model_v1alpha1.ragservices("").ops, members, ctx.recorder,
                                      settings=ctx.settings.rag)
    controller = ctx.new_controller(reconciler).watch_primary(informer, update_predicate=spec_or_deletion)
    members.route(owner_key, controller.enqueue)

    async def cluster_deleted(obj: Any) -> None:
        await members.forget(key_of(unwrap(obj)))

    clusters.informer().add_event_handler(EventHandlerFuncs(delete=cluster_deleted))
    controller.watch(llms.informer(), indexed_keys(informer, LLM_INDEX, lambda llm: [key_of(unwrap(llm))]),
                     update_predicate=llm_changed)
    return controller.watch(clusters.informer(),
                            indexed_keys(informer, CLUSTER_INDEX, lambda cluster: [key_of(unwrap(cluster))]),
                            update_predicate=cluster_changed)
