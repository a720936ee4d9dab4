"""kubellm-apiserver: storage (embedded or external etcd), the registry, compaction, and HTTPS serving.

Start-up order: etcd → storage health (waited for: the server starts before etcd is up, and a SIGTERM
while it waits stops it) → compactor → Stores → PKI and kubeconfig → HTTPS listener. Shutdown reverses it.
With `--workers N` (N > 1) this process is the supervisor of N such servers (kubellm/app/supervisor.py), each
a worker (kubellm/app/workers.py) that uses the supervisor's etcd and listening sockets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import platform
import signal
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from cryptography import x509

from kubellm import __version__
from kubellm.app import logging as applog
from kubellm.app import oidc, preflight
from kubellm.app.bootstrap import ensure_admin_user, ensure_default_policy
from kubellm.app.delegation import (
    DelegatedAuthentication,
    DelegatedAuthorization,
    FrontProxySettings,
    HostNamespaces,
    read_front_proxy_settings,
)
from kubellm.app.etcd_pki import ensure_etcd_pki
from kubellm.app.kubeconfig import serving_pki, serving_url, write_access_files
from kubellm.app.ledger import RemoteLedger
from kubellm.app.lockout import SourceThrottle
from kubellm.app.login import AUDIENCE, ISSUER, LoginService, load_keyring, refresh_keyring
from kubellm.app.namespaces import ensure_default_namespaces, expire_events, finalize_namespaces
from kubellm.app.options import Config, Options
from kubellm.app.rbac_source import CacheRuleSource
from kubellm.app.revocations import SharedRevocations
from kubellm.app.workers import Siblings, WorkerSpec, die_with_parent
from kubellm.registry.options import RegistryOptions
from kubellm.registry.registry import ALL_RESOURCES, build_stores
from kubellm.registry.rest import Resource
from kubellm.registry.storage.cacher import CachedStorage
from kubellm.registry.storage.etcd import EtcdStorage
from kubellm.registry.storage.etcd.election import Election
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd
from kubellm.registry.storage.tasks import Periodic, cancel_and_wait
from kubellm.registry.store import Store, resource_root
from kubellm.server.app import APIServerApp
from kubellm.server.audit import DEFAULT_POLICY, AuditLog, Policy
from kubellm.server.authentication import Authentication
from kubellm.server.authorization import Authorization
from kubellm.server.certs import PKI
from kubellm.server.health import Health, HealthCheck
from kubellm.server.listener import LimitedSite, connection_budget
from kubellm.server.protocol import BoundedAppRunner
from kubellm.service.authn import (
    Authenticator,
    Chain,
    RequestHeaderAuthenticator,
    TokenAuthenticator,
    X509Authenticator,
    load_certificates,
)
from kubellm.service.passwords import PasswordHasher, PasswordPolicy
from kubellm.service.rbac import Authorizer
from kubellm.service.tokens import OIDCVerifier, TokenIssuer

log = structlog.get_logger(__name__)


def tls_and_authentication(cfg: Config, pki: PKI, tokens: tuple[Authenticator, ...],
                           front_proxy: FrontProxySettings | None = None) -> tuple[ssl.SSLContext, Chain]:
    """The serving TLS context (client certificates optional, verified against the client CA and the
    front-proxy CA) and the authenticator chain that reads identities from what it verified."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg.tls_cert_file or str(pki.serving.cert), cfg.tls_private_key_file or str(pki.serving.key))
    client_ca = Path(cfg.client_ca_file or pki.client_ca.cert)
    ctx.load_verify_locations(str(client_ca))
    front_proxy_cas: tuple[x509.Certificate, ...] = ()
    request_header = RequestHeaderAuthenticator((), cfg.requestheader_allowed_names)
    if cfg.requestheader_client_ca_file:
        ctx.load_verify_locations(cfg.requestheader_client_ca_file)
        front_proxy_cas = tuple(load_certificates(Path(cfg.requestheader_client_ca_file).read_bytes()))
        request_header = RequestHeaderAuthenticator(front_proxy_cas, cfg.requestheader_allowed_names)
    elif front_proxy is not None:
        ctx.load_verify_locations(cadata=front_proxy.client_ca_pem)
        front_proxy_cas = tuple(load_certificates(front_proxy.client_ca_pem.encode()))
        request_header = RequestHeaderAuthenticator(front_proxy_cas, front_proxy.allowed_names,
                                                    front_proxy.username_headers, front_proxy.group_headers,
                                                    front_proxy.extra_header_prefixes)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    chain = Chain((
        request_header,
        X509Authenticator(tuple(load_certificates(client_ca.read_bytes()))),
        *tokens,
    ))
    return ctx, chain


def audit_log(cfg: Config) -> AuditLog | None:
    if cfg.audit_log_path is None:
        return None
    policy = Policy.load(cfg.audit_policy_file) if cfg.audit_policy_file else DEFAULT_POLICY
    return AuditLog(cfg.audit_log_path, policy)


