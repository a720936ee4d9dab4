"""kubellm-controller-manager as real processes against a real KubeLLM API server: exactly one of two managers
holds the Lease and acts; SIGKILL of the leader hands over after the lease duration (measured), SIGTERM
releases the Lease for an immediate takeover, a leader that sees another holder exits at once; health,
readiness and metrics answer with Kubernetes' names; errors back off, TerminalErrors become Warning Events;
the Lease can live on a separate host kube-apiserver.

The managers run the test-only `e2e-stamp` controller (`manager_plugin.py`, loaded with `--extra-controllers`),
which annotates the LLMServices it reconciles with the reconciling manager's identity.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import APIServer, eventually
from manager_plugin import LABEL, STAMP, TERMINAL
from managers import FAST_ELECTION, Manager, managers, start_manager

from kubellm.client import ClientSet, Config, NotFound

LEASE_NAMESPACE = "kube-system"


@pytest.fixture(scope="module")
def clients(apiserver: APIServer) -> Iterator[ClientSet]:
    with ClientSet(Config.from_kubeconfig(apiserver.kubeconfig)) as c:
        yield c


def holder(clients: ClientSet, lease: str) -> str:
    try:
        return clients.coordination_v1.leases(LEASE_NAMESPACE).get(lease).spec.holder_identity or ""
    except NotFound:
        return ""


def wait_for(read: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 30, every: float = 0.02) -> float:
    """Poll until `ok(read())`; the seconds it took."""
    began = time.monotonic()
    while not ok(value := read()):
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not within {timeout}s: {value!r}")
        time.sleep(every)
    return time.monotonic() - began


def llm(name: str, ns: str, mode: str) -> str:
    return json.dumps({"apiVersion": "model.kubellm.io/v1alpha1", "kind": "LLMService",
                       "metadata": {"name": name, "namespace": ns, "labels": {LABEL: mode}},
                       "spec": {"model": "Qwen/Qwen2.5-3B-Instruct"}})


def annotation(api: APIServer, ns: str, name: str, key: str) -> str:
    escaped = key.replace(".", "\\.").replace("/", "\\/")
    return api.kubectl("get", "llms", name, "-n", ns, "-o", f"jsonpath={{.metadata.annotations.{escaped}}}").stdout


def pair(api: APIServer, tmp: Path, lease: str, *extra: str) -> tuple[Manager, Manager]:
    a = start_manager(api.kubeconfig, tmp, "a", "--leader-election-id", lease, *FAST_ELECTION, *extra)
    b = start_manager(api.kubeconfig, tmp, "b", "--leader-election-id", lease, *FAST_ELECTION, *extra)
    return a, b


def test_one_leader_acts_and_a_standby_takes_over_a_killed_leader(apiserver: APIServer, clients: ClientSet,
                                                                  tmp_path: Path) -> None:
    lease, ns = f"cm-{uuid.uuid4().hex[:8]}", f"cm-{uuid.uuid4().hex[:8]}"
    with managers() as started:
        started.extend(pair(apiserver, tmp_path, lease))
        a, b = started
        wait_for(lambda: holder(clients, lease), lambda h: h in (a.identity, b.identity))
        leader, standby = (a, b) if holder(clients, lease) == a.identity else (b, a)
        table = apiserver.kubectl("get", "lease", "-n", LEASE_NAMESPACE, lease).stdout.split()
        assert table[:3] == ["NAME", "HOLDER", "AGE"] and table[3:5] == [lease, leader.identity]

        # both healthy and ready; only one leads
        for m in (leader, standby):
            wait_for(lambda m=m: m.healthz("/readyz")[0], lambda code: code == 200)
            assert m.healthz() == (200, "ok")
        assert "[+]leader-election ok: leading" in leader.healthz("/readyz?verbose")[1]
        assert "[+]leader-election ok: standby" in standby.healthz("/readyz?verbose")[1]
        assert "[+]informer-sync ok" in standby.healthz("/readyz?verbose")[1]
        assert leader.metric("leader_election_master_status", name=lease) == 1
        assert standby.metric("leader_election_master_status", name=lease) == 0

        # the leader reconciles, the standby never does
        apiserver.kubectl("create", "ns", ns)
        apiserver.kubectl("apply", "-f", "-", input=llm("one", ns, "ok"))
        wait_for(lambda: annotation(apiserver, ns, "one", STAMP), lambda v: v == leader.identity)
        assert leader.metric("controller_runtime_reconcile_total", controller="e2e-stamp", result="success") == 1
        text = leader.metrics_text()
        for family in ("workqueue_depth", "workqueue_adds_total", "workqueue_queue_duration_seconds_bucket",
                       "workqueue_work_duration_seconds_bucket", "workqueue_retries_total",
                       "workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds",
                       "controller_runtime_reconcile_errors_total"):
            assert f'{family}{{' in text and 'e2e-stamp"' in text, family
        assert 'workqueue_adds_total{name="e2e-stamp"}' in text

        # an ordinary error backs off and is retried; a terminal one is recorded and left alone
        apiserver.kubectl("apply", "-f", "-", input=llm("flaky", ns, "flaky"))
        wait_for(lambda: annotation(apiserver, ns, "flaky", STAMP), lambda v: v == leader.identity)
        assert leader.metric("workqueue_retries_total", name="e2e-stamp") == 2
        assert leader.metric("controller_runtime_reconcile_errors_total", controller="e2e-stamp") == 2
        apiserver.kubectl("apply", "-f", "-", input=llm("bad", ns, "terminal"))
        wait_for(lambda: annotation(apiserver, ns, "bad", TERMINAL), lambda v: v == "ModelNotServed")
        described = eventually(lambda: apiserver.kubectl("describe", "llms", "bad", "-n", ns).stdout,
                               lambda out: "ModelNotServed" in out)
        assert "Warning" in described and "is not served here" in described and "e2e-stamp-controller" in described
        assert leader.metric("controller_runtime_terminal_reconcile_errors_total", controller="e2e-stamp") == 1
        apiserver.kubectl("apply", "-f", "-", input=llm("two", ns, "ok"))
        wait_for(lambda: annotation(apiserver, ns, "two", STAMP), lambda v: v == leader.identity)
        assert leader.metric("controller_runtime_terminal_reconcile_errors_total", controller="e2e-stamp") == 1, \
            "a terminal error is not retried"
        apiserver.kubectl("patch", "llms", "bad", "-n", ns, "--type=merge", "-p", '{"spec":{"replicas":2}}')
        wait_for(lambda: leader.metric("controller_runtime_terminal_reconcile_errors_total", controller="e2e-stamp"),
                 lambda v: v == 2)
        assert standby.metric("controller_runtime_reconcile_total", controller="e2e-stamp", result="success") == 0
        assert standby.metric("controller_runtime_reconcile_total", controller="e2e-stamp", result="error") == 0

        # SIGKILL: the standby takes over once the lease has expired, well within 15 s
        leader.signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: holder(clients, lease), lambda h: h == standby.identity, timeout=30)
        takeover = time.monotonic() - killed
        print(f"\ntakeover after SIGKILL: {takeover:.2f}s (lease duration 10s, retry period 1s)")
        assert 10.0 - 1.0 - 0.5 <= takeover < 15.0
        wait_for(lambda: annotation(apiserver, ns, "one", STAMP), lambda v: v == standby.identity)
        apiserver.kubectl("apply", "-f", "-", input=llm("three", ns, "ok"))
        wait_for(lambda: annotation(apiserver, ns, "three", STAMP), lambda v: v == standby.identity)
        assert standby.metric("leader_election_master_status", name=lease) == 1
        assert "[+]leader-election ok: leading" in standby.healthz("/readyz?verbose")[1]
        assert clients.coordination_v1.leases(LEASE_NAMESPACE).get(lease).spec.lease_transitions == 1


def test_sigterm_releases_the_lease_for_an_immediate_takeover(apiserver: APIServer, clients: ClientSet,
                                                              tmp_path: Path) -> None:
    lease = f"cm-{uuid.uuid4().hex[:8]}"
    with managers() as started:
        a = start_manager(apiserver.kubeconfig, tmp_path, "a", "--leader-election-id", lease, *FAST_ELECTION)
        started.append(a)
        wait_for(lambda: holder(clients, lease), lambda h: h == a.identity)
        b = start_manager(apiserver.kubeconfig, tmp_path, "b", "--leader-election-id", lease, *FAST_ELECTION)
        started.append(b)
        wait_for(lambda: b.healthz("/readyz?verbose")[1], lambda text: "standby" in text)
        a.signal(signal.SIGTERM)
        began = time.monotonic()
        wait_for(lambda: holder(clients, lease), lambda h: h == b.identity, timeout=15)
        takeover = time.monotonic() - began
        print(f"\ntakeover after SIGTERM: {takeover:.2f}s (retry period 1s)")
        assert takeover < 1.0 * 2.2 + 1.5, "at the standby's next try, not after the lease duration"
        assert a.wait(timeout=30) == 0
        assert "lease released" in a.events()


def test_a_leader_that_loses_its_lease_exits_at_once(apiserver: APIServer, clients: ClientSet,
                                                      tmp_path: Path) -> None:
    lease = f"cm-{uuid.uuid4().hex[:8]}"
    with managers() as started:
        a = start_manager(apiserver.kubeconfig, tmp_path, "a", "--leader-election-id", lease, *FAST_ELECTION)
        started.append(a)
        wait_for(lambda: holder(clients, lease), lambda h: h == a.identity)
        stolen = clients.coordination_v1.leases(LEASE_NAMESPACE).get(lease)
        stolen.spec.holder_identity = "someone-else"
        stolen.spec.lease_duration_seconds = 3600
        clients.coordination_v1.leases(LEASE_NAMESPACE).update(stolen)
        began = time.monotonic()
        assert a.wait(timeout=15) == 1
        assert time.monotonic() - began < 1.0 + 1.5, "at its next renewal"
        assert "leader election lost" in a.events()
        assert holder(clients, lease) == "someone-else"


def test_flags_are_validated(apiserver: APIServer, tmp_path: Path) -> None:
    for args, message in ((("--controllers", "nope"), "unknown controllers ['nope']"),
                          (("--lease-duration", "5s", "--renew-deadline", "6s"), "greater than the renew deadline"),
                          (("--concurrent-syncs", "e2e-stamp=x"), "is not name=count")):
        with pytest.raises(RuntimeError, match="exited with 2") as failed:
            start_manager(apiserver.kubeconfig, tmp_path, "bad", *args)
        assert message in str(failed.value)


def test_the_lease_can_live_on_a_host_kube_apiserver(apiserver: APIServer, tmp_path: Path) -> None:
    from hostcluster import ControlPlane  # skips when the Kubernetes binaries are missing

    with ControlPlane(tmp_path / "host", "host") as host, managers() as started:
        lease = "kubellm-controller-manager"
        a = start_manager(apiserver.kubeconfig, tmp_path, "a", "--leader-election-kubeconfig", str(host.kubeconfig),
                          *FAST_ELECTION)
        started.append(a)

        def host_holder() -> str:
            got = host.kubectl("get", "lease", "-n", LEASE_NAMESPACE, lease, "-o", "json", check=False)
            return json.loads(got.stdout)["spec"].get("holderIdentity", "") if got.returncode == 0 else ""

        wait_for(host_holder, lambda h: h == a.identity, every=0.2)
        assert a.metric("leader_election_master_status", name=lease) == 1
        a.signal(signal.SIGTERM)
        assert a.wait(timeout=30) == 0
        released = json.loads(host.kubectl("get", "lease", "-n", LEASE_NAMESPACE, lease, "-o", "json").stdout)["spec"]
        assert released.get("holderIdentity", "") == "" and released["leaseDurationSeconds"] == 1
