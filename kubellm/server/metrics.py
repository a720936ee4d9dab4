"""Request metrics under the names Kubernetes operators already query."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "apiserver_request_total",
    "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, "
    "component, and HTTP response code.",
    ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component", "code"],
)
DURATION = Histogram(
    "apiserver_request_duration_seconds",
    "Response latency distribution in seconds for each verb, dry run value, group, version, resource, "
    "subresource, scope and component.",
    ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"],
    buckets=(0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60),
)
INFLIGHT = Gauge("apiserver_current_inflight_requests", "Maximal number of currently used inflight request limit "
                 "of this apiserver per request kind in last second.", ["request_kind"])
WATCHERS = Gauge("apiserver_longrunning_requests", "Gauge of all active long-running apiserver requests broken out "
                 "by verb, group, version, resource, scope and component.", ["verb", "group", "version", "resource",
                                                                                 "subresource", "scope", "component"])
