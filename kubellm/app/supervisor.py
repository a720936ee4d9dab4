"""`--workers N` with N > 1: a supervisor process and N worker processes serving one port.

The supervisor does what must happen once per server before any worker starts: the start-up checks of
the key and certificate files, the generated encryption configuration and certificates, and the embedded
etcd (which it runs and restarts, as a single-process server does). It binds the sockets: N sets on the same
port with SO_REUSEPORT, one per worker, which the worker starts listening on once it is ready to serve (until
then they refuse connections); the kernel spreads new connections over the listening ones. Then it starts the
workers (`kubellm-apiserver` with the same flags, see
kubellm/app/workers.py), each with its own watch cache, and once every worker listens it writes the
kubeconfigs and `<state>/apiserver.url`.

A worker that exits is started again (backoff 1 s, doubling to 30 s while it keeps failing). Its sockets are
closed at once, so the connections queued on them are refused (clients retry and reach the other workers)
rather than left waiting, and the new worker gets fresh ones. A worker that exits
before it ever served ends the whole server with its exit code (a start-up error, said once by the worker).
SIGTERM or SIGINT stop the workers (SIGTERM, then SIGKILL after `STOP_TIMEOUT`), then the embedded etcd.
Work that must run once among all processes is coordinated through etcd, not here: compaction and key
rotation by compare-and-swap transactions, bootstrap by create-if-absent, the periodic sweeps by a leader
lease (kubellm/registry/storage/etcd/election.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import multiprocess

import kubellm
from kubellm.app import ledger, preflight
from kubellm.app.etcd_pki import ensure_etcd_pki
from kubellm.app.kubeconfig import serving_pki, serving_url, write_access_files
from kubellm.app.lockout import FailureTracker, LocalLedger, SourceThrottle
from kubellm.app.options import Config
from kubellm.app.workers import ENV, EtcdClient, WorkerSpec, supervisor_file, worker_file, write_json
from kubellm.registry.storage.etcd.embedded import EmbeddedEtcd
from kubellm.registry.storage.tasks import cancel_and_wait
from kubellm.registry.storage.value import PrefixTransformers
from kubellm.server.listener import bind_group, rebind

log = structlog.get_logger("kubellm.supervisor")

STOP_TIMEOUT = 75.0
"""Seconds a worker has to finish its requests after SIGTERM (the default request timeout is 60 s)."""
BACKOFF = (1.0, 30.0)
SOURCE = str(Path(kubellm.__file__).resolve().parents[1])
"""Where this process imports kubellm from: the workers import it from the same place."""
HEALTHY_RUN = 60.0
"""A worker that ran this long before exiting is restarted after the shortest backoff again."""


class StartupFailed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"a worker exited with {code} while starting")
        self.code = code


class Worker:
    def __init__(self, index: int, sockets: list[socket.socket]) -> None:
        self.index = index
        self.sockets = sockets
        self.proc: asyncio.subprocess.Process | None = None
        self.started = 0.0
        self.failures = 0


class Supervisor:
    def __init__(self, config: Config, argv: list[str]) -> None:
        self.config = config
        self.argv = argv
        self.count = config.workers
        self.directory = config.state_dir / "workers"
        self.etcd: EmbeddedEtcd | None = None
        self.etcd_client: EtcdClient | None = None
        self.workers: list[Worker] = []
        self.ledger_path = self.directory / "login.sock"

    async def run(self, stop: asyncio.Event) -> int:
        cfg = self.config
        preflight.check_files(cfg)
        values = preflight.load_encryption(cfg)  # generated on first start: before any worker reads it
        pki = serving_pki(cfg)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(mode=0o700)
        (self.directory / "metrics").mkdir()
        self.ledger_path = self.directory / "login.sock"
        if len(str(self.ledger_path)) > 100:  # longer than a Unix socket's path may be
            self.ledger_path = Path(tempfile.mkdtemp(prefix="kubellm-")) / "login.sock"
        try:
            groups = bind_group(cfg.bind_address, cfg.secure_port, self.count)
        except OSError as exc:
            raise preflight.StartupError(f"--bind-address/--secure-port: cannot use {cfg.bind_address}:"
                                         f"{cfg.secure_port}: {exc.strerror or exc}") from None
        self.workers = [Worker(i, group) for i, group in enumerate(groups)]
        ledger_server = await ledger.serve(LocalLedger(
            FailureTracker(cfg.login_max_failures, cfg.login_lockout_seconds),
            SourceThrottle(cfg.login_source_max_failures)), self.ledger_path)
        status: asyncio.Future[None] | None = None
        try:
            if not cfg.etcd_servers:
                tls = ensure_etcd_pki(cfg.state_dir / "etcd-pki")
                self.etcd = EmbeddedEtcd(cfg.state_dir / "etcd", tls=tls)
                endpoint = await self.etcd.start()
                self.etcd.supervise(max_failed_restarts=cfg.embedded_etcd_max_failed_restarts)
                self.etcd_client = EtcdClient((endpoint,), str(tls.ca_file), str(tls.client_cert),
                                              str(tls.client_key))
            status = asyncio.ensure_future(self._publish_status())
            if not await self._check_stored(values, stop):
                return 0
            for worker in self.workers:
                await self._spawn(worker)
            if not await self._wait_listening(stop):
                return 0
            url = serving_url(cfg, groups[0][0].getsockname()[1])
            kubeconfig = write_access_files(cfg, pki, url)
            log.info("kubellm-apiserver serving", url=url, kubeconfig=str(kubeconfig), workers=self.count,
                     pids=[w.proc.pid for w in self.workers if w.proc is not None])
            await self._watch(stop)
            return 0
        except StartupFailed as exc:
            return exc.code
        finally:
            if status is not None:
                status.cancel()
            await self._stop_workers()
            ledger_server.close()
            if self.ledger_path.parent != self.directory:
                shutil.rmtree(self.ledger_path.parent, ignore_errors=True)
            for sock in (s for w in self.workers for s in w.sockets):
                sock.close()
            if self.etcd is not None:
                await self.etcd.stop()
            log.info("kubellm-apiserver stopped")

    async def _check_stored(self, values: PrefixTransformers, stop: asyncio.Event) -> bool:
        """The stored values against the keys, once for all workers (a StartupError when they do not match);
        False if stopped while waiting for etcd."""
        cfg, e = self.config, self.etcd_client
        config = preflight.etcd_config(cfg, e.endpoints, e.ca_file, e.cert_file, e.key_file) if e is not None \
            else preflight.etcd_config(cfg, cfg.etcd_servers, cfg.etcd_cafile, cfg.etcd_certfile, cfg.etcd_keyfile)
        checking = asyncio.ensure_future(preflight.check_stored(cfg, config, values))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({checking, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not checking.done():
            await cancel_and_wait(checking)
            return False
        checking.result()
        return True

    def _spec(self, worker: Worker) -> WorkerSpec:
        return WorkerSpec(worker.index, self.count, tuple(s.fileno() for s in worker.sockets), self.directory,
                          os.getpid(), str(self.ledger_path), self.etcd_client)

    async def _spawn(self, worker: Worker) -> None:
        source = SOURCE
        env = {**os.environ, ENV: self._spec(worker).encode(),
               "PROMETHEUS_MULTIPROC_DIR": str(self.directory / "metrics"),
               "PYTHONPATH": os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)}
        worker.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; from kubellm.app.apiserver import main; sys.exit(main())",
            *self.argv, env=env, pass_fds=[s.fileno() for s in worker.sockets])
        worker.started = time.monotonic()

    async def _wait_listening(self, stop: asyncio.Event) -> bool:
        """Until every worker has written its status file (it writes it once it listens); False if stopped
        first. A worker that exits before it listens is a start-up failure of the whole server."""
        while not all(worker_file(self.directory, w.index).exists() for w in self.workers):
            for w in self.workers:
                assert w.proc is not None
                if w.proc.returncode is not None:
                    raise StartupFailed(w.proc.returncode or 1)
            if stop.is_set():
                return False
            await asyncio.sleep(0.05)
        return True

    async def _watch(self, stop: asyncio.Event) -> None:
        """Restart workers that exit, until `stop` is set."""
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                waits = {asyncio.ensure_future(w.proc.wait()): w for w in self.workers if w.proc is not None}
                done, _ = await asyncio.wait({*waits, stopped}, return_when=asyncio.FIRST_COMPLETED)
                for task in waits:
                    task.cancel()
                for task in done:
                    if task in waits and not stop.is_set():
                        await self._restart(waits[task], stop)
        finally:
            stopped.cancel()

    async def _restart(self, worker: Worker, stop: asyncio.Event) -> None:
        assert worker.proc is not None
        code, pid = worker.proc.returncode, worker.proc.pid
        multiprocess.mark_process_dead(pid, str(self.directory / "metrics"))  # type: ignore[no-untyped-call]
        with contextlib.suppress(FileNotFoundError):
            worker_file(self.directory, worker.index).unlink()
        # Its sockets go now: connections queued on them are refused (their clients retry, and reach the workers
        # that serve) rather than wait for the new worker; it gets fresh ones, listening once it serves.
        addresses: list[tuple[int, tuple[Any, ...]]] = [(sock.family, sock.getsockname()) for sock in worker.sockets]
        for sock in worker.sockets:
            sock.close()
        worker.sockets = []
        worker.failures = 0 if time.monotonic() - worker.started >= HEALTHY_RUN else worker.failures + 1
        delay = min(BACKOFF[0] * 2 ** max(worker.failures - 1, 0), BACKOFF[1])
        log.error("worker exited; starting it again", worker=worker.index, pid=pid, code=code, delay=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        while not stop.is_set():
            try:
                worker.sockets = rebind(addresses)
                break
            except OSError as exc:
                log.error("cannot bind the port again for a worker; retrying", worker=worker.index, error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), BACKOFF[1])
        if not stop.is_set():
            await self._spawn(worker)

    async def _stop_workers(self) -> None:
        procs = [w.proc for w in self.workers if w.proc is not None and w.proc.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def _publish_status(self) -> None:
        """`supervisor.json` every second: whether the embedded etcd runs and can still be restarted."""
        while True:
            running = recoverable = True
            if self.etcd is not None:
                try:
                    await self.etcd.check_running()
                except Exception:
                    running = False
                try:
                    await self.etcd.check_recoverable()
                except Exception:
                    recoverable = False
            write_json(supervisor_file(self.directory),
                       {"etcd_running": running, "etcd_recoverable": recoverable, "at": time.time()})
            await asyncio.sleep(1)


async def supervise(config: Config, argv: list[str]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await Supervisor(config, argv).run(stop)
