"""The controller manager: builds the selected controllers over shared clients and informers, fills the
caches, then runs the controllers' workers while it leads.

Start: health and metrics endpoints → Event broadcaster → controllers (their factories ask the shared
informer factories for what they watch) → informers → caches synced (`/readyz` turns ready, leader or
not) → leader election → on leading, the workers start. A standby keeps its caches warm and its queues
filled, so it takes over without listing again; it never reconciles and never writes.

Losing the Lease ends the process at once (exit code 1, as kube-controller-manager): nothing the old
leader still has in flight may race the new leader.

Stop (SIGTERM/SIGINT): `/readyz` fails, no new keys are taken, reconciles in flight get the grace period
to finish (then are cancelled), then the Lease is released (a standby takes over at its next try), then
informers, Events (queued ones are written, bounded) and connections are closed.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable
from typing import Any

import structlog

from kubellm.client.dynamic import AsyncDynamicClient
from kubellm.client.generated.clientset import AsyncClientSet, AsyncSharedInformerFactory
from kubellm.client.generated.coordination_v1 import AsyncLeaseClient
from kubellm.client.informers import AsyncDynamicInformerFactory, SharedIndexInformer
from kubellm.client.rest.transport import Transport
from kubellm.controller.manager import logging as mlog
from kubellm.controller.manager.health import Check, CheckResult, Endpoints
from kubellm.controller.manager.options import Config
from kubellm.controller.manager.registry import ControllerContext, ControllerSpec
from kubellm.controller.runtime.clock import REAL_CLOCK, Clock
from kubellm.controller.runtime.controller import Controller, ControllerOptions
from kubellm.controller.runtime.events import EventBroadcaster
from kubellm.controller.runtime.leaderelection import LeaderElector
from kubellm.controller.runtime.metrics import Metrics

log = structlog.get_logger(__name__)


def exit_now(reason: str) -> None:
    """Stop acting at once: log, flush, and end the process (no cleanup that could still act)."""
    log.critical("exiting at once", reason=reason)
    mlog.flush()
    os._exit(1)


class Manager:
    def __init__(self, config: Config, *, clock: Clock = REAL_CLOCK, metrics: Metrics | None = None,
                 on_fatal: Callable[[str], None] = exit_now) -> None:
        self.config = config
        self.clock = clock
        self.on_fatal = on_fatal
        self.metrics = metrics if metrics is not None else Metrics()
        self.clientset = AsyncClientSet(config.api)
        self.dynamic = AsyncDynamicClient(transport=self.clientset.transport)
        self.informers = AsyncSharedInformerFactory(self.clientset)
        self.dynamic_informers = AsyncDynamicInformerFactory(self.clientset.transport)
        self._events_transport = Transport(config.events_api)
        self.broadcaster = EventBroadcaster(self._events_transport, clock=clock, metrics=self.metrics)
        self._election_transport: Transport | None = None
        self.elector: LeaderElector | None = None
        if config.leader_election is not None:
            self._election_transport = Transport(config.election_api)
            self.elector = LeaderElector(
                AsyncLeaseClient(self._election_transport, config.leader_election.namespace),
                config.leader_election, on_started_leading=self._start_workers,
                on_stopped_leading=lambda: self.on_fatal("leader election lost"), clock=clock, metrics=self.metrics)
        self.controllers: list[Controller] = []
        self.synced = False
        self.shutting_down = False
        self.workers_started = False
        self._election_task: asyncio.Task[None] | None = None
        self._stopped = False
        self.endpoints = Endpoints(
            self.metrics.registry,
            healthz=[Check("ping", lambda: (True, "")), Check("leader-election", self._election_health)],
            readyz=[Check("informer-sync", self._synced), Check("shutdown", self._not_shutting_down),
                    Check("leader-election", self._leading)],
            bind_address=config.bind_address, health_port=config.health_port, metrics_port=config.metrics_port)

    # --- health -------------------------------------------------------------------------------------------------

    def _election_health(self) -> CheckResult:
        problem = self.elector.check() if self.elector is not None else None
        return (problem is None, problem or "")

    def _synced(self) -> CheckResult:
        return (True, "") if self.synced else (False, "caches not synced yet")

    def _not_shutting_down(self) -> CheckResult:
        return (False, "shutting down") if self.shutting_down else (True, "")

    def _leading(self) -> CheckResult:
        """Informational: a standby is ready too."""
        if self.elector is None:
            return True, "disabled"
        return True, "leading" if self.elector.leading else "standby"

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def informers_to_sync(self) -> list[SharedIndexInformer[Any]]:
        found = [*self.informers.informers.values(), *self.dynamic_informers.informers.values()]
        for controller in self.controllers:
            found += controller.informers
        return list(dict.fromkeys(found))

    async def start(self) -> None:
        cfg = self.config
        await self.endpoints.start()
        log.info("serving health and metrics", health=self.endpoints.health_url, metrics=self.endpoints.metrics_url,
                 identity=cfg.identity, controllers=[s.name for s in cfg.controllers],
                 leader_election=cfg.leader_election is not None)
        self.broadcaster.start()
        for spec in cfg.controllers:
            self.controllers.append(await self._build(spec))
        self.informers.start()
        self.dynamic_informers.start()
        for controller in self.controllers:
            controller.start_informers()
        informers = self.informers_to_sync()
        results = await asyncio.gather(*(i.wait_for_sync(cfg.cache_sync_timeout) for i in informers))
        if not all(results):
            missing = [i.name for i, ok in zip(informers, results) if not ok]
            raise TimeoutError(f"caches not synced within {cfg.cache_sync_timeout}s: {missing}")
        self.synced = True
        log.info("caches synced", informers=len(informers))
        if self.elector is None:
            self._start_workers()
            return
        self._election_task = asyncio.get_running_loop().create_task(self.elector.run(), name="leader-election")
        self._election_task.add_done_callback(self._election_ended)

    async def _build(self, spec: ControllerSpec) -> Controller:
        cfg = self.config
        ctx = ControllerContext(
            name=spec.name, clientset=self.clientset, dynamic=self.dynamic, informers=self.informers,
            dynamic_informers=self.dynamic_informers,
            recorder=self.broadcaster.new_recorder(f"{spec.name}-controller", cfg.identity), metrics=self.metrics,
            options=ControllerOptions(workers=cfg.workers.get(spec.name, spec.workers),
                                      reconcile_timeout=cfg.reconcile_timeout),
            identity=cfg.identity, clock=self.clock, settings=cfg.settings)
        made = spec.factory(ctx)
        controller = await made if inspect.isawaitable(made) else made
        if not isinstance(controller, Controller):
            raise TypeError(f"the factory of controller {spec.name} returned {type(controller).__name__}")
        return controller

    def _start_workers(self) -> None:
        if self.shutting_down or self.workers_started:
            return
        self.workers_started = True
        for controller in self.controllers:
            controller.start_workers()
        log.info("controllers running", controllers=[c.name for c in self.controllers])

    def _election_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.shutting_down:
            return
        exc = task.exception()
        self.on_fatal(f"leader election ended unexpectedly: {exc!r}" if exc else "leader election ended")

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.shutting_down = True
        grace = self.config.shutdown_grace_period
        drained = await asyncio.gather(*(c.shutdown(grace) for c in self.controllers))
        log.info("controllers stopped", drained=all(drained))
        if self.elector is not None:
            await self.elector.stop()  # releases the Lease, after the last reconcile
        if self._election_task is not None and not self._election_task.done():
            self._election_task.cancel()
        await self.informers.shutdown()
        await self.dynamic_informers.shutdown()
        await self.broadcaster.shutdown(timeout=5.0)
        await self.endpoints.stop()
        for transport in (self._events_transport, self._election_transport):
            if transport is not None:
                await transport.close()
        await self.clientset.close()
        log.info("kubellm-controller-manager stopped")
