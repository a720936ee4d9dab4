"""Leader election with client-go's semantics, on Leases held in memory with the API's optimistic concurrency
(a stale resourceVersion is a Conflict) and a manual clock: one leader at a time, renewals, takeover only
after the lease duration as the standby observed it, release on stop, and losing leadership at once when
another holds the Lease or when renewing fails for the renew deadline."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from clocks import ManualClock, settle, until
from prometheus_client import CollectorRegistry

from kubellm.apis.coordination.v1 import Lease
from kubellm.apis.meta.v1 import Status
from kubellm.client import errors
from kubellm.controller.runtime import LeaderElectionConfig, LeaderElector, Metrics


def api_error(cls: type[errors.APIError], code: int, reason: str) -> errors.APIError:
    return cls(Status(status="Failure", code=code, reason=reason, message=reason))


class Leases:
    """Leases in memory, written as the API server writes them."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.objects: dict[str, Lease] = {}
        self.revision = 0
        self.down = False
        self.writes: list[tuple[float, str]] = []
        """(time, holder) of every write."""

    def _check(self) -> None:
        if self.down:
            raise errors.TransportError("connection refused")

    def _store(self, obj: Lease) -> Lease:
        self.revision += 1
        stored = obj.model_copy(deep=True)
        stored.metadata.resource_version = str(self.revision)
        self.objects[stored.metadata.name or ""] = stored
        self.writes.append((self.clock.now(), stored.spec.holder_identity or ""))
        return stored.model_copy(deep=True)

    async def get(self, name: str, *, timeout: float | None = None) -> Lease:
        self._check()
        if name not in self.objects:
            raise api_error(errors.NotFound, 404, "NotFound")
        return self.objects[name].model_copy(deep=True)

    async def create(self, obj: Lease, *, timeout: float | None = None) -> Lease:
        self._check()
        if obj.metadata.name in self.objects:
            raise api_error(errors.AlreadyExists, 409, "AlreadyExists")
        return self._store(obj)

    async def update(self, obj: Lease, *, timeout: float | None = None) -> Lease:
        self._check()
        current = self.objects.get(obj.metadata.name or "")
        if current is None:
            raise api_error(errors.NotFound, 404, "NotFound")
        if obj.metadata.resource_version != current.metadata.resource_version:
            raise api_error(errors.Conflict, 409, "Conflict")
        return self._store(obj)

    @property
    def lease(self) -> Lease:
        return self.objects["lock"]


class Candidate:
    def __init__(self, name: str, leases: Leases, clock: ManualClock, metrics: Metrics | None = None) -> None:
        self.name = name
        self.lost = 0
        self.elector = LeaderElector(
            leases, LeaderElectionConfig("lock", "kube-system", name), on_started_leading=lambda: None,
            on_stopped_leading=self._on_lost, clock=clock, metrics=metrics, jitter=lambda: 0.5)
        self.task = asyncio.create_task(self.elector.run())

    def _on_lost(self) -> None:
        self.lost += 1

    def kill(self) -> None:
        """As SIGKILL: gone without releasing anything."""
        self.task.cancel()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def leases(clock: ManualClock) -> Leases:
    return Leases(clock)


@pytest.fixture
def candidates() -> Iterator[list[Candidate]]:
    made: list[Candidate] = []
    yield made
    for c in made:
        c.kill()


async def advance(clock: ManualClock, seconds: float, step: float = 0.05,
                  stop: Any = None) -> float:
    """Move time on in small steps, letting every task run after each; returns when `stop()` holds (the
    time spent) or after `seconds`."""
    spent = 0.0
    while spent < seconds - 1e-9:
        clock.advance(step)
        spent += step
        await settle()
        if stop is not None and stop():
            break
    return spent


async def test_one_leader_renews_and_the_standby_waits(clock: ManualClock, leases: Leases,
                                                        candidates: list[Candidate]) -> None:
    metrics = Metrics(CollectorRegistry())
    a = Candidate("a", leases, clock, metrics)
    candidates.append(a)
    await until(lambda: a.elector.leading)
    lease = leases.lease
    assert (lease.spec.holder_identity, lease.spec.lease_duration_seconds, lease.spec.lease_transitions) == ("a", 15, 0)
    assert lease.spec.acquire_time == lease.spec.renew_time and lease.spec.acquire_time.endswith("Z")
    assert metrics.registry.get_sample_value("leader_election_master_status", {"name": "lock"}) == 1
    b = Candidate("b", leases, clock)
    candidates.append(b)
    await settle()
    first_renew = lease.spec.renew_time
    await advance(clock, 60)
    assert not b.elector.leading and b.elector.leader == "a"
    assert leases.lease.spec.holder_identity == "a" and leases.lease.spec.lease_transitions == 0
    assert leases.lease.spec.renew_time != first_renew
    assert leases.lease.spec.acquire_time == lease.spec.acquire_time
    renewals = [t for t, holder in leases.writes if holder == "a"]
    assert len(renewals) >= 28 and max(b - a for a, b in itertools.pairwise(renewals)) <= 2.0 + 0.051
    assert a.elector.check() is None and b.elector.check() is None


