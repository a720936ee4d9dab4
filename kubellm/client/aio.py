"""The asyncio flavour under the blocking flavour's names: `from kubellm.client.aio import ClientSet`."""

from kubellm.client.dynamic import AsyncDynamicClient as DynamicClient
from kubellm.client.dynamic import AsyncDynamicResource as DynamicResource
from kubellm.client.generated.clientset import AsyncClientSet as ClientSet
from kubellm.client.generated.clientset import AsyncSharedInformerFactory as SharedInformerFactory
from kubellm.client.informers import AsyncDynamicInformerFactory as DynamicInformerFactory

__all__ = ["ClientSet", "DynamicClient", "DynamicInformerFactory", "DynamicResource", "SharedInformerFactory"]
