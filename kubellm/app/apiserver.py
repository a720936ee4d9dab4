"""kubellm-apiserver: storage (embedded or external etcd), the registry, and periodic compaction.

The HTTP front end is added on top of `Server.stores`; this module owns start-up and shutdown.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass, field

import structlog

from kubellm.app import logging as applog
from kubellm.app.options import Config, Options
from kubellm.registry.options import RegistryOptions
from kubellm.registry.registry import build_stores
from kubellm.registry.storage.etcd import EtcdConfig, EtcdStorage
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd
from kubellm.registry.store import Store

log = structlog.get_logger(__name__)


@dataclass
class Server:
    config: Config
    storage: EtcdStorage | None = None
    etcd: EmbeddedEtcd | None = None
    stores: dict[str, Store] = field(default_factory=dict)

    async def start(self) -> None:
        cfg = self.config
        endpoints = cfg.etcd_servers
        if not endpoints:
            self.etcd = EmbeddedEtcd(cfg.state_dir / "etcd")
            endpoints = (await self.etcd.start(),)
        self.storage = EtcdStorage(EtcdConfig(
            endpoints=endpoints, prefix=cfg.etcd_prefix, ca_file=cfg.etcd_cafile, cert_file=cfg.etcd_certfile,
            key_file=cfg.etcd_keyfile, compaction_interval=cfg.etcd_compaction_interval))
        await self.storage.check_health()
        self.storage.start_compactor()
        self.stores = build_stores(self.storage, RegistryOptions(cfg.default_image, cfg.default_hf_endpoint))
        log.info("kubellm-apiserver started", etcd=list(endpoints), resources=sorted(self.stores))

    async def stop(self) -> None:
        if self.storage is not None:
            await self.storage.close()
        if self.etcd is not None:
            await self.etcd.stop()
        log.info("kubellm-apiserver stopped")


async def run(config: Config) -> None:
    server = Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    options = Options.parse(argv).complete()
    problems = options.validate()
    if problems:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        return 2
    config = options.config()
    applog.configure(config.log_format)
    asyncio.run(run(config))
    return 0