async def test_the_standby_takes_over_a_dead_leader_after_the_lease_duration(
        clock: ManualClock, leases: Leases, candidates: list[Candidate]) -> None:
    a = Candidate("a", leases, clock)
    candidates.append(a)
    await until(lambda: a.elector.leading)
    b = Candidate("b", leases, clock)
    candidates.append(b)
    await advance(clock, 7.3)
    a.kill()
    killed = clock.now()
    last_renewal = max(t for t, holder in leases.writes if holder == "a")
    spent = await advance(clock, 30, stop=lambda: b.elector.leading)
    assert b.elector.leading
    took_over = killed + spent
    # never before the lease duration since the last renewal, and at most one standby poll later
    assert took_over - last_renewal >= 15.0
    assert took_over - killed <= 15.0 + 2.0 * 1.6 + 0.1
    lease = leases.lease
    assert lease.spec.holder_identity == "b" and lease.spec.lease_transitions == 1
    assert lease.spec.acquire_time == lease.spec.renew_time


async def test_stop_releases_so_the_standby_takes_over_at_its_next_try(
        clock: ManualClock, leases: Leases, candidates: list[Candidate]) -> None:
    metrics = Metrics(CollectorRegistry())
    a = Candidate("a", leases, clock, metrics)
    candidates.append(a)
    await until(lambda: a.elector.leading)
    b = Candidate("b", leases, clock)
    candidates.append(b)
    await advance(clock, 5)
    await a.elector.stop()
    assert a.task.done() and not a.elector.leading and a.lost == 0
    assert metrics.registry.get_sample_value("leader_election_master_status", {"name": "lock"}) == 0
    released = leases.lease.spec
    assert (released.holder_identity, released.lease_duration_seconds, released.lease_transitions) == ("", 1, 0)
    spent = await advance(clock, 10, stop=lambda: b.elector.leading)
    assert b.elector.leading and spent <= 2.0 * 1.6 + 0.1
    assert leases.lease.spec.lease_transitions == 1


async def test_a_leader_that_sees_another_holder_stops_at_once(
        clock: ManualClock, leases: Leases, candidates: list[Candidate]) -> None:
    a = Candidate("a", leases, clock)
    candidates.append(a)
    await until(lambda: a.elector.leading)
    stolen = leases.lease.model_copy(deep=True)
    stolen.spec.holder_identity = "thief"
    await leases.update(stolen)
    spent = await advance(clock, 15, stop=lambda: a.lost > 0)
    assert a.lost == 1 and not a.elector.leading
    assert spent <= 2.0 + 0.1, "at its next renewal, not after the renew deadline"
    assert leases.lease.spec.holder_identity == "thief"


async def test_a_leader_that_cannot_renew_gives_up_at_the_renew_deadline(
        clock: ManualClock, leases: Leases, candidates: list[Candidate]) -> None:
    a = Candidate("a", leases, clock)
    candidates.append(a)
    await until(lambda: a.elector.leading)
    await advance(clock, 1.0)  # just after a renewal... the next is due at 2.0
    leases.down = True
    await advance(clock, 1.0 + 9.9)
    assert a.lost == 0 and a.elector.leading, "retrying until the deadline"
    leases.down = False
    await advance(clock, 2.0)
    assert a.lost == 0 and a.elector.leading, "a renewal before the deadline keeps the lease"
    leases.down = True
    spent = await advance(clock, 30, stop=lambda: a.lost > 0)
    assert a.lost == 1 and not a.elector.leading
    assert 10.0 <= spent <= 2.0 + 10.0 + 0.1  # the next renewal, then the renew deadline
    assert a.elector.leader == "a", "it still saw itself last: health reports the stale renewal"
    await advance(clock, 15 + 20)
    assert a.elector.check() is not None


async def test_leader_election_config_follows_client_go_rules() -> None:
    assert LeaderElectionConfig("l", "ns", "me").problems() == []
    assert LeaderElectionConfig("l", "ns", "me", lease_duration=10, renew_deadline=10).problems()
    assert LeaderElectionConfig("l", "ns", "me", renew_deadline=2.4, retry_period=2).problems()
    assert LeaderElectionConfig("l", "ns", "").problems()
    with pytest.raises(ValueError):
        LeaderElector(Leases(ManualClock()), LeaderElectionConfig("l", "ns", "me", lease_duration=5, renew_deadline=6),
                      on_started_leading=lambda: None, on_stopped_leading=lambda: None)
