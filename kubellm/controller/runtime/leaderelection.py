"""Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics (`tools/leaderelection`).

Every candidate runs a `LeaderElector` with its own identity. The Lease records `holderIdentity`,
`leaseDurationSeconds`, `acquireTime`, `renewTime` and `leaseTransitions`; every write is an update
conditional on the resourceVersion read (optimistic concurrency), so two candidates never both succeed.

- A candidate takes the Lease when it does not exist, has no holder, or its record has not changed for
  `leaseDurationSeconds` *as observed on the candidate's own monotonic clock* (client-go's `observedTime`:
  no clock synchronisation between candidates is assumed). A standby tries every `retry_period` (with
  client-go's jitter factor 1.2), and wakes right when the observed lease expires.
- The leader renews every `retry_period`; when renewing has not succeeded for `renew_deadline`, or the Lease
  names another holder, leadership is lost and `on_stopped_leading` is called at once (the manager exits,
  as kube-controller-manager does). `lease_duration > renew_deadline > 1.2 * retry_period`, so a leader
  gives up before anyone may take over.
- `stop()` (clean shutdown) releases a held Lease (no holder, `leaseDurationSeconds: 1`), so a standby
  takes over at its next try instead of waiting for the lease to expire.

The Lease is read and written through any client with `get`, `create` and `update` (`LeaseClient`): the
generated `AsyncLeaseClient` of KubeLLM's clientset works against KubeLLM and against any kube-apiserver.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog

from kubellm.apis.coordination.v1 import Lease, LeaseSpec
from kubellm.apis.meta.v1 import ObjectMeta
from kubellm.client import errors
from kubellm.controller.runtime.clock import REAL_CLOCK, Clock, sleep_or_wake
from kubellm.controller.runtime.metrics import Metrics

log = structlog.get_logger(__name__)

JITTER_FACTOR = 1.2


class LeaseClient(Protocol):
    async def get(self, name: str, *, timeout: float | None = None) -> Lease: ...

    async def create(self, obj: Lease, *, timeout: float | None = None) -> Lease: ...

    async def update(self, obj: Lease, *, timeout: float | None = None) -> Lease: ...


@dataclass(frozen=True)
class LeaderElectionConfig:
    name: str
    """The Lease's name (`--leader-election-id`)."""
    namespace: str
    identity: str
    """This candidate (unique per process: host name and a random suffix)."""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    call_timeout: float = 10.0
    """Deadline of each API call (also bounded by what is left of the renew deadline)."""

    def problems(self) -> list[str]:
        out = []
        if not self.name or not self.namespace or not self.identity:
            out.append("leader election needs a lease name, a namespace and an identity")
        if self.lease_duration < 1:
            out.append("the lease duration must be at least 1s")
        if self.lease_duration <= self.renew_deadline:
            out.append("the lease duration must be greater than the renew deadline")
        if self.retry_period <= 0 or self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            out.append(f"the renew deadline must be greater than the retry period times {JITTER_FACTOR}")
        return out


@dataclass(frozen=True)
class LeaderElectionRecord:
    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    lease_transitions: int = 0

    @classmethod
    def of(cls, lease: Lease) -> LeaderElectionRecord:
        s = lease.spec
        return cls(s.holder_identity or "", s.lease_duration_seconds or 0, s.acquire_time, s.renew_time,
                   s.lease_transitions or 0)


