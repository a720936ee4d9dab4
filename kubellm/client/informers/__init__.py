"""Informers and listers, as client-go's: shared informers over indexed stores, fed by one list and one
watch per resource; listers read the stores."""

from kubellm.client.informers.factory import (
    AsyncDynamicInformerFactory,
    AsyncInformerFactory,
    BlockingInformerFactory,
    DynamicInformerFactory,
    InformerFactory,
    InformerOptions,
    ResourceInformer,
)
from kubellm.client.informers.informer import (
    EventHandlerFuncs,
    FilteringEventHandler,
    InformerStats,
    Registration,
    ResourceEventHandler,
    SharedIndexInformer,
)
from kubellm.client.informers.lister import ClusterScopedLister, NamespacedLister, NamespaceLister
from kubellm.client.informers.store import NAMESPACE_INDEX, DeletedFinalStateUnknown, Indexer, IndexFunc, split_key

__all__ = [
    "NAMESPACE_INDEX",
    "AsyncDynamicInformerFactory",
    "AsyncInformerFactory",
    "BlockingInformerFactory",
    "ClusterScopedLister",
    "DeletedFinalStateUnknown",
    "DynamicInformerFactory",
    "EventHandlerFuncs",
    "FilteringEventHandler",
    "IndexFunc",
    "Indexer",
    "InformerFactory",
    "InformerOptions",
    "InformerStats",
    "NamespaceLister",
    "NamespacedLister",
    "Registration",
    "ResourceEventHandler",
    "ResourceInformer",
    "SharedIndexInformer",
    "split_key",
]
