"""The controller runtime: work queues, controllers, leader election, Events and metrics (client-go's
`util/workqueue`, `tools/leaderelection` and `tools/record`, with controller-runtime's reconcile results).

    from kubellm.controller.runtime import Controller, Result, TerminalError

    class Reconciler:
        async def reconcile(self, key: str) -> Result | None:
            ...                                   # read listers, write through the clientset
            return Result(requeue_after=30)       # or None when done; raise to retry with backoff
"""

from kubellm.controller.runtime.clock import REAL_CLOCK, Clock, RealClock
from kubellm.controller.runtime.controller import Controller, ControllerOptions
from kubellm.controller.runtime.events import (
    NORMAL,
    WARNING,
    EventBroadcaster,
    EventOptions,
    EventRecorder,
    EventType,
)
from kubellm.controller.runtime.handlers import (
    EnqueueHandler,
    KeyMapper,
    generation_changed,
    indexed_keys,
    object_key,
    owner_keys,
)
from kubellm.controller.runtime.leaderelection import (
    LeaderElectionConfig,
    LeaderElectionRecord,
    LeaderElector,
    LeaseClient,
)
from kubellm.controller.runtime.metrics import Metrics
from kubellm.controller.runtime.objects import ObjectRef, key_of, split_key
from kubellm.controller.runtime.queue import Queue
from kubellm.controller.runtime.ratelimiter import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from kubellm.controller.runtime.reconciler import Reconciler, Result, TerminalError, TerminalErrorHandler
from kubellm.controller.runtime.workqueue import RateLimitingQueue

__all__ = [
    "NORMAL",
    "REAL_CLOCK",
    "WARNING",
    "BucketRateLimiter",
    "Clock",
    "Controller",
    "ControllerOptions",
    "EnqueueHandler",
    "EventBroadcaster",
    "EventOptions",
    "EventRecorder",
    "EventType",
    "ItemExponentialFailureRateLimiter",
    "KeyMapper",
    "LeaderElectionConfig",
    "LeaderElectionRecord",
    "LeaderElector",
    "LeaseClient",
    "MaxOfRateLimiter",
    "Metrics",
    "ObjectRef",
    "Queue",
    "RateLimiter",
    "RateLimitingQueue",
    "RealClock",
    "Reconciler",
    "Result",
    "TerminalError",
    "TerminalErrorHandler",
    "default_controller_rate_limiter",
    "generation_changed",
    "indexed_keys",
    "key_of",
    "object_key",
    "owner_keys",
    "split_key",
]
