"""Request metrics under the names Kubernetes operators already query, with bounded label values.

Every label value of a request metric comes from a fixed set or from the set of resources this server
serves, never from the raw request: a client sending random paths or made-up methods must not create a
new time series each time (each costs memory for the life of the process and bytes on every scrape).
As kube-apiserver does, anything outside those sets is recorded under the placeholder `other`.

With `--workers N` every worker process records into files under `PROMETHEUS_MULTIPROC_DIR` (set by the
supervisor before a worker starts) and `/metrics`, whichever worker answers it, sums them all: counters and
histograms over every worker that ever ran, gauges over the workers alive (`livesum`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from kubellm.server.requestinfo import RequestInfo

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
ABORTS = Counter(
    "apiserver_request_aborts_total",
    "Number of requests which apiserver aborted possibly due to a timeout, for each group, version, verb, "
    "resource, subresource and scope",
    ["verb", "group", "version", "resource", "subresource", "scope"],
)
INFLIGHT = Gauge("apiserver_current_inflight_requests", "Maximal number of currently used inflight request limit "
                 "of this apiserver per request kind in last second.", ["request_kind"], multiprocess_mode="livesum")
WATCHERS = Gauge("apiserver_longrunning_requests", "Gauge of all active long-running apiserver requests broken out "
                 "by verb, group, version, resource, scope and component.", ["verb", "group", "version", "resource",
                                                                                 "subresource", "scope", "component"],
                 multiprocess_mode="livesum")
OPEN_CONNECTIONS = Gauge("kubellm_apiserver_open_connections",
                         "Client connections currently open (TLS handshakes in progress included).",
                         multiprocess_mode="livesum")


def exposition_registry() -> CollectorRegistry:
    """What /metrics exposes: this process's metrics, or with workers every worker's, summed."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    return registry

OTHER = "other"
"""The placeholder for any label value outside the served or fixed sets (kube's `OtherRequestMethod`)."""

VERBS = frozenset({"APPLY", "DELETE", "GET", "LIST", "PATCH", "POST", "PUT", "WATCH"})
"""Every verb label value this server can record, besides OTHER."""

SCOPES = frozenset({"resource", "namespace", "cluster"})

_KNOWN_CODES = frozenset({200, 201, 202, 204, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 406, 408, 409, 410,
                          413, 415, 422, 429, 431, 500, 501, 502, 503, 504})


def code_label(code: int) -> str:
    """A status code as a label: itself when it is one the server answers, else its class (`4xx`), so dashboards'
    `code=~"5.."` still match while the set of values stays fixed."""
    if code in _KNOWN_CODES:
        return str(code)
    if 100 <= code <= 599:
        return f"{code // 100}xx"
    return OTHER


def verb_label(method: str, info: RequestInfo, content_type: str) -> str:
    """The verb label kube-apiserver uses: the HTTP method, with LIST, WATCH and APPLY told apart; HEAD counts as
    GET; any other method is OTHER."""
    if info.verb in ("list", "watch"):
        return info.verb.upper()
    if method == "PATCH" and content_type.startswith("application/apply-patch"):
        return "APPLY"
    if method == "HEAD":
        return "GET"
    return method if method in VERBS else OTHER


def scope_label(info: RequestInfo) -> str:
    if info.name or info.verb == "create":
        return "resource"
    return "namespace" if info.namespace else "cluster"


@dataclass(frozen=True)
class ServedResources:
    """What this server serves: (group, version, resource) → the subresources served for it."""

    resources: Mapping[tuple[str, str, str], frozenset[str]]

    @classmethod
    def of(cls, entries: Iterable[tuple[str, str, str, Iterable[str]]]) -> ServedResources:
        return cls({(g, v, r): frozenset(subs) for g, v, r, subs in entries})

    def labels(self, info: RequestInfo) -> tuple[str, str, str, str]:
        """(group, version, resource, subresource) for a resource request: its own values when the resource is
        served (a subresource only when served for it), else OTHER."""
        subs = self.resources.get((info.api_group, info.api_version, info.resource))
        if subs is None:
            return OTHER, OTHER, OTHER, OTHER if info.subresource else ""
        if not info.subresource:
            return info.api_group, info.api_version, info.resource, ""
        if info.subresource in subs and len(info.parts) <= 3:
            return info.api_group, info.api_version, info.resource, info.subresource
        return info.api_group, info.api_version, info.resource, OTHER
