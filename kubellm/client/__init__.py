"""The KubeLLM clientset: typed clients generated from `kubellm.apis`, a dynamic client for any Kubernetes
API, listers and informers (see docs/clientset.md).

Blocking flavour here; the asyncio flavour has the same names in `kubellm.client.aio`:

    from kubellm.client import ClientSet, Config
    clients = ClientSet(Config.from_kubeconfig())
    llm = clients.model_v1alpha1.llmservices("default").get("qwen")

The clientset imports nothing of the server (an import-linter contract says so). The generated classes are
imported on first use, so the generator (`kubellm.client.gen`) runs even when they are stale.
"""

import importlib
from typing import TYPE_CHECKING, Any

from kubellm.client.config import Config, ConfigError
from kubellm.client.dynamic import (
    APIResource,
    AsyncDynamicClient,
    AsyncDynamicResource,
    Discovery,
    DynamicClient,
    DynamicResource,
    ResourceNotFound,
)
from kubellm.client.errors import (
    AlreadyExists,
    APIError,
    BadRequest,
    ClientError,
    ClientTimeout,
    Conflict,
    Expired,
    Forbidden,
    Gone,
    InternalError,
    Invalid,
    MethodNotAllowed,
    NotFound,
    ServerTimeout,
    ServiceUnavailable,
    Timeout,
    TooManyRequests,
    TransportError,
    Unauthorized,
)
from kubellm.client.informers import (
    AsyncDynamicInformerFactory,
    DeletedFinalStateUnknown,
    DynamicInformerFactory,
    EventHandlerFuncs,
    FilteringEventHandler,
    InformerOptions,
    SharedIndexInformer,
)
from kubellm.client.resource import ObjectList, ResourceRef, WatchEvent
from kubellm.client.scale import Scale

if TYPE_CHECKING:
    from kubellm.client.generated.clientset import (
        AsyncClientSet,
        AsyncSharedInformerFactory,
        ClientSet,
        SharedInformerFactory,
    )

_GENERATED = ("AsyncClientSet", "AsyncSharedInformerFactory", "ClientSet", "SharedInformerFactory")


def __getattr__(name: str) -> Any:
    if name in _GENERATED:
        return getattr(importlib.import_module("kubellm.client.generated.clientset"), name)
    raise AttributeError(f"module 'kubellm.client' has no attribute {name!r}")

__all__ = [
    "APIError",
    "APIResource",
    "AlreadyExists",
    "AsyncClientSet",
    "AsyncDynamicClient",
    "AsyncDynamicInformerFactory",
    "AsyncDynamicResource",
    "AsyncSharedInformerFactory",
    "BadRequest",
    "ClientError",
    "ClientSet",
    "ClientTimeout",
    "Config",
    "ConfigError",
    "Conflict",
    "DeletedFinalStateUnknown",
    "Discovery",
    "DynamicClient",
    "DynamicInformerFactory",
    "DynamicResource",
    "EventHandlerFuncs",
    "Expired",
    "FilteringEventHandler",
    "Forbidden",
    "Gone",
    "InformerOptions",
    "InternalError",
    "Invalid",
    "MethodNotAllowed",
    "NotFound",
    "ObjectList",
    "ResourceNotFound",
    "ResourceRef",
    "Scale",
    "ServerTimeout",
    "ServiceUnavailable",
    "SharedIndexInformer",
    "SharedInformerFactory",
    "Timeout",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "WatchEvent",
]
