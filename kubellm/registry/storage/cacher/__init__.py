"""A watch cache in front of any Storage (as k8s.io/apiserver/pkg/storage/cacher).

One etcd watch per resource keeps an in-memory copy of its objects and a window of recent events.
From it come `resourceVersion=0` reads (and NotOlderThan reads the cache has caught up with) and
every watch that starts at `0` or at a revision inside the window, fanned out in-process. Everything
else, and every write, goes to the wrapped storage.
"""

from kubellm.registry.storage.cacher.cached import CachedStorage

__all__ = ["CachedStorage"]