def version_info() -> dict[str, str]:
    major, minor = __version__.split(".")[:2]
    return {"major": major, "minor": minor, "gitVersion": f"v{__version__}", "gitCommit": "", "gitTreeState": "",
            "buildDate": "", "goVersion": f"python{platform.python_version()}", "compiler": "cpython",
            "platform": f"{platform.system().lower()}/{platform.machine()}"}


@dataclass
class Server:
    config: Config
    storage: CachedStorage | None = None
    etcd: EmbeddedEtcd | None = None
    etcd_storage: EtcdStorage | None = None
    """The etcd backend, from its creation (before the watch cache wraps it): closed on stop."""
    stores: dict[str, Store] = field(default_factory=dict)
    runner: web.AppRunner | None = None
    health: Health | None = None
    url: str = ""
    kubeconfig: Path | None = None
    audit: AuditLog | None = None
    login: LoginService | None = None
    revocations: SharedRevocations | None = None
    jobs: list[Periodic] = field(default_factory=list)
    """Periodic background jobs (key refresh, lockout sweep, ...): started with the listener, in /readyz."""
    worker: WorkerSpec | None = None
    """Set when this process is one of `--workers`: the supervisor's etcd, sockets and status directory."""
    election: Election | None = None
    """Which one process among all on this etcd runs the sweeps (namespaces, events, lockouts, revocations)."""
    siblings: Siblings | None = None
    _status: asyncio.Task[None] | None = None

    async def start(self) -> None:
        cfg = self.config
        preflight.check_files(cfg)
        values = preflight.load_encryption(cfg)
        endpoints = cfg.etcd_servers
        ca_file, cert_file, key_file = cfg.etcd_cafile, cfg.etcd_certfile, cfg.etcd_keyfile
        if not endpoints:
            # The embedded etcd accepts only KubeLLM's client certificate, on loopback, over TLS.
            tls = ensure_etcd_pki(cfg.state_dir / "etcd-pki")
            self.etcd = EmbeddedEtcd(cfg.state_dir / "etcd", tls=tls)
            endpoints = (await self.etcd.start(),)
            self.etcd.supervise(max_failed_restarts=cfg.embedded_etcd_max_failed_restarts)
            ca_file, cert_file, key_file = str(tls.ca_file), str(tls.client_cert), str(tls.client_key)
        etcd = EtcdStorage(preflight.etcd_config(cfg, endpoints, ca_file, cert_file, key_file), values)
        self.etcd_storage = etcd
        await etcd.wait_until_healthy()
        await preflight.check_decryption(etcd, values, cfg)
        etcd.start_compactor()
        index = self.worker.index if self.worker is not None else 0
        self.election = Election(etcd.client, cfg.etcd_prefix, "kubellm-apiserver",
                                 f"{socket.gethostname()}:{cfg.state_dir}:{index}")
        self.election.start()
        served = tuple(info for info in ALL_RESOURCES if cfg.serve_host_kinds or not info.host_kind)
        roots = [resource_root(info) for info in served]
        self.storage = CachedStorage(etcd, roots)
        self.storage.start()
        await asyncio.wait_for(self.storage.wait_ready(), 30)
        hasher, policy = PasswordHasher(), PasswordPolicy()
        self.stores = build_stores(self.storage, infos=served, options=RegistryOptions(
            cfg.default_image, cfg.default_hf_endpoint, password_hasher=hasher.hash, password_verifier=hasher.verify,
            password_policy=policy.check))
        await ensure_default_policy(self.stores)
        await self._host_kinds(cfg)
        await ensure_admin_user(self.stores, cfg.state_dir)
        by_kind = {st.info.kind: st for st in self.stores.values()}
        self.login = LoginService(by_kind["User"], by_kind["LoginRecord"], hasher,
                                  TokenIssuer(await load_keyring(self.storage), ISSUER, AUDIENCE,
                                              ttl=cfg.token_ttl_seconds),
                                  max_failures=cfg.login_max_failures, lockout=cfg.login_lockout_seconds,
                                  cached_user=self.storage.cachers[resource_root(by_kind["User"].info)].get,
                                  throttle=SourceThrottle(cfg.login_source_max_failures),
                                  ledger=RemoteLedger(Path(self.worker.ledger)) if self.worker is not None else None)
        login, storage = self.login, self.storage
        # Revocations (/logout) are kept in etcd and watched into memory by every instance.
        self.revocations = login.shared = SharedRevocations(storage, login.revocations)
        self.revocations.start()
        await asyncio.wait_for(self.revocations.synced.wait(), 30)
        revocations = self.revocations
        sweep_every = max(1.0, min(30.0, cfg.login_lockout_seconds / 2))
        self.jobs += [
            Periodic("token-keys", lambda: refresh_keyring(storage, login.issuer, time.time(), 86400), 60),
            Periodic("login-lockouts", self._leading(login.sweep_expired_lockouts), sweep_every),
            Periodic("token-revocations-prune", self._leading(revocations.prune), 300),
        ]
        await self._serve(endpoints)

    async def _host_kinds(self, cfg: Config) -> None:
        """Namespaces and Events, when this server serves them: default namespaces, namespace deletion and
        event expiry (as kube-controller-manager and kube-apiserver's event TTL do in a cluster)."""
        by_kind = {st.info.kind: st for st in self.stores.values()}
        namespaces, events = by_kind.get("Namespace"), by_kind.get("Event")
        if namespaces is None or events is None:
            return
        namespaced = [st for st in self.stores.values() if st.info.namespaced]
        await ensure_default_namespaces(namespaces)
        self.jobs += [
            Periodic("namespaces", self._leading(lambda: finalize_namespaces(namespaces, namespaced)), 1.0),
            Periodic("event-ttl", self._leading(lambda: expire_events(events, cfg.event_ttl_seconds)),
                     max(1.0, min(60.0, cfg.event_ttl_seconds / 2))),
        ]

    def _leading(self, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        """`job`, run only while this process holds the leader lease."""
        async def run() -> None:
            if self.election is not None and self.election.leading:
                await job()
        return run

    async def _serve(self, endpoints: tuple[str, ...]) -> None:
        cfg = self.config
        assert self.storage is not None
        pki = serving_pki(cfg)
        assert self.login is not None
        tokens: list[Authenticator] = [TokenAuthenticator(ISSUER, self.login.verify_token)]
        if cfg.oidc is not None:
            o = cfg.oidc
            verifier = OIDCVerifier(o.issuer_url, o.client_id, o.username_claim, o.username_prefix, o.groups_claim,
                                    o.groups_prefix)
            self.jobs.append(oidc.key_refresher(verifier, o.ca_file))
            tokens.append(oidc.authenticator(verifier))
        front_proxy = None
        if cfg.authentication_kubeconfig and not cfg.requestheader_client_ca_file:
            # As kube's delegated authentication: the aggregator's CA and names from the host cluster.
            front_proxy = await asyncio.to_thread(read_front_proxy_settings, cfg.authentication_kubeconfig)
            log.info("front-proxy settings from the host cluster", found=front_proxy is not None)
        ctx, chain = tls_and_authentication(cfg, pki, tuple(tokens), front_proxy)
        self.audit = audit_log(cfg)
        compactor = getattr(self.storage.storage, "compactor", None)
        periodic = [*self.jobs, *([compactor.periodic] if compactor is not None and compactor.periodic else [])]
        assert self.revocations is not None and self.election is not None
        periodic.append(self.election.periodic)
        readiness, liveness = self._process_checks()
        self.health = Health([HealthCheck("etcd", self.storage.check_health), *readiness,
                              HealthCheck("token-revocations", self.revocations.check),
                              *(HealthCheck(job.name, job.check) for job in periodic)], liveness)
        for job in self.jobs:
            job.start()
        api = APIServerApp([Resource.of(store) for store in self.stores.values()], self.health, version_info(),
                           f"{cfg.bind_address}:{cfg.secure_port}",
                           Authentication(chain, DelegatedAuthentication(cfg.authentication_kubeconfig)
                                          if cfg.authentication_kubeconfig else None),
                           Authorization(Authorizer(CacheRuleSource(self.storage)),
                                         DelegatedAuthorization(cfg.authorization_kubeconfig)
                                         if cfg.authorization_kubeconfig else None),
                           self.audit, self.login, cfg.serving,
                           HostNamespaces(cfg.authentication_kubeconfig)
                           if cfg.authentication_kubeconfig and not cfg.serve_host_kinds else None,
                           cfg.console_dir)
        # Connections are bounded (timeouts, a cap that also fits the file-descriptor limit): protocol.py, listener.py.
        limits = dataclasses.replace(cfg.serving, max_open_connections=connection_budget(
            cfg.serving.max_open_connections))
        # handler_cancellation: a watch whose client went away is cancelled at once, releasing its etcd watch.
        self.runner = BoundedAppRunner(api.build(), limits, access_log=None, handle_signals=False,
                                       handler_cancellation=True)
        await self.runner.setup()
        inherited = [socket.socket(fileno=fd) for fd in self.worker.fds] if self.worker is not None else None
        site = LimitedSite(self.runner, cfg.bind_address, cfg.secure_port, ssl_context=ctx, backlog=1024,
                           limits=limits, sockets=inherited)
        try:
            await site.start()
        except OSError as exc:
            raise preflight.StartupError(f"--bind-address/--secure-port: cannot use {cfg.bind_address}:"
                                         f"{cfg.secure_port}: {exc.strerror or exc}") from None
        self.url = serving_url(cfg, self.runner.addresses[0][1])
        if self.siblings is not None:  # a worker: the supervisor writes the kubeconfigs once every worker listens
            self._status = asyncio.ensure_future(self._publish_status(self.siblings))
            log.info("kubellm-apiserver worker serving", worker=self.worker.index if self.worker else 0, url=self.url)
            return
        self.kubeconfig = write_access_files(cfg, pki, self.url)
        log.info("kubellm-apiserver serving", url=self.url, kubeconfig=str(self.kubeconfig), etcd=list(endpoints),
                 resources=sorted(self.stores))

    def _process_checks(self) -> tuple[list[HealthCheck], list[HealthCheck]]:
        """Readiness and liveness checks of this process's own: its embedded etcd; for a worker, the other
        workers and the supervisor's embedded etcd."""
        if self.etcd is not None:
            return [HealthCheck("embedded-etcd", self.etcd.check_running)], \
                [HealthCheck("embedded-etcd", self.etcd.check_recoverable)]
        if self.worker is None:
            return [], []
        self.siblings = siblings = Siblings(self.worker)
        readiness = [HealthCheck("workers", siblings.check)]
        if self.worker.etcd is not None:
            return [HealthCheck("embedded-etcd", siblings.check_embedded_etcd), *readiness], \
                [HealthCheck("embedded-etcd", siblings.check_embedded_etcd_recoverable)]
        return readiness, []

    async def _publish_status(self, siblings: Siblings) -> None:
        """This worker's readiness (its own checks; the other workers' are theirs) for the others, each second."""
        assert self.health is not None
        while True:
            siblings.publish(await self.health.ready(exclude=frozenset({"workers"})))
            await asyncio.sleep(1)

    async def stop(self) -> None:
        if self.health is not None:
            self.health.shutting_down = True
        if self.siblings is not None:
            self.siblings.publish(False)
        await cancel_and_wait(self._status)
        for job in self.jobs:
            await job.stop()
        if self.election is not None:
            await self.election.stop()
        if self.login is not None:
            await self.login.close()
        if self.revocations is not None:
            await self.revocations.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.audit is not None:
            self.audit.close()
        if self.storage is not None:
            await self.storage.close()
        elif self.etcd_storage is not None:
            await self.etcd_storage.close()
        if self.etcd is not None:
            await self.etcd.stop()
        log.info("kubellm-apiserver stopped")


async def run(config: Config, worker: WorkerSpec | None = None) -> None:
    server = Server(config, worker=worker)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.ensure_future(stop.wait())
    starting = asyncio.ensure_future(server.start())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            await stopping
        else:  # stopped while starting, e.g. while waiting for etcd
            await cancel_and_wait(starting)
    finally:
        stopping.cancel()
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
    config.state_dir.mkdir(parents=True, exist_ok=True)
    worker = WorkerSpec.from_environment()
    if worker is not None:
        die_with_parent(worker.parent)
        structlog.contextvars.bind_contextvars(worker=worker.index)
        config = as_worker(config, worker)
        main_task: Coroutine[Any, Any, int | None] = run(config, worker)
    elif config.workers > 1:
        from kubellm.app.supervisor import supervise

        main_task = supervise(config, sys.argv[1:] if argv is None else argv)
    else:
        main_task = run(config)
    tune_gc()
    try:
        if config.event_loop == "uvloop":
            import uvloop

            code = uvloop.run(main_task)
        else:
            code = asyncio.run(main_task)
    except preflight.StartupError as exc:
        log.error("kubellm-apiserver cannot start", error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code or 0


def as_worker(config: Config, worker: WorkerSpec) -> Config:
    """A worker's configuration: the supervisor's embedded etcd (if it runs one), and its share of the limits
    on requests and connections (each limit divided among the workers, rounded up; 0 stays no limit)."""
    def share(limit: int) -> int:
        return -(-limit // worker.count)

    s = config.serving
    serving = dataclasses.replace(
        s, max_requests_inflight=share(s.max_requests_inflight),
        max_mutating_requests_inflight=share(s.max_mutating_requests_inflight),
        max_long_running_requests=share(s.max_long_running_requests),
        max_open_connections=share(s.max_open_connections))
    config = dataclasses.replace(config, serving=serving)
    if worker.etcd is None:
        return config
    e = worker.etcd
    return dataclasses.replace(config, etcd_servers=e.endpoints, etcd_cafile=e.ca_file, etcd_certfile=e.cert_file,
                               etcd_keyfile=e.key_file)


def tune_gc() -> None:
    """Fewer cyclic collections: request handling allocates many short-lived dicts and no cycles worth
    chasing every 700 allocations (a LIST of 10,000 objects spent a third of its time in the collector)."""
    gc.set_threshold(50_000, 20, 20)
