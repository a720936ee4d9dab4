"""The controller manager's metrics, in a registry of its own, under the names Kubernetes operators already
query: client-go's work queue metrics (`name` = the controller), controller-runtime's reconcile metrics
(`controller`), and client-go's leader election status (`name` = the lease)."""

from __future__ import annotations

from collections.abc import Hashable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubellm.controller.runtime.clock import REAL_CLOCK, Clock

QUEUE_BUCKETS = tuple(10.0 ** e for e in range(-8, 2))
"""client-go's `ExponentialBuckets(10e-9, 10, 10)`: 10 ns to 10 s."""
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
                     1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60)
"""controller-runtime's buckets of `controller_runtime_reconcile_time_seconds`."""

RESULTS = ("success", "error", "requeue", "requeue_after")
"""The values of `controller_runtime_reconcile_total`'s `result` label."""


class Metrics:
    """Every metric family of one manager (one registry; the families are made once, children per name)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.depth = Gauge("workqueue_depth", "Current depth of workqueue", ["name"], registry=r)
        self.adds = Counter("workqueue_adds_total", "Total number of adds handled by workqueue", ["name"], registry=r)
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested.", ["name"],
            buckets=QUEUE_BUCKETS, registry=r)
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes.",
            ["name"], buckets=QUEUE_BUCKETS, registry=r)
        self.retries = Counter("workqueue_retries_total", "Total number of retries handled by workqueue", ["name"],
                               registry=r)
        self.unfinished = Gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed by "
            "work_duration. Large values indicate stuck threads.", ["name"], registry=r)
        self.longest = Gauge("workqueue_longest_running_processor_seconds",
                             "How many seconds has the longest running processor for workqueue been running.",
                             ["name"], registry=r)
        self.reconcile_total = Counter("controller_runtime_reconcile_total",
                                       "Total number of reconciliations per controller", ["controller", "result"],
                                       registry=r)
        self.reconcile_errors = Counter("controller_runtime_reconcile_errors_total",
                                        "Total number of reconciliation errors per controller", ["controller"],
                                        registry=r)
        self.terminal_errors = Counter("controller_runtime_terminal_reconcile_errors_total",
                                       "Total number of terminal reconciliation errors per controller",
                                       ["controller"], registry=r)
        self.reconcile_time = Histogram("controller_runtime_reconcile_time_seconds",
                                        "Length of time per reconciliation per controller", ["controller"],
                                        buckets=RECONCILE_BUCKETS, registry=r)
        self.max_concurrent = Gauge("controller_runtime_max_concurrent_reconciles",
                                    "Maximum number of concurrent reconciles per controller", ["controller"],
                                    registry=r)
        self.active_workers = Gauge("controller_runtime_active_workers",
                                    "Number of currently used workers per controller", ["controller"], registry=r)
        self.leader = Gauge("leader_election_master_status",
                            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, "
                            "1 indicates master. 'name' is the string used to identify the lease.", ["name"],
                            registry=r)
        self.events_dropped = Counter("kubellm_events_dropped_total",
                                      "Events not written: rate limited per object, queue full, or refused",
                                      ["reason"], registry=r)

    def queue(self, name: str, clock: Clock = REAL_CLOCK) -> QueueMetricsRecorder:
        return QueueMetricsRecorder(self, name, clock)

    def controller(self, name: str) -> ControllerMetrics:
        return ControllerMetrics(self, name)


class QueueMetricsRecorder:
    """One queue's metrics (client-go's `defaultQueueMetrics`); the in-progress gauges are computed when
    scraped."""

    def __init__(self, metrics: Metrics, name: str, clock: Clock) -> None:
        self.clock = clock
        self._depth = metrics.depth.labels(name)
        self._adds = metrics.adds.labels(name)
        self._queue_duration = metrics.queue_duration.labels(name)
        self._work_duration = metrics.work_duration.labels(name)
        self._retries = metrics.retries.labels(name)
        self._added_at: dict[Hashable, float] = {}
        self._started_at: dict[Hashable, float] = {}
        metrics.unfinished.labels(name).set_function(self.unfinished_work_seconds)
        metrics.longest.labels(name).set_function(self.longest_running_processor_seconds)

    def add(self, item: Hashable) -> None:
        self._adds.inc()
        self._depth.inc()
        self._added_at.setdefault(item, self.clock.now())

    def get(self, item: Hashable) -> None:
        now = self.clock.now()
        self._depth.dec()
        added = self._added_at.pop(item, None)
        if added is not None:
            self._queue_duration.observe(max(0.0, now - added))
        self._started_at[item] = now

    def done(self, item: Hashable) -> None:
        started = self._started_at.pop(item, None)
        if started is not None:
            self._work_duration.observe(max(0.0, self.clock.now() - started))

    def retry(self) -> None:
        self._retries.inc()

    def unfinished_work_seconds(self) -> float:
        now = self.clock.now()
        return sum(now - t for t in self._started_at.values())

    def longest_running_processor_seconds(self) -> float:
        now = self.clock.now()
        return max((now - t for t in self._started_at.values()), default=0.0)


class ControllerMetrics:
    """One controller's reconcile metrics (controller-runtime's)."""

    def __init__(self, metrics: Metrics, name: str) -> None:
        self.total = {result: metrics.reconcile_total.labels(name, result) for result in RESULTS}
        for child in self.total.values():
            child.inc(0)
        self.errors = metrics.reconcile_errors.labels(name)
        self.terminal_errors = metrics.terminal_errors.labels(name)
        self.errors.inc(0)
        self.terminal_errors.inc(0)
        self.time = metrics.reconcile_time.labels(name)
        self.max_concurrent = metrics.max_concurrent.labels(name)
        self.active_workers = metrics.active_workers.labels(name)
