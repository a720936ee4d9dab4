"""One probe of a member cluster through its Kubernetes API: version, nodes, the pods that hold GPUs, and the
`nvidia` RuntimeClass. A failure becomes a `ProbeFailure` whose reason and message a person can act on."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import orjson

from kubellm.client import errors
from kubellm.client.dynamic import AsyncDynamicClient
from kubellm.client.resource import ResourceRef

NODES = ResourceRef("", "v1", "nodes", "Node", False)
PODS = ResourceRef("", "v1", "pods", "Pod", True)
RUNTIME_CLASSES = ResourceRef("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False)
GPU_RUNTIME_CLASS = "nvidia"
HOLDING_PODS = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
REGISTER_HINT = "see docs/controllers.md, 'Registering a member cluster'"


@dataclass(frozen=True)
class Observation:
    version: str
    nodes: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    runtime_class: bool | None
    """Whether RuntimeClass `nvidia` exists; None when the credentials may not read RuntimeClasses."""


class ProbeFailure(Exception):
    """Why a probe failed. `definitive`: a problem of configuration (credentials, trust), not of the moment."""

    def __init__(self, reason: str, message: str, *, reachable: bool, definitive: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.reachable = reachable
        self.definitive = definitive


async def probe(client: AsyncDynamicClient, endpoint: str, timeout: float) -> Observation:
    """Read what the status shows, each call within `timeout` seconds."""
    try:
        resp = await client.transport.request("GET", "/version", timeout=timeout)
        version = str(orjson.loads(resp.body).get("gitVersion", ""))
        # from the member's watch cache (resourceVersion=0: no etcd read, no paging), as its scheduler sees them
        nodes, _ = await client.resource_for(NODES).list_all(resource_version="0", timeout=timeout)
        pods, _ = await client.resource_for(PODS).list_all(field_selector=HOLDING_PODS, resource_version="0",
                                                           timeout=timeout)
        runtime_class = await _has_runtime_class(client, timeout)
    except errors.ClientError as exc:
        raise classify(exc, endpoint, timeout) from exc
    except (orjson.JSONDecodeError, AttributeError) as exc:
        raise ProbeFailure("ProbeFailed", f"{endpoint} answered /version with something that is not Kubernetes' "
                                          "version information", reachable=True) from exc
    return Observation(version, nodes, pods, runtime_class)


async def _has_runtime_class(client: AsyncDynamicClient, timeout: float) -> bool | None:
    try:
        await client.resource_for(RUNTIME_CLASSES).get(GPU_RUNTIME_CLASS, timeout=timeout)
    except errors.NotFound:
        return False
    except errors.Forbidden:
        return None
    return True


def classify(exc: errors.ClientError, endpoint: str, timeout: float) -> ProbeFailure:
    if isinstance(exc, errors.Unauthorized):
        return ProbeFailure(
            "Unauthorized", "the member cluster rejected the credentials (401 Unauthorized): the token or client "
            "certificate in spec.credentials is wrong, has expired or belongs to another cluster; write new "
            f"credentials to the Cluster ({REGISTER_HINT})", reachable=True, definitive=True)
    if isinstance(exc, errors.Forbidden):
        return ProbeFailure(
            "Forbidden", f"the member cluster accepted the credentials but refused the probe: {exc.message}; bind "
            f"the ClusterRole kubellm:member to that identity ({REGISTER_HINT})", reachable=True, definitive=True)
    if isinstance(exc, errors.APIError):
        return ProbeFailure("ProbeFailed", f"the member cluster answered {exc.code} {exc.reason}: {exc.message}",
                            reachable=True)
    if isinstance(exc, errors.ClientTimeout):
        return ProbeFailure("Unreachable", f"no answer from {endpoint} within {timeout:g}s", reachable=False)
    tls = _tls_error(exc)
    if tls is not None:
        return ProbeFailure(
            "UntrustedCertificate", f"the serving certificate of {endpoint} is not trusted ({tls}): set "
            "spec.caBundle to the CA that signed it", reachable=True, definitive=True)
    return ProbeFailure("Unreachable", f"cannot connect to {endpoint}: {_root_cause(exc)}", reachable=False)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in seen and len(seen) < 16:
        seen.append(node)
        nested = getattr(node, "certificate_error", None) or getattr(node, "os_error", None)
        if isinstance(nested, BaseException) and nested not in seen:
            seen.append(nested)
        node = node.__cause__ or node.__context__
    return seen


def _tls_error(exc: BaseException) -> str | None:
    for node in _chain(exc):
        # aiohttp's ClientConnectorCertificateError is an ssl.CertificateError (= SSLCertVerificationError)
        # without the attributes: the ssl error it wraps follows in the chain
        if isinstance(node, ssl.SSLCertVerificationError) and getattr(node, "verify_message", None):
            return str(node.verify_message)
    for node in _chain(exc):
        if isinstance(node, ssl.CertificateError):
            return str(getattr(node, "certificate_error", None) or node)
    return None


def _root_cause(exc: BaseException) -> str:
    chain = _chain(exc)
    for node in reversed(chain):
        if isinstance(node, OSError) and node.strerror:
            return node.strerror
    return str(chain[-1]) or type(chain[-1]).__name__
