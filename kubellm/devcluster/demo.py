"""The local demo (`hack/local-up.sh`): KubeLLM's API server with its embedded etcd, two member GPU clusters
(real control planes with simulated GPU nodes) registered as `Cluster` objects, and the controller manager
that probes them. Everything is a child process logging under `<state>/logs/`; Ctrl-C (or SIGTERM) stops
it all, in the reverse order. State is kept, so a second start is the same installation.

    python -m kubellm.devcluster demo --state-dir .state
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubellm.app.readiness import wait_until_ready
from kubellm.devcluster.binaries import ROOT, BinariesMissing
from kubellm.devcluster.member import MemberCluster, MemberOptions
from kubellm.devcluster.process import Process, StartupError, wait_until
from kubellm.nodesim.options import NodePool

DEMO_MEMBERS = (
    (MemberOptions(name="gpu-a", pools=(NodePool(count=1, gpus=4, product="NVIDIA-A100-SXM4-80GB", memory_mib=81920),)),
     "eu-west"),
    (MemberOptions(name="gpu-b", pools=(NodePool(count=2, gpus=4, product="NVIDIA-L4", memory_mib=23034),)),
     "us-east"),
)
"""4x A100-80GB on one node, 8x L4-24GB on two."""


@dataclass
class Demo:
    state: Path
    apiserver_args: list[str] = field(default_factory=list)
    members: bool = True
    probe_interval: str = "5s"
    processes: list[Process] = field(default_factory=list)
    clusters: list[MemberCluster] = field(default_factory=list)
    url: str = ""

    @property
    def kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(["kubectl", "--kubeconfig", str(self.kubeconfig), *args], input=stdin, text=True,
                              capture_output=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise StartupError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def start(self) -> None:
        logs = self.state / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        server = Process("kubellm-apiserver", [sys.executable, str(ROOT / "cmd" / "kubellm-apiserver"), "--state-dir",
                                               str(self.state), *self.apiserver_args], logs / "apiserver.log")
        (self.state / "apiserver.url").unlink(missing_ok=True)
        server.start()
        self.processes.append(server)
        assert server.popen is not None
        self.url = wait_until_ready(self.state, server.popen, server.log, timeout=90)
        say(f"KubeLLM API server ready at {self.url} (log: {server.log})")
        if self.members:
            self._start_members()
        manager = Process("kubellm-controller-manager", [
            sys.executable, str(ROOT / "cmd" / "kubellm-controller-manager"),
            "--kubeconfig", str(self.state / "controller-manager.kubeconfig"), "--log-format", "json",
            "--health-port", "0", "--metrics-port", "0", "--cluster-probe-interval", self.probe_interval],
            logs / "controller-manager.log")
        manager.start()
        self.processes.append(manager)
        say(f"controller manager started (log: {manager.log})")
        if self.clusters:
            names = [m.name for m in self.clusters]
            wait_until(lambda: self._ready(names), 60, "the member clusters Ready", processes=tuple(self.processes),
                       interval=0.5)
            print(self.kubectl("get", "clusters"), flush=True)

    def _start_members(self) -> None:
        for options, region in DEMO_MEMBERS:
            member = MemberCluster(self.state / "members" / options.name, options)
            began = time.monotonic()
            try:
                member.start()
            except BinariesMissing as exc:
                say(f"no member clusters: {exc} (hack/install-deps.sh fills .cache/kubebuilder-assets)")
                return
            self.clusters.append(member)
            manifest, _ = member.write_files(region=region)
            self.kubectl("apply", "-f", str(manifest))
            say(f"member cluster {member.name} up in {time.monotonic() - began:.0f}s at {member.url}; registered "
                f"as Cluster {member.name} (its admin kubeconfig: {member.kubeconfig})")

    def _ready(self, names: list[str]) -> bool | None:
        out = self.kubectl("get", "clusters", *names, "-o",
                           'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}')
        return out.split() == ["True"] * len(names) or None

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()
        for m in reversed(self.clusters):
            m.stop()


def say(text: str) -> None:
    print(f">> {text}", flush=True)


def run(demo: Demo) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        demo.start()
    except (StartupError, RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        demo.stop()
        return 1
    except KeyboardInterrupt:
        demo.stop()
        return 130
    say(f"ready. In another shell:\n   export KUBECONFIG={demo.kubeconfig.resolve()}\n   kubectl get clusters\n"
        "Ctrl-C stops everything.")
    while not stop.wait(1.0):
        for p in demo.processes:
            if not p.alive():
                print(f"error: {p.name} exited; end of {p.log}:\n{p.tail(2000)}", file=sys.stderr)
                demo.stop()
                return 1
    say("stopping")
    demo.stop()
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m kubellm.devcluster demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--state-dir", default=os.environ.get("KUBELLM_STATE_DIR", ".state"))
    p.add_argument("--no-members", action="store_true", help="only the API server and the controller manager")
    p.add_argument("--cluster-probe-interval", default="5s")
    a, rest = p.parse_known_args(argv)
    if rest and rest[0] == "--":
        rest = rest[1:]
    return run(Demo(Path(a.state_dir).resolve(), apiserver_args=rest, members=not a.no_members,
                    probe_interval=a.cluster_probe_interval))
