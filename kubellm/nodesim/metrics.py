"""The external metric `vllm_num_requests_waiting` on `external.metrics.k8s.io/v1beta1`, served as an
aggregated API of the member cluster, so the real HPA controller scales on it.

A value per pod: pods Running on the simulated nodes in the asked namespace whose labels match the
request's `labelSelector` (the HPA's `metric.selector`), each with its `sim.kubellm.io/queue-length`
annotation or the default queue length. The HPA sums the items (target type Value) or divides the sum by
its replicas (AverageValue). Registration: an ExternalName Service on `localhost` and the APIService with
the serving certificate's CA as caBundle (the loopback aggregation of ../shared/k8s/README.md).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from kubellm.apis import errors as api_errors
from kubellm.apis.selectors import parse_label_selector
from kubellm.client import AsyncDynamicClient, ClientError, ResourceRef
from kubellm.client.informers import NAMESPACE_INDEX, Indexer
from kubellm.nodesim import clock
from kubellm.nodesim.frontproxy import Authorizer, FrontProxySettings, Unauthenticated
from kubellm.nodesim.options import METRIC, QUEUE_ANNOTATION, MetricsOptions
from kubellm.nodesim.pods import node_of

log = logging.getLogger("kubellm.nodesim.metrics")

GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
APISERVICE_NAME = f"{VERSION}.{GROUP}"
SERVICES = ResourceRef("", "v1", "services", "Service", namespaced=True)
APISERVICES = ResourceRef("apiregistration.k8s.io", "v1", "apiservices", "APIService", namespaced=False)
FIELD_MANAGER = "kubellm-nodesim"
Obj = dict[str, Any]


def status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code}, status=code)


def queue_length(pod: Obj, default: int) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(QUEUE_ANNOTATION)
    try:
        return max(0, int(raw)) if raw is not None else default
    except ValueError:
        return default


def metric_values(pods: list[Obj], selector: str, default: int, on_node: Callable[[str], bool]) -> list[Obj]:
    """One ExternalMetricValue per Running pod matching `selector` (raises StatusError on a bad selector)."""
    match = parse_label_selector(selector)
    at = clock.rfc3339(clock.now())
    items = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") != "Running":
            continue
        if not on_node(node_of(pod)) or not match.matches(meta.get("labels") or {}):
            continue
        items.append({"metricName": METRIC, "metricLabels": {**(meta.get("labels") or {}), "pod": meta["name"]},
                      "timestamp": at, "value": str(queue_length(pod, default))})
    return items


class MetricsAPI:
    def __init__(self, pods: Indexer[Obj], on_node: Callable[[str], bool], default_queue_length: int,
                 settings: FrontProxySettings, authorizer: Authorizer) -> None:
        self.pods = pods
        self.on_node = on_node
        self.default = default_queue_length
        self.settings = settings
        self.authorizer = authorizer

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._authenticate])
        for path in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(path, self._ok)
        app.router.add_get("/apis", self._groups)
        app.router.add_get(f"/apis/{GROUP}", self._group)
        app.router.add_get(f"/apis/{GROUP_VERSION}", self._resources)
        app.router.add_get(f"/apis/{GROUP_VERSION}/namespaces/{{namespace}}/{{metric}}", self._metric)
        app.router.add_get("/openapi/v2", self._openapi_v2)
        app.router.add_get("/openapi/v3", self._openapi_v3)
        return app

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in ("/healthz", "/livez", "/readyz"):
            return await handler(request)  # type: ignore[no-any-return]
        try:
            request["user"] = self.settings.authenticate(request)
        except Unauthenticated as exc:
            return status(401, "Unauthorized", str(exc))
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except web.HTTPNotFound:
            return status(404, "NotFound", f"the server could not find the requested resource ({request.path})")

    @staticmethod
    async def _ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    @staticmethod
    def _group_doc() -> Obj:
        version = {"groupVersion": GROUP_VERSION, "version": VERSION}
        return {"name": GROUP, "versions": [version], "preferredVersion": version}

    async def _groups(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group_doc()]})

    async def _group(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **self._group_doc()})

    async def _resources(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
                                  "resources": [{"name": METRIC, "singularName": "", "namespaced": True,
                                                 "kind": "ExternalMetricValueList", "verbs": ["get"]}]})

    async def _metric(self, request: web.Request) -> web.Response:
        namespace, metric = request.match_info["namespace"], request.match_info["metric"]
        try:
            allowed, reason = await self.authorizer.allowed(request["user"], {
                "namespace": namespace, "verb": "get", "group": GROUP, "version": VERSION, "resource": metric})
        except ClientError as exc:
            log.warning("SubjectAccessReview failed: %s", exc)
            return status(503, "ServiceUnavailable", "authorization is unavailable")
        if not allowed:
            return status(403, "Forbidden", f'{metric}.{GROUP} is forbidden: User "{request["user"].name}" cannot '
                                            f'get resource "{metric}" in API group "{GROUP}" in the namespace '
                                            f'"{namespace}"' + (f": {reason}" if reason else ""))
        if metric != METRIC:
            return status(404, "NotFound", f'the server could not find the metric "{metric}"; it serves {METRIC}')
        try:
            items = metric_values(self.pods.by_index(NAMESPACE_INDEX, namespace),
                                  request.query.get("labelSelector", ""), self.default, self.on_node)
        except api_errors.StatusError as exc:
            return status(400, "BadRequest", exc.message or "invalid labelSelector")
        return web.json_response({"kind": "ExternalMetricValueList", "apiVersion": GROUP_VERSION, "metadata": {},
                                  "items": items})

    @staticmethod
    async def _openapi_v2(_: web.Request) -> web.Response:
        return web.json_response({"swagger": "2.0", "info": {"title": "kubellm-nodesim", "version": VERSION},
                                  "paths": {}, "definitions": {}})

    @staticmethod
    async def _openapi_v3(_: web.Request) -> web.Response:
        return web.json_response({"paths": {}})


async def register(client: AsyncDynamicClient, options: MetricsOptions, ca_pem: bytes) -> None:
    """The ExternalName Service on localhost:port and the APIService with our CA (`ca_pem`) as caBundle."""
    ca = base64.b64encode(ca_pem).decode()
    port = options.port
    await client.resource_for(SERVICES, options.service_namespace).apply(
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": options.service_name, "namespace": options.service_namespace},
         "spec": {"type": "ExternalName", "externalName": "localhost",
                  "ports": [{"name": "https", "port": port, "protocol": "TCP", "targetPort": port}]}},
        field_manager=FIELD_MANAGER, force=True, timeout=10)
    await client.resource_for(APISERVICES).apply(
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": APISERVICE_NAME},
         "spec": {"group": GROUP, "version": VERSION, "caBundle": ca, "groupPriorityMinimum": 100,
                  "versionPriority": 100,
                  "service": {"namespace": options.service_namespace, "name": options.service_name, "port": port}}},
        field_manager=FIELD_MANAGER, force=True, timeout=10)
