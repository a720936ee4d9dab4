"""HTTP for the clients: the asyncio transport (one connection pool per client) and the blocking
flavour's private event loop."""

from kubellm.client.rest.loop import LoopThread
from kubellm.client.rest.transport import (
    APPLY_PATCH,
    JSON,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    RateLimiter,
    Response,
    Stream,
    Transport,
)

__all__ = [
    "APPLY_PATCH",
    "JSON",
    "JSON_PATCH",
    "MERGE_PATCH",
    "STRATEGIC_MERGE_PATCH",
    "LoopThread",
    "RateLimiter",
    "Response",
    "Stream",
    "Transport",
]