def micro_time(ts: float) -> str:
    """metav1.MicroTime's form: RFC 3339 with microseconds, UTC."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Outcome(enum.Enum):
    HELD = "held"
    """Acquired or renewed: this candidate holds the Lease."""
    HELD_BY_OTHER = "held by another"
    FAILED = "failed"
    """The API failed or another write came first (a conflict): try again."""


class LeaderElector:
    def __init__(self, client: LeaseClient, config: LeaderElectionConfig, *,
                 on_started_leading: Callable[[], None], on_stopped_leading: Callable[[], None],
                 clock: Clock = REAL_CLOCK, metrics: Metrics | None = None,
                 jitter: Callable[[], float] = random.random) -> None:
        problems = config.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.client = client
        self.config = config
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.clock = clock
        self.jitter = jitter
        self._gauge = metrics.leader.labels(config.name) if metrics is not None else None
        if self._gauge is not None:
            self._gauge.set(0)
        self._lease: Lease | None = None
        self._observed = LeaderElectionRecord()
        self._observed_time = float("-inf")
        self._stop = asyncio.Event()
        self._leading = False
        self._running = False
        self._done = asyncio.Event()
        self._reported_leader = ""

    # --- state ---------------------------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        """Whether the last record this candidate saw or wrote names it."""
        return self._observed.holder_identity == self.config.identity

    @property
    def leading(self) -> bool:
        """Between `on_started_leading` and losing or releasing the Lease."""
        return self._leading

    @property
    def leader(self) -> str:
        """The holder of the last record seen ("" when none)."""
        return self._observed.holder_identity

    @property
    def observed_record(self) -> LeaderElectionRecord:
        return self._observed

    def check(self, tolerance: float = 20.0) -> str | None:
        """A health check (client-go's `HealthzAdaptor`): a problem when this candidate believes it leads but
        has not renewed for the lease duration plus `tolerance`; standbys are healthy."""
        if self.is_leader() and self._observed_time + self.config.lease_duration + tolerance < self.clock.now():
            return f"failed to renew the lease {self.config.namespace}/{self.config.name}"
        return None

    # --- running ---------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Acquire the Lease, call `on_started_leading`, renew until the Lease is lost (`on_stopped_leading`)
        or `stop()` is called (the Lease is then released)."""
        self._running = True
        try:
            if not await self._acquire():
                return
            if self._stop.is_set():
                await self.release()
                return
            self._set_leading(True)
            log.info("became leader", lease=self._lease_name, identity=self.config.identity)
            self.on_started_leading()
            if await self._renew():
                self._set_leading(False)
                await self.release()
                return
            self._set_leading(False)
            log.error("leader election lost", lease=self._lease_name, identity=self.config.identity,
                      holder=self._observed.holder_identity)
            self.on_stopped_leading()
        finally:
            self._done.set()

    async def stop(self) -> None:
        """Stop trying and wait until `run` returned, having released the Lease if it held it (so a standby
        takes over at once). Bounded: every call `run` makes has a deadline."""
        self._stop.set()
        if self._running:
            await self._done.wait()

    async def release(self) -> bool:
        if not self.is_leader() or self._lease is None:
            return True
        now = self.clock.wall()
        released = LeaderElectionRecord("", 1, micro_time(now), micro_time(now), self._observed.lease_transitions)
        try:
            lease = await self.client.update(self._with_record(released), timeout=self.config.call_timeout)
        except (errors.ClientError, OSError) as exc:
            log.warning("releasing the lease failed", lease=self._lease_name, error=repr(exc))
            return False
        self._observe(lease, self.clock.now())
        log.info("lease released", lease=self._lease_name, identity=self.config.identity)
        return True

    @property
    def _lease_name(self) -> str:
        return f"{self.config.namespace}/{self.config.name}"

    def _set_leading(self, leading: bool) -> None:
        self._leading = leading
        if self._gauge is not None:
            self._gauge.set(1 if leading else 0)

    async def _acquire(self) -> bool:
        cfg = self.config
        log.info("attempting to acquire the lease", lease=self._lease_name, identity=cfg.identity)
        while not self._stop.is_set():
            outcome = await self.try_acquire_or_renew(cfg.call_timeout)
            if outcome is Outcome.HELD:
                return True
            delay = cfg.retry_period * (1.0 + self.jitter() * JITTER_FACTOR)
            now = self.clock.now()
            expiry = self._observed_time + self._observed.lease_duration_seconds
            if outcome is Outcome.HELD_BY_OTHER and now < expiry < now + delay:
                delay = expiry - now + 0.01  # try right when it expires
            await sleep_or_wake(self.clock, delay, self._stop)
        return False

    async def _renew(self) -> bool:
        """Renew every retry period; True when stopped, False when leadership is lost."""
        cfg = self.config
        while True:
            await sleep_or_wake(self.clock, cfg.retry_period, self._stop)
            if self._stop.is_set():
                return True
            deadline = self.clock.now() + cfg.renew_deadline
            while True:
                left = deadline - self.clock.now()
                outcome = await self.try_acquire_or_renew(max(0.1, min(cfg.call_timeout, left)))
                if outcome is Outcome.HELD:
                    break
                if outcome is Outcome.HELD_BY_OTHER or self.clock.now() >= deadline:
                    return False
                await sleep_or_wake(self.clock, min(cfg.retry_period, deadline - self.clock.now()), self._stop)
                if self._stop.is_set():
                    return True

    # --- one attempt -----------------------------------------------------------------------------------------------

    async def try_acquire_or_renew(self, timeout: float) -> Outcome:
        cfg = self.config
        now, wall = self.clock.now(), self.clock.wall()
        desired = LeaderElectionRecord(cfg.identity, int(cfg.lease_duration), micro_time(wall), micro_time(wall), 0)
        if self.is_leader() and self._lease is not None and now < self._observed_time + cfg.lease_duration:
            # fast path: the leader updates the version it last wrote, without reading it first
            kept = LeaderElectionRecord(cfg.identity, desired.lease_duration_seconds, self._observed.acquire_time,
                                        desired.renew_time, self._observed.lease_transitions)
            try:
                self._observe(await self.client.update(self._with_record(kept), timeout=timeout), now)
                return Outcome.HELD
            except (errors.ClientError, OSError) as exc:
                log.info("renewing the lease failed; reading it", lease=self._lease_name, error=repr(exc))
        try:
            lease = await self.client.get(cfg.name, timeout=timeout)
        except errors.NotFound:
            return await self._create(desired, now, timeout)
        except (errors.ClientError, OSError) as exc:
            log.info("reading the lease failed", lease=self._lease_name, error=repr(exc))
            return Outcome.FAILED
        record = LeaderElectionRecord.of(lease)
        self._lease = lease
        if record != self._observed:
            self._observed, self._observed_time = record, now
            self._report_leader()
        if (record.holder_identity and record.holder_identity != cfg.identity
                and now < self._observed_time + record.lease_duration_seconds):
            return Outcome.HELD_BY_OTHER
        if record.holder_identity == cfg.identity:
            desired = LeaderElectionRecord(cfg.identity, desired.lease_duration_seconds, record.acquire_time,
                                           desired.renew_time, record.lease_transitions)
        else:
            desired = LeaderElectionRecord(cfg.identity, desired.lease_duration_seconds, desired.acquire_time,
                                           desired.renew_time, record.lease_transitions + 1)
        try:
            self._observe(await self.client.update(self._with_record(desired), timeout=timeout), now)
        except (errors.ClientError, OSError) as exc:
            log.info("updating the lease failed", lease=self._lease_name, error=repr(exc))
            return Outcome.FAILED
        return Outcome.HELD

    async def _create(self, desired: LeaderElectionRecord, now: float, timeout: float) -> Outcome:
        self._lease = None
        try:
            created = await self.client.create(self._with_record(desired), timeout=timeout)
        except (errors.ClientError, OSError) as exc:
            log.info("creating the lease failed", lease=self._lease_name, error=repr(exc))
            return Outcome.FAILED
        self._observe(created, now)
        return Outcome.HELD

    def _observe(self, lease: Lease, now: float) -> None:
        self._lease = lease
        self._observed = LeaderElectionRecord.of(lease)
        self._observed_time = now
        self._report_leader()

    def _report_leader(self) -> None:
        holder = self._observed.holder_identity
        if holder and holder != self._reported_leader:
            self._reported_leader = holder
            log.info("new leader observed", lease=self._lease_name, leader=holder,
                     me=holder == self.config.identity)

    def _with_record(self, record: LeaderElectionRecord) -> Lease:
        """The Lease to write: the version last read (its resourceVersion makes the write conditional, and
        fields this client does not know are kept) with `record` as its spec; a new Lease when none exists."""
        if self._lease is None:
            lease = Lease(api_version="coordination.k8s.io/v1", kind="Lease",
                          metadata=ObjectMeta(name=self.config.name, namespace=self.config.namespace), spec=LeaseSpec())
        else:
            lease = self._lease.model_copy(deep=True)
        spec = lease.spec
        spec.holder_identity = record.holder_identity
        spec.lease_duration_seconds = record.lease_duration_seconds
        spec.acquire_time = record.acquire_time
        spec.renew_time = record.renew_time
        spec.lease_transitions = record.lease_transitions
        return lease
