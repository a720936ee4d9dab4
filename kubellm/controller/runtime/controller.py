"""A controller: informers → event handlers that enqueue keys → a rate-limited work queue → workers that call
`reconcile(key)` (sample-controller's loop, with controller-runtime's result handling).

    controller = Controller("cluster", ClusterReconciler(...), options=ControllerOptions(workers=2))
    controller.watch_primary(clusters.informer())                       # its own objects
    controller.watch(llms.informer(), owner_keys("Cluster", "cluster.kubellm.io", owner_namespaced=False))
    await controller.start()          # starts the informers, waits for their caches, then the workers
    ...
    await controller.shutdown(30)     # no new keys; in-flight reconciles finish (or are cancelled at 30 s)

What `reconcile` returns or raises decides what happens to the key (see `reconciler`): done (backoff
forgotten), requeue after a delay, requeue with backoff, retried with exponential backoff after an
exception, or recorded and left alone after a `TerminalError`: `controller_runtime_reconcile_errors_total`,
`controller_runtime_terminal_reconcile_errors_total`, a Warning Event on the primary object (the Event's
reason is the error's), and the reconciler's `on_terminal_error` hook. Each reconcile has a deadline
(`reconcile_timeout`; a reconcile past it is cancelled and counts as an ordinary error). The queue never
hands a key to two workers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from dataclasses import dataclass
from typing import Any

import structlog

from kubellm.client.informers import Registration, SharedIndexInformer
from kubellm.controller.runtime.clock import REAL_CLOCK, Clock
from kubellm.controller.runtime.events import EventRecorder
from kubellm.controller.runtime.handlers import EnqueueHandler, KeyMapper, Predicate, UpdatePredicate, object_key
from kubellm.controller.runtime.metrics import ControllerMetrics, Metrics
from kubellm.controller.runtime.ratelimiter import RateLimiter, default_controller_rate_limiter
from kubellm.controller.runtime.reconciler import Reconciler, Result, TerminalError, TerminalErrorHandler
from kubellm.controller.runtime.workqueue import RateLimitingQueue

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ControllerOptions:
    workers: int = 1
    """Reconciles running at once (each on a different key)."""
    reconcile_timeout: float = 300.0
    """Deadline of one reconcile."""
    base_delay: float = 0.005
    max_delay: float = 1000.0
    """Per-key exponential backoff after failures."""
    qps: float = 10.0
    burst: int = 100
    """The overall rate of retries (a token bucket shared by all keys)."""

    def problems(self) -> list[str]:
        out = []
        if self.workers < 1:
            out.append("a controller needs at least one worker")
        if self.reconcile_timeout <= 0:
            out.append("the reconcile timeout must be positive")
        if self.base_delay <= 0 or self.max_delay < self.base_delay:
            out.append("the backoff's base delay must be positive and at most its maximum")
        if self.qps <= 0 or self.burst < 1:
            out.append("the retry rate must be positive, with a burst of at least 1")
        return out


class Controller:
    def __init__(self, name: str, reconciler: Reconciler, *, options: ControllerOptions | None = None,
                 recorder: EventRecorder | None = None, metrics: Metrics | None = None, clock: Clock = REAL_CLOCK,
                 rate_limiter: RateLimiter[str] | None = None) -> None:
        self.name = name
        self.reconciler = reconciler
        self.options = options or ControllerOptions()
        problems = self.options.problems()
        if problems:
            raise ValueError(f"controller {name}: " + "; ".join(problems))
        self.recorder = recorder
        self.clock = clock
        opts = self.options
        limiter = rate_limiter if rate_limiter is not None else default_controller_rate_limiter(
            clock, base_delay=opts.base_delay, max_delay=opts.max_delay, qps=opts.qps, burst=opts.burst)
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(
            name, limiter, metrics=metrics.queue(name, clock) if metrics is not None else None, clock=clock)
        self._metrics: ControllerMetrics | None = metrics.controller(name) if metrics is not None else None
        if self._metrics is not None:
            self._metrics.max_concurrent.set(opts.workers)
        self._watches: list[tuple[SharedIndexInformer[Any], Registration]] = []
        self._primary: SharedIndexInformer[Any] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._log = log.bind(controller=name)

    # --- what it watches ---------------------------------------------------------------------------------------

    def watch(self, informer: SharedIndexInformer[Any], mapper: KeyMapper = object_key, *,
              predicate: Predicate | None = None, update_predicate: UpdatePredicate | None = None) -> Controller:
        """Enqueue the keys `mapper` gives for every change `informer` sees (that the predicates pass)."""
        handler: EnqueueHandler[Any] = EnqueueHandler(self.queue, mapper, predicate=predicate,
                                                      update_predicate=update_predicate)
        self._watches.append((informer, informer.add_event_handler(handler)))
        return self

    def watch_primary(self, informer: SharedIndexInformer[Any], *, predicate: Predicate | None = None,
                      update_predicate: UpdatePredicate | None = None) -> Controller:
        """The resource this controller reconciles: its objects' own keys are enqueued, and a terminal error's
        Warning Event is recorded on the object of the key."""
        self._primary = informer
        return self.watch(informer, object_key, predicate=predicate, update_predicate=update_predicate)

    @property
    def informers(self) -> list[SharedIndexInformer[Any]]:
        return list(dict.fromkeys(informer for informer, _ in self._watches))

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: str, delay: float) -> None:
        self.queue.add_after(key, delay)

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def start_informers(self) -> None:
        """Start the informers it watches that are not running (shared informers started by their factory are
        left as they are)."""
        for informer in self.informers:
            informer.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Whether every watched informer has its initial list (within `timeout` seconds)."""
        results = await asyncio.gather(*(informer.wait_for_sync(timeout) for informer in self.informers))
        return all(results)

    def start_workers(self) -> None:
        if self._workers or self.queue.shutting_down:
            return
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._worker(), name=f"controller:{self.name}:{i}")
                         for i in range(self.options.workers)]
        self._log.info("starting workers", workers=self.options.workers)

    async def start(self, sync_timeout: float | None = 120.0) -> None:
        """Informers, then their caches, then the workers; TimeoutError when a cache did not sync in time."""
        self.start_informers()
        if not await self.wait_for_sync(sync_timeout):
            raise TimeoutError(f"controller {self.name}: caches not synced within {sync_timeout}s")
        self.start_workers()

    @property
    def running(self) -> bool:
        return any(not w.done() for w in self._workers)

    async def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop taking keys; wait up to `timeout` seconds for the reconciles in flight, then cancel them; then
        close the reconciler if it has a `close()`. Whether every reconcile in flight finished."""
        for informer, registration in self._watches:
            informer.remove_event_handler(registration)
        self.queue.shut_down()
        workers, self._workers = self._workers, []
        pending: set[asyncio.Task[None]] = set()
        if workers:
            _, pending = await asyncio.wait(workers, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if pending:
                self._log.warning("reconciles cancelled at the shutdown deadline", cancelled=len(pending))
        await self._close_reconciler()
        return not pending

    async def _close_reconciler(self) -> None:
        """A reconciler with a `close()` (connections of its own, say) is closed after its last reconcile."""
        close = getattr(self.reconciler, "close", None)
        if not callable(close):
            return
        try:
            async with asyncio.timeout(10.0):
                result = close()
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            self._log.warning("closing the reconciler failed", error=repr(exc))

    # --- the work -------------------------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            try:
                await self._process(key)
            finally:
                self.queue.done(key)

    async def _process(self, key: str) -> None:
        m = self._metrics
        started = self.clock.now()
        if m is not None:
            m.active_workers.inc()
        try:
            outcome = await self._reconcile(key)
        finally:
            if m is not None:
                m.active_workers.dec()
                m.time.observe(max(0.0, self.clock.now() - started))
        if m is not None:
            m.total[outcome].inc()

    async def _reconcile(self, key: str) -> str:
        """Reconcile `key` and dispose of it; the `result` label of what happened."""
        try:
            async with asyncio.timeout(self.options.reconcile_timeout):
                result = await self.reconciler.reconcile(key)
        except TerminalError as err:
            await self._terminal(key, err)
            return "error"
        except Exception as err:
            self.queue.add_rate_limited(key)
            if self._metrics is not None:
                self._metrics.errors.inc()
            requeues = self.queue.num_requeues(key)
            # the traceback once per run of failures of a key; then the error alone
            self._log.error("reconciler error", key=key, error=repr(err), requeues=requeues,
                            exc_info=requeues <= 1 and not isinstance(err, TimeoutError | OSError))
            return "error"
        result = result or Result()
        if result.requeue_after > 0:
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
            return "requeue_after"
        if result.requeue:
            self.queue.add_rate_limited(key)
            return "requeue"
        self.queue.forget(key)
        return "success"

    async def _terminal(self, key: str, err: TerminalError) -> None:
        self.queue.forget(key)
        if self._metrics is not None:
            self._metrics.errors.inc()
            self._metrics.terminal_errors.inc()
        self._log.error("terminal reconciler error: not retried until the object changes", key=key,
                        reason=err.reason, error=err.message)
        primary = self._primary
        obj = primary.indexer.get_by_key(key) if primary is not None else None
        if obj is not None and self.recorder is not None and primary is not None:
            ref = primary.source.ref
            self.recorder.warning(obj, err.reason, err.message, api_version=ref.api_version, kind=ref.kind)
        if isinstance(self.reconciler, TerminalErrorHandler):
            try:
                async with asyncio.timeout(self.options.reconcile_timeout):
                    await self.reconciler.on_terminal_error(key, err)
            except Exception as exc:
                self._log.error("the terminal error hook failed", key=key, error=repr(exc))
