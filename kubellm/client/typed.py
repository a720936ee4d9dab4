"""Bases of the generated typed clients (`kubellm/client/generated`), asyncio and blocking.

A generated class per resource names the verbs its resource has (status and scale only where served) and
delegates each to `ResourceOps` with the resource's pydantic type; the blocking flavour runs the very same
coroutines on its clientset's private event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

from pydantic import BaseModel

from kubellm.client import codec
from kubellm.client.config import Config
from kubellm.client.resource import FieldValidation, ModelCodec, ResourceOps, ResourceRef
from kubellm.client.rest.loop import LoopThread
from kubellm.client.rest.transport import Transport
from kubellm.client.scale import SCALE_API_VERSION, Scale

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")


class AsyncTypedClient(Generic[T]):
    """A resource's asyncio client, in one namespace ("" for all, on namespaced resources)."""

    ref: ClassVar[ResourceRef]
    model: ClassVar[type[BaseModel]]

    def __init__(self, transport: Transport, namespace: str = "") -> None:
        self._ops: ResourceOps[T] = ResourceOps(transport, self.ref, ModelCodec(cast("type[T]", self.model)), namespace)

    @property
    def namespace(self) -> str:
        return self._ops.namespace

    @property
    def ops(self) -> ResourceOps[T]:
        """The underlying verbs (also the list/watch source of informers)."""
        return self._ops


class TypedClient(Generic[T]):
    """A resource's blocking client: the asyncio client's coroutines, run on the clientset's loop thread."""

    ref: ClassVar[ResourceRef]
    model: ClassVar[type[BaseModel]]

    def __init__(self, transport: Transport, loop: LoopThread, namespace: str = "") -> None:
        self._ops: ResourceOps[T] = ResourceOps(transport, self.ref, ModelCodec(cast("type[T]", self.model)), namespace)
        self._loop = loop

    @property
    def namespace(self) -> str:
        return self._ops.namespace

    @property
    def ops(self) -> ResourceOps[T]:
        return self._ops

    def _run(self, coro: Coroutine[Any, Any, R]) -> R:
        return self._loop.run(coro)

    def _iterate(self, source: AsyncIterator[R]) -> Iterator[R]:
        return self._loop.iterate(source)


async def get_scale(ops: ResourceOps[Any], name: str, timeout: float | None) -> Scale:
    """The autoscaling/v1 Scale of the object `name`."""
    return codec.decode(Scale, await ops.request_json("GET", name, "scale", timeout=timeout))


async def update_scale(ops: ResourceOps[Any], name: str, scale: Scale, dry_run: bool, field_manager: str | None,
                       field_validation: FieldValidation | None, timeout: float | None) -> Scale:
    """PUT a Scale (its resourceVersion, when set, makes it conditional)."""
    body = codec.encode(scale)
    body.setdefault("apiVersion", SCALE_API_VERSION)
    body.setdefault("kind", "Scale")
    query: list[tuple[str, str]] = [("dryRun", "All")] if dry_run else []
    if field_manager:
        query.append(("fieldManager", field_manager))
    if field_validation:
        query.append(("fieldValidation", field_validation))
    return codec.decode(Scale, await ops.request_json("PUT", name, "scale", body=body, query=query, timeout=timeout))


class AsyncClientSetBase:
    """The asyncio clientset's connection: one transport (one connection pool) for every group."""

    def __init__(self, config: Config | None = None, *, transport: Transport | None = None) -> None:
        self.config = config if config is not None else (transport.config if transport else Config.load())
        self.transport = transport or Transport(self.config)

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


class ClientSetBase:
    """The blocking clientset's connection and its private event loop thread."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config if config is not None else Config.load()
        self.transport = Transport(self.config)
        self.loop = LoopThread()

    def close(self) -> None:
        self.loop.close(self.transport.close())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
