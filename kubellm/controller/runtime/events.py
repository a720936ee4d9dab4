"""Kubernetes Events from controllers (client-go's `tools/record`): core/v1 Events, which `kubectl describe`
lists for an object of any group.

`EventBroadcaster` owns the writing; each controller gets an `EventRecorder` from it (`new_recorder`) that
names it as the Event's `source.component`. `recorder.event(obj, "Warning", "Reason", "message")` never
blocks and never raises: the Event is queued and written by one background task, as client-go does.

- An Event is about `involvedObject` (apiVersion, kind, name, namespace, uid, resourceVersion); it lives in
  the object's namespace, or in `default` for a cluster-scoped object.
- Repeats are aggregated as client-go's event logger does: the same object, type, reason, message and
  source again patches the Event written before (`count` + 1, `lastTimestamp`) instead of creating
  another; an Event that was deleted meanwhile (by the Event TTL) is created again.
- A hot loop cannot flood the API: per object and source a token bucket (25 Events, then one every five
  minutes: client-go's spam filter) drops the excess, the queue holds at most `queue_size` Events (more
  are dropped), and the caches of written Events and of buckets are LRU-bounded. Drops are counted in
  `kubellm_events_dropped_total{reason}`.
- Each write has a deadline and is tried `max_tries` times at most while the API is unavailable; an
  Event the API refuses (forbidden, invalid, no such namespace) is dropped with a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from kubellm.apis.core.v1 import Event, EventSource, ObjectReference
from kubellm.apis.meta.v1 import ObjectMeta
from kubellm.apis.timestamps import rfc3339
from kubellm.client import errors
from kubellm.client.generated.core_v1 import EVENTS
from kubellm.client.resource import ModelCodec, ResourceOps
from kubellm.client.rest.transport import Transport
from kubellm.controller.runtime.clock import REAL_CLOCK, Clock
from kubellm.controller.runtime.metrics import Metrics
from kubellm.controller.runtime.objects import ObjectRef

log = structlog.get_logger(__name__)

EventType = Literal["Normal", "Warning"]
NORMAL: EventType = "Normal"
WARNING: EventType = "Warning"
MAX_REASON = 128
MAX_MESSAGE = 1024
CLUSTER_SCOPED_NAMESPACE = "default"
RETRYABLE = (errors.TransportError, errors.ClientTimeout, errors.TooManyRequests, errors.ServiceUnavailable,
             errors.InternalError, errors.ServerTimeout, errors.Timeout)


@dataclass(frozen=True)
class EventOptions:
    queue_size: int = 1000
    """Events waiting to be written at most; more are dropped."""
    cache_size: int = 4096
    """Written Events remembered for aggregation, and objects with a spam bucket (LRU)."""
    spam_burst: int = 25
    spam_qps: float = 1.0 / 300.0
    """Per object and source: `spam_burst` Events, then `spam_qps` a second."""
    max_tries: int = 3
    retry_delay: float = 1.0
    """Seconds before the second try, doubled for each further one."""
    call_timeout: float = 10.0
    """Deadline of each API call."""


@dataclass(frozen=True)
class _Pending:
    ref: ObjectRef
    type: str
    reason: str
    message: str
    component: str
    instance: str
    at: float

    def aggregation_key(self) -> tuple[str, ...]:
        r = self.ref
        return (self.component, self.instance, r.api_version, r.kind, r.namespace, r.name, r.uid, self.type,
                self.reason, self.message)

    def spam_key(self) -> tuple[str, ...]:
        r = self.ref
        return (self.component, self.instance, r.api_version, r.kind, r.namespace, r.name, r.uid)


@dataclass
class _Written:
    namespace: str
    name: str
    count: int


@dataclass
class _Bucket:
    tokens: float
    last: float


@dataclass
class EventBroadcaster:
    transport: Transport
    """The API the Events are written to (core/v1 Events: KubeLLM standalone, or the host cluster)."""
    clock: Clock = REAL_CLOCK
    options: EventOptions = field(default_factory=EventOptions)
    metrics: Metrics | None = None
    written: int = 0
    """Events created or patched so far."""

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(self.options.queue_size)
        self._seen: OrderedDict[tuple[str, ...], _Written] = OrderedDict()
        self._buckets: OrderedDict[tuple[str, ...], _Bucket] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    def new_recorder(self, component: str, instance: str = "") -> EventRecorder:
        """A recorder whose Events name `component` as their source (and `instance` as reporting instance)."""
        return EventRecorder(self, component, instance)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="event-broadcaster")

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout` seconds), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    # --- submission (synchronous, never blocks) ---------------------------------------------------------------

    def submit(self, pending: _Pending) -> None:
        if not self._allow(pending.spam_key()):
            self._dropped("rate_limited", pending)
            return
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self._dropped("queue_full", pending)

    def _allow(self, key: tuple[str, ...]) -> bool:
        now = self.clock.now()
        opts = self.options
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(opts.spam_burst), now)
            while len(self._buckets) > opts.cache_size:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(opts.spam_burst), bucket.tokens + (now - bucket.last) * opts.spam_qps)
            bucket.last = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _dropped(self, reason: str, pending: _Pending) -> None:
        if self.metrics is not None:
            self.metrics.events_dropped.labels(reason).inc()
        log.debug("event dropped", why=reason, reason=pending.reason, object=f"{pending.ref.kind}/{pending.ref.name}")

    # --- writing -----------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            pending = await self._queue.get()
            try:
                await self._write_with_retries(pending)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing an event failed", reason=pending.reason)
            finally:
                self._queue.task_done()

    async def _write_with_retries(self, pending: _Pending) -> None:
        delay = self.options.retry_delay
        for attempt in range(1, self.options.max_tries + 1):
            try:
                await self._write(pending)
                self.written += 1
                return
            except RETRYABLE as exc:
                if attempt == self.options.max_tries:
                    self._dropped("unavailable", pending)
                    log.warning("event not written: the API is unavailable", reason=pending.reason, error=repr(exc))
                    return
                await self.clock.sleep(delay)
                delay *= 2
            except errors.APIError as exc:
                self._dropped("refused", pending)
                log.warning("event refused", reason=pending.reason, object=f"{pending.ref.kind}/{pending.ref.name}",
                            code=exc.code, message=exc.message)
                return

    def _client(self, namespace: str) -> ResourceOps[Event]:
        return ResourceOps(self.transport, EVENTS, ModelCodec(Event), namespace)

    async def _write(self, p: _Pending) -> None:
        key = p.aggregation_key()
        now = rfc3339(p.at)
        seen = self._seen.get(key)
        if seen is not None:
            try:
                await self._client(seen.namespace).patch(
                    seen.name, {"count": seen.count + 1, "lastTimestamp": now}, timeout=self.options.call_timeout)
                seen.count += 1
                self._seen.move_to_end(key)
                return
            except errors.NotFound:
                del self._seen[key]  # expired or deleted: write it anew
        namespace = p.ref.namespace or CLUSTER_SCOPED_NAMESPACE
        for attempt in range(3):
            name = f"{p.ref.name}.{int(p.at * 1e9) + attempt:x}"
            try:
                await self._client(namespace).create(self._event(p, namespace, name, now),
                                                     timeout=self.options.call_timeout)
                break
            except errors.AlreadyExists:
                if attempt == 2:
                    raise
        self._seen[key] = _Written(namespace, name, 1)
        while len(self._seen) > self.options.cache_size:
            self._seen.popitem(last=False)

    @staticmethod
    def _event(p: _Pending, namespace: str, name: str, now: str) -> Event:
        r = p.ref
        return Event(
            api_version="v1", kind="Event", metadata=ObjectMeta(name=name, namespace=namespace),
            involved_object=ObjectReference(api_version=r.api_version, kind=r.kind, namespace=r.namespace,
                                            name=r.name, uid=r.uid, resource_version=r.resource_version),
            reason=p.reason, message=p.message, type=p.type, count=1, first_timestamp=now, last_timestamp=now,
            source=EventSource(component=p.component), reporting_component=p.component,
            reporting_instance=p.instance)


class EventRecorder:
    """Records Events about objects for one component (client-go's `EventRecorder`)."""

    def __init__(self, broadcaster: EventBroadcaster, component: str, instance: str = "") -> None:
        self.broadcaster = broadcaster
        self.component = component
        self.instance = instance[:MAX_REASON]

    def event(self, obj: Any, type: EventType, reason: str, message: str, *, api_version: str = "",
              kind: str = "") -> None:
        """An Event about `obj` (a typed object, a dict, or an `ObjectRef`); `api_version` and `kind` fill in
        what the object does not say. Queued; never blocks or raises for API trouble."""
        if type not in (NORMAL, WARNING):
            raise ValueError(f"an event's type is Normal or Warning, not {type!r}")
        ref = obj if isinstance(obj, ObjectRef) else ObjectRef.of(obj, api_version=api_version, kind=kind)
        if not ref.name or not ref.kind:
            log.warning("event about an object without kind or name dropped", reason=reason)
            return
        self.broadcaster.submit(_Pending(ref, type, reason[:MAX_REASON], message[:MAX_MESSAGE], self.component,
                                         self.instance, self.broadcaster.clock.wall()))

    def normal(self, obj: Any, reason: str, message: str, **kwargs: str) -> None:
        self.event(obj, NORMAL, reason, message, **kwargs)

    def warning(self, obj: Any, reason: str, message: str, **kwargs: str) -> None:
        self.event(obj, WARNING, reason, message, **kwargs)
