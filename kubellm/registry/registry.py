"""Every served resource, with its Strategy, as Stores over one storage."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from kubellm.apis.cluster.v1alpha1 import RESOURCES as CLUSTER_RESOURCES
from kubellm.apis.coordination.v1 import RESOURCES as COORDINATION_RESOURCES
from kubellm.apis.core.v1 import RESOURCES as CORE_RESOURCES
from kubellm.apis.iam.v1alpha1 import RESOURCES as IAM_RESOURCES
from kubellm.apis.model.v1alpha1 import RESOURCES as MODEL_RESOURCES
from kubellm.apis.scheme import ResourceInfo
from kubellm.registry.cluster.cluster import ClusterStrategy
from kubellm.registry.coordination.lease import LeaseStrategy
from kubellm.registry.core.event import EventStrategy
from kubellm.registry.core.namespace import NamespaceStrategy
from kubellm.registry.iam.rbac import BindingStrategy, RoleStrategy
from kubellm.registry.iam.user import LoginRecordStrategy, UserStrategy
from kubellm.registry.model.llmservice import LLMServiceStrategy
from kubellm.registry.model.ragservice import RAGServiceStrategy
from kubellm.registry.options import RegistryOptions
from kubellm.registry.rest import Resource, Served
from kubellm.registry.storage.interface import Storage
from kubellm.registry.store import Store
from kubellm.registry.strategy import Strategy

ALL_RESOURCES: tuple[ResourceInfo, ...] = (*IAM_RESOURCES, *CLUSTER_RESOURCES, *MODEL_RESOURCES, *CORE_RESOURCES,
                                           *COORDINATION_RESOURCES)

StrategyFactory = Callable[[ResourceInfo, RegistryOptions], Strategy]

STRATEGIES: dict[str, StrategyFactory] = {
    "User": lambda info, opts: UserStrategy(info, opts),
    "Role": lambda info, _: RoleStrategy(info),
    "ClusterRole": lambda info, _: RoleStrategy(info),
    "RoleBinding": lambda info, _: BindingStrategy(info),
    "ClusterRoleBinding": lambda info, _: BindingStrategy(info),
    "LoginRecord": lambda info, _: LoginRecordStrategy(info),
    "Cluster": lambda info, _: ClusterStrategy(info),
    "LLMService": lambda info, opts: LLMServiceStrategy(info, opts),
    "RAGService": lambda info, _: RAGServiceStrategy(info),
    "Namespace": lambda info, _: NamespaceStrategy(info),
    "Event": lambda info, _: EventStrategy(info),
    "Lease": lambda info, _: LeaseStrategy(info),
}


def build_resources(storage: Storage, options: RegistryOptions = RegistryOptions(),
                    infos: tuple[ResourceInfo, ...] = ALL_RESOURCES,
                    strategies: dict[str, StrategyFactory] | None = None) -> list[Resource]:
    """The served resources with their REST objects (main, status, scale: what each strategy declares)."""
    return [Resource.of(store) for store in build_stores(storage, options, infos, strategies).values()]


def build_stores(storage: Storage, options: RegistryOptions = RegistryOptions(),
                 infos: tuple[ResourceInfo, ...] = ALL_RESOURCES,
                 strategies: dict[str, StrategyFactory] | None = None) -> dict[str, Store]:
    """Stores keyed by `<plural>.<group>`."""
    stores: dict[str, Store] = {}
    for info in infos:
        factory = (STRATEGIES if strategies is None else strategies).get(info.kind)
        strategy = factory(info, options) if factory else Strategy(info)
        stores[info.group_resource] = Store(info, strategy, storage)
    return stores


class _NoStorage:
    """For describing resources without serving them: any storage call is a bug."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"a described resource has no storage ({name})")


def describe(infos: Iterable[ResourceInfo] = ALL_RESOURCES,
             options: RegistryOptions = RegistryOptions()) -> list[Served]:
    """What the registry serves for `infos` (verbs and subresources from their strategies), without storage:
    for documents built from the types alone (OpenAPI in tests and tools)."""
    return [r.describe() for r in build_resources(cast(Storage, _NoStorage()), options, tuple(infos))]
