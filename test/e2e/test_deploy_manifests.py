"""deploy/ against a real kube-apiserver: every rendered object of `deploy/base`, both overlays, an install overlay
made by hack/gen-install.py and `deploy/member` is accepted by `kubectl apply --dry-run=server --validate=strict`
(the server's schema, with unknown fields refused, and its admission: the kubellm-system namespace warns about pod
templates that would not meet the `restricted` Pod Security Standard); the ServiceMonitors and the PrometheusRule
are validated by the Prometheus operator's CRDs (deploy/third_party, installed here); a Pod of every workload is
admitted by a namespace that enforces `restricted`. The controller manager's host RBAC works for real: a
kubellm-controller-manager process under its ServiceAccount's token, with the Deployment's flags, leads on its
Lease in kubellm-system and keeps a Cluster's status through an aggregated, delegating KubeLLM (the host's RBAC
decides), the host itself being the member cluster registered with deploy/member's ServiceAccount. And the API
server as deployed works: two kubellm-apiserver processes with the Deployment's arguments and the files of the
install's Secrets and ConfigMap (what kubelet would mount), an etcd with the StatefulSet's flags and the install's
certificates, registered by the install's APIServices (their caBundle) and Available; the host's users reach
KubeLLM through the aggregator, KubeLLM trusts the identity the aggregator forwards and asks the host's RBAC
(delegation through the in-cluster kubeconfig, under the kubellm-apiserver ServiceAccount's token); both replicas
share the client CA and the encryption key; Prometheus's token reads /metrics.

There is no kubelet here: Deployments and StatefulSets are accepted, their pods never run. The processes run on
this machine with what their pods would hold; addresses are rewritten to loopback.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from conftest import APIServer, _die_with_parent, check_no_secrets, eventually, secret
from hostcluster import (
    ControlPlane,
    Process,
    Registration,
    aggregated_kubellm,
    control_plane,
    unregister,
    wait_available,
)
from managers import FAST_ELECTION, managers, start_manager

from kubellm.app.readiness import wait_until_ready
from kubellm.registry.storage.etcd.embedded import free_port
from kubellm.service.rbac.defaults import CONTROLLER_MANAGER, default_cluster_roles

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "kubellm-system"
MANAGER = "kubellm-controller-manager"
MANAGER_USER = f"system:serviceaccount:{NAMESPACE}:{MANAGER}"
MEMBER_USER = f"system:serviceaccount:{NAMESPACE}:kubellm"
CRDS = ROOT / "deploy" / "third_party" / "prometheus-operator"
INSTALL = "install"
"""The install overlay hack/gen-install.py writes on top of deploy/overlays/prod (in a temporary directory)."""
SOURCES = ["deploy/base", "deploy/overlays/dev", "deploy/overlays/prod", INSTALL, "deploy/member",
           "deploy/member/runtimeclass-nvidia.yaml", "deploy/tools/etcd-data-pod.yaml"]
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def group_of(obj: dict[str, Any]) -> str:
    group, _, _ = str(obj["apiVersion"]).rpartition("/")
    return group


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("install") / "kubellm-install"
    subprocess.run([sys.executable, str(ROOT / "hack" / "gen-install.py"), "--out", str(out),
                    "--apiserver-cidr", "127.0.0.0/8"], check=True, capture_output=True, timeout=60)
    return out


def render(host: ControlPlane, source: str, install: Path) -> list[dict[str, Any]]:
    """A kustomization rendered by kubectl, or a plain manifest file."""
    path = install if source == INSTALL else ROOT / source
    text = path.read_text() if path.is_file() else host.kubectl("kustomize", str(path)).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def as_list(objects: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})


def apply(host: ControlPlane, objects: list[dict[str, Any]]) -> None:
    """For real."""
    if objects:
        host.kubectl("apply", "-f", "-", input=as_list(objects))


def dry_run(host: ControlPlane, objects: list[dict[str, Any]]) -> Any:
    """`kubectl apply --dry-run=server --validate=strict` of a YAML stream (as `kubectl apply -k` sends them: a
    `v1 List` would make kubectl validate on the client instead), logging its requests (-v=6)."""
    return host.kubectl("apply", "--dry-run=server", "--validate=strict", "-v=6", "-f", "-",
                        input=yaml.safe_dump_all(objects, sort_keys=False), check=False)


def writes(stderr: str) -> list[str]:
    """The create and patch requests kubectl's -v=6 log shows."""
    return [line for line in stderr.splitlines()
            if "round_trippers" in line and (" POST " in line or " PATCH " in line)]


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Warning:") or "would violate" in line]


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """The host, with the Prometheus operator's CRDs (vendored) so that their kinds are validated too."""
    with control_plane(tmp_path_factory.mktemp("deploy-host"), "deploy-host") as cp:
        crds = sorted(CRDS.glob("*.yaml"))
        cp.kubectl("apply", "--server-side", *(a for crd in crds for a in ("-f", str(crd))))
        cp.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                   *(f"crd/{yaml.safe_load(crd.read_text())['metadata']['name']}" for crd in crds))
        yield cp


@pytest.mark.parametrize("source", SOURCES)
def test_every_rendered_object_is_accepted_by_a_real_apiserver(host: ControlPlane, install: Path, source: str) -> None:
    docs = render(host, source, install)
    # the namespace must exist for a dry run of what goes in it (`kubectl apply -k` creates it first too); its
    # Pod Security labels make the server warn about any pod template that would not meet `restricted`
    apply(host, [d for d in docs if d["kind"] == "Namespace"])
    # a Pod is admitted only under a ServiceAccount that exists (no token controller runs here to make `default`)
    host.kubectl("create", "namespace", NAMESPACE, check=False)
    host.kubectl("create", "serviceaccount", "default", "-n", NAMESPACE, check=False)
    out = dry_run(host, docs)
    assert out.returncode == 0, f"{source} rejected:\n{out.stdout}\n{out.stderr}"
    assert warnings(out.stderr) == [], f"{source}: warnings from the server"
    accepted = out.stdout.splitlines()
    assert len(accepted) == len(docs) and all(line.endswith("(server dry run)") for line in accepted), out.stdout
    # every object went to the server, dry-run and strict (the namespace, already there, may need no write)
    sent = writes(out.stderr)
    assert len(sent) >= len([d for d in docs if d["kind"] != "Namespace"]), out.stderr
    assert all("dryRun=All" in line and "fieldValidation=Strict" in line for line in sent), sent
    if source.endswith("prod") or source == INSTALL:  # the monitoring kinds went through their CRDs' validation
        assert {(group_of(d), d["kind"]) for d in docs if group_of(d) == "monitoring.coreos.com"} == {
            ("monitoring.coreos.com", "ServiceMonitor"), ("monitoring.coreos.com", "PrometheusRule")}


def _object(host: ControlPlane, install: Path, source: str, kind: str, name: str) -> dict[str, Any]:
    (obj,) = [d for d in render(host, source, install) if d["kind"] == kind and d["metadata"]["name"] == name]
    return obj


def test_strict_validation_has_teeth(host: ControlPlane, install: Path) -> None:
    """The same dry run refuses a misspelt field, of a Kubernetes kind and of a CRD's kind, so the test above
    would see one."""
    apply(host, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
    broken = _object(host, install, "deploy/overlays/prod", "Deployment", "kubellm-apiserver")
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/livez"
    out = dry_run(host, [broken])
    assert out.returncode != 0, out.stdout
    assert ('strict decoding error: unknown field "spec.template.spec.containers[0].livenessProbe.httpGet.paht"'
            in out.stderr), out.stderr  # the server's answer, not kubectl's client-side check
    monitor = _object(host, install, "deploy/overlays/prod", "ServiceMonitor", "kubellm-apiserver")
    monitor["spec"]["endpoints"][0]["tlsConfig"]["servername"] = "x"
    out = dry_run(host, [monitor])
    assert out.returncode != 0 and 'unknown field "spec.endpoints[0].tlsConfig.servername"' in out.stderr, out.stderr
    rule = _object(host, install, "deploy/overlays/prod", "PrometheusRule", "kubellm")
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    out = dry_run(host, [rule])
    assert out.returncode != 0 and "spec.groups[0].rules[0].for" in out.stderr, out.stderr


PSS_NAMESPACE = "pss-restricted"


@pytest.mark.parametrize("source", ["deploy/overlays/dev", "deploy/overlays/prod"])
def test_every_pod_meets_the_restricted_pod_security_standard(host: ControlPlane, install: Path, source: str) -> None:
    """A Pod of each workload's template is admitted by a namespace that enforces `restricted`."""
    apply(host, [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PSS_NAMESPACE, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted"}}},
        # Pods are admitted only under ServiceAccounts that exist (no token controller here makes `default`)
        *({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": PSS_NAMESPACE}}
          for name in ("default", "kubellm-apiserver", MANAGER))])
    workloads = [d for d in render(host, source, install) if d["kind"] in ("Deployment", "StatefulSet")]
    assert {w["metadata"]["name"] for w in workloads} == {"kubellm-apiserver", MANAGER, "etcd"}
    pods = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": w["metadata"]["name"], "namespace": PSS_NAMESPACE,
                          "labels": w["spec"]["template"]["metadata"]["labels"]},
             "spec": w["spec"]["template"]["spec"]} for w in workloads]
    for pod in pods:  # a StatefulSet's claim would be there; a Pod needs a volume for it
        if pod["metadata"]["name"] == "etcd":
            pod["spec"] = {**pod["spec"], "volumes": [*pod["spec"]["volumes"], {"name": "data", "emptyDir": {}}]}
    out = dry_run(host, pods)
    assert out.returncode == 0 and warnings(out.stderr) == [], out.stdout + out.stderr
    # and the check has teeth: without the container's securityContext the pod is refused
    loose = copy.deepcopy(pods[0])
    del loose["spec"]["containers"][0]["securityContext"]
    out = dry_run(host, [loose])
    assert out.returncode != 0 and 'violates PodSecurity "restricted' in out.stderr, out.stderr


# --- the controller manager's RBAC, for real ------------------------------------------------------------------


def _review(host: ControlPlane, user: str, verb: str, group: str, resource: str, namespace: str = "") -> bool:
    resource, _, subresource = resource.partition("/")
    r = host.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}",
                                          "system:authenticated"],
                 "resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                        "subresource": subresource, "namespace": namespace}}})
    assert r.status == 201, r.body
    return bool(r.body["status"].get("allowed"))


@pytest.fixture(scope="module")
def deployed(host: ControlPlane, install: Path) -> ControlPlane:
    """The host with what `kubectl apply -k deploy/overlays/dev` creates of the controller manager (its pods
    aside), and deploy/member with the RuntimeClass: the host doubles as a member cluster."""
    docs = render(host, "deploy/overlays/dev", install)
    apply(host, [d for d in docs if d["kind"] == "Namespace"])
    apply(host, [d for d in docs if d["metadata"]["name"].startswith(MANAGER) and d["kind"] in (
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")])
    apply(host, render(host, "deploy/member", install) + render(host, "deploy/member/runtimeclass-nvidia.yaml",
                                                               install))
    return host


def test_the_host_grants_the_service_account_what_kubellms_default_role_grants(deployed: ControlPlane) -> None:
    (role,) = [r for r in default_cluster_roles() if r["metadata"]["name"] == CONTROLLER_MANAGER]
    denied = []
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    if resource == "leases":  # on the host: the Lease's namespace only, and only what is used
                        if verb in ("get", "create", "update", "patch") and not _review(
                                deployed, MANAGER_USER, verb, group, resource, NAMESPACE):
                            denied.append((verb, group, resource, NAMESPACE))
                    elif not _review(deployed, MANAGER_USER, verb, group, resource):
                        denied.append((verb, group, resource, ""))
    assert denied == []
    for verb, group, resource, ns in [("update", "coordination.k8s.io", "leases", "kube-system"),
                                      ("delete", "cluster.kubellm.io", "clusters", ""),
                                      ("create", "model.kubellm.io", "llmservices", "default"),
                                      ("get", "", "secrets", NAMESPACE)]:
        assert not _review(deployed, MANAGER_USER, verb, group, resource, ns), (verb, group, resource, ns)


def _token(host: ControlPlane, service_account: str, duration: str) -> str:
    """A bound token of the ServiceAccount (TokenRequest; what kubelet projects into a pod)."""
    return secret(host.kubectl("create", "token", service_account, "-n", NAMESPACE, "--duration", duration)
                  .stdout.strip())


def _write_kubeconfig(path: Path, host: ControlPlane, token: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "in-cluster",
        "clusters": [{"name": "host", "cluster": {"server": host.url, "certificate-authority": str(host.ca.cert)}}],
        "users": [{"name": MANAGER, "user": {"token": token}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "host", "user": MANAGER}}]}))
    path.chmod(0o600)
    return path


def _cluster_status(host: ControlPlane, name: str) -> dict[str, Any]:
    r = host.request("GET", f"/apis/cluster.kubellm.io/v1alpha1/clusters/{name}", timeout=5)
    assert r.status == 200, r.body
    return dict((r.body or {}).get("status") or {})


def test_the_controller_manager_works_in_the_host_under_its_service_account(
        deployed: ControlPlane, install: Path, tmp_path: Path) -> None:
    host = deployed
    (deployment,) = [d for d in render(host, "deploy/overlays/dev", install) if d["kind"] == "Deployment"
                     and d["metadata"]["name"] == MANAGER]
    args = [a for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            if not a.startswith(("--bind-address", "--health-port", "--metrics-port"))]  # loopback, free ports here
    with aggregated_kubellm(host, tmp_path / "kubellm", delegated=True), managers() as started:
        kubeconfig = _write_kubeconfig(tmp_path / "in-cluster.kubeconfig", host, _token(host, MANAGER, "1h"))
        # the member: this same cluster, reached with deploy/member's ServiceAccount (a 2h token: it expires)
        member_token = _token(host, "kubellm", "2h")
        host.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "cluster.kubellm.io/v1alpha1", "kind": "Cluster", "metadata": {"name": "host-as-member"},
            "spec": {"apiEndpoint": host.url, "caBundle": base64.b64encode(host.ca.cert.read_bytes()).decode(),
                     "credentials": {"token": member_token}, "region": "local"}}))
        manager = start_manager(kubeconfig, tmp_path / "manager", "in-cluster", *args, *FAST_ELECTION,
                                "--controllers", "cluster", "--cluster-probe-interval", "1s", plugin=False)
        started.append(manager)

        deadline = time.monotonic() + 60
        conditions: dict[str, tuple[str, str]] = {}
        while time.monotonic() < deadline:
            status = _cluster_status(host, "host-as-member")
            conditions = {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions", [])}
            if conditions.get("Ready", ("", ""))[0] == "True":
                break
            assert manager.process.poll() is None, manager.tail()
            time.sleep(0.2)
        assert conditions == {"Ready": ("True", "ClusterReady"), "Reachable": ("True", "ProbeSucceeded"),
                              "GPURuntimeReady": ("True", "RuntimeClassFound"),
                              "CredentialsExpiringSoon": ("True", "CredentialsExpireSoon")}, manager.tail()
        assert status["kubernetesVersion"].startswith("v1.")

        # the Lease on the host, in kubellm-system, held by this manager; ready (caches synced) and leading
        lease = host.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{MANAGER}").body
        assert lease["spec"]["holderIdentity"] == manager.identity
        code, text = manager.healthz("/readyz?verbose")
        assert code == 200 and "[+]leader-election ok: leading" in text, text
        # Events to the host: about the cluster-scoped Cluster, in `default`
        def events() -> list[tuple[str, str]]:
            items = host.request("GET", "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3D"
                                        "host-as-member").body["items"]
            return [(e["reason"], e["source"]["component"]) for e in items]

        assert eventually(events, lambda found: bool(found)) == [("ClusterReady", "cluster-controller")]
        # nothing was refused on the way
        assert "forbidden" not in manager.log.read_text().lower(), manager.tail()
        host.kubectl("delete", "cluster", "host-as-member")


# --- the API server as deployed ---------------------------------------------------------------------------------


class Pod:
    """What kubelet would give a container of a rendered pod template: each volume's files (Secrets and
    ConfigMaps of the install, emptyDirs) under `root`, and its arguments with paths moved there."""

    def __init__(self, root: Path, template: dict[str, Any], objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.root = root
        self.spec = template["spec"]
        (self.container,) = self.spec["containers"]
        self.mounts: dict[str, Path] = {}
        for mount in self.container["volumeMounts"]:
            (volume,) = [v for v in self.spec.get("volumes", []) if v["name"] == mount["name"]] or [{"emptyDir": {}}]
            directory = root / mount["mountPath"].lstrip("/")
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.mounts[mount["mountPath"]] = directory
            if "secret" in volume:
                data = {k: base64.b64decode(v) for k, v in
                        objects[("Secret", volume["secret"]["secretName"])]["data"].items()}
            elif "configMap" in volume:
                data = {k: v.encode() for k, v in objects[("ConfigMap", volume["configMap"]["name"])]["data"].items()}
            else:
                data = {}
            for key, value in data.items():
                (directory / key).write_bytes(value)
                (directory / key).chmod(0o600)

    def path(self, path: str) -> Path:
        for mount in sorted(self.mounts, key=len, reverse=True):
            if path.startswith(mount + "/"):
                return self.mounts[mount] / path[len(mount) + 1:]
        raise AssertionError(f"{path}: in no volume")

    def argv(self, args: list[str], env: dict[str, str], drop: tuple[str, ...] = ()) -> list[str]:
        out = []
        for arg in args:
            if arg.startswith(drop):
                continue
            arg = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg)
            flag, eq, value = arg.partition("=")
            if eq and value.startswith("/"):
                arg = f"{flag}={self.path(value)}"
            out.append(arg)
        return out


def _flag(argv: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]
    return value


def _health(url: str) -> bool | None:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200 and json.loads(r.read()).get("health") == "true"
    return None


@contextlib.contextmanager
def etcd_of_the_statefulset(sts: dict[str, Any], objects: dict[tuple[str, str], dict[str, Any]],
                            root: Path) -> Iterator[str]:
    """etcd as member etcd-0 runs it: the StatefulSet's command and the etcd-server-tls Secret's files, one
    member, the member's name and the ports moved to loopback. Yields the client URL."""
    pod = Pod(root, sts["spec"]["template"], objects)
    client, peer, metrics = free_port(), free_port(), free_port()
    env = {"POD_NAME": "etcd-0", "INITIAL_CLUSTER": "etcd-0=https://etcd-0.etcd:2380"}

    def local(arg: str) -> str:
        arg = arg.replace("etcd-0.etcd", "localhost").replace("0.0.0.0", "127.0.0.1")
        return arg.replace(":2379", f":{client}").replace(":2380", f":{peer}").replace(":2381", f":{metrics}")

    (binary, *args) = pod.container["command"]
    argv = [binary, *(local(a) for a in pod.argv(args, env))]
    assert _flag(argv, "data-dir").startswith(str(root))
    process = Process("etcd", argv, root / "etcd.log")
    process.start()
    try:
        # the readiness probe's request, on the metrics port
        probe = pod.container["readinessProbe"]["httpGet"]["path"]
        deadline = time.monotonic() + 30
        while not _health(f"http://127.0.0.1:{metrics}{probe}"):
            process.check()
            assert time.monotonic() < deadline, process.tail()
            time.sleep(0.2)
        yield f"https://127.0.0.1:{client}"
    finally:
        process.stop()


@contextlib.contextmanager
def kubellm_apiserver(state: Path, argv: list[str], ca: Path) -> Iterator[APIServer]:
    """A kubellm-apiserver process with `argv` (a free port, on loopback), ready by its serving CA."""
    state.mkdir(parents=True, exist_ok=True)
    log = state / "apiserver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "cmd" / "kubellm-apiserver"), "--state-dir", str(state), "--secure-port", "0",
             "--bind-address", "127.0.0.1", *argv],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True, preexec_fn=_die_with_parent)
    try:
        url = wait_until_ready(state, proc, log, ca_file=ca)
        yield APIServer(url, state / "admin.kubeconfig", state, proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    check_no_secrets(log, None)


def _https(url: str, ca: Path, token: str = "") -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_deployed_api_server_serves_through_the_aggregator_with_delegation(
        host: ControlPlane, install: Path, tmp_path: Path) -> None:
    docs = render(host, INSTALL, install)
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    # the host's side, for real: the namespace, ServiceAccounts, RBAC, the kubeconfig ConfigMap, the Secrets
    apply(host, [d for d in docs if d["kind"] == "Namespace"])
    apply(host, [d for d in docs if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                                                  "RoleBinding", "ConfigMap", "Secret")])
    template = objects[("Deployment", "kubellm-apiserver")]["spec"]["template"]
    # what kubelet projects into the pod: the ServiceAccount's token and the cluster's CA; and the in-cluster
    # kubeconfig pointing at them, its address moved to this host's
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(_token(host, "kubellm-apiserver", "1h"))
    (sa / "ca.crt").write_bytes(host.ca.cert.read_bytes())
    host_kubeconfig = copy.deepcopy(objects[("ConfigMap", "kubellm-host-kubeconfig")])
    text = host_kubeconfig["data"]["kubeconfig"]
    assert "https://kubernetes.default.svc:443" in text and text.count(SA_DIR) == 2
    host_kubeconfig["data"]["kubeconfig"] = text.replace("https://kubernetes.default.svc:443", host.url).replace(
        SA_DIR, str(sa))
    objects[("ConfigMap", "kubellm-host-kubeconfig")] = host_kubeconfig
    pki = install / "pki"
    admin = install / "admin.kubeconfig"
    reg = Registration()
    credential = secret("member-token-of-the-e2e-test")

    with etcd_of_the_statefulset(objects[("StatefulSet", "etcd")], objects, tmp_path / "etcd-0") as etcd:
        replicas = [Pod(tmp_path / f"pod-{name}", template, objects) for name in ("a", "b")]
        # --state-dir and --secure-port are the test's (a free port), on loopback; etcd is the one above
        argvs = [[*p.argv(p.container["args"], {}, drop=("--state-dir", "--secure-port", "--bind-address",
                                                          "--etcd-servers")), f"--etcd-servers={etcd}"]
                 for p in replicas]
        serving_ca = install / "pki" / "serving-ca.crt"
        with kubellm_apiserver(tmp_path / "replica-a", argvs[0], serving_ca) as a, \
                kubellm_apiserver(tmp_path / "replica-b", argvs[1], serving_ca) as b:
            port = urlparse(a.url).port
            try:
                # registered by the install's APIServices (their caBundle: the serving CA of hack/gen-install.py),
                # through a Service that leads to replica a on loopback
                host.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": reg.service,
                                                                                 "namespace": NAMESPACE},
                            "spec": {"type": "ExternalName", "externalName": "localhost",
                                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}})
                services = [d for d in docs if d["kind"] == "APIService"]
                for service in services:
                    service["spec"]["service"]["port"] = port
                apply(host, services)
                wait_available(host, reg)
                lines = [json.loads(line) for line in a.log.read_text().splitlines() if line.startswith("{")]
                assert {"event": "front-proxy settings from the host cluster", "found": True}.items() <= next(
                    line for line in lines if line.get("event") == "front-proxy settings from the host cluster"
                ).items()

                # a host user: KubeLLM sees the identity the aggregator forwards, and the host's RBAC decides
                user = "kubellm-e2e-reader"
                pair, _ = host.user(user)
                path = "/apis/cluster.kubellm.io/v1alpha1/clusters"
                r = host.request("GET", path, client=pair)
                assert r.status == 403 and f'User "{user}"' in r.body["message"], r.body
                host.apply(
                    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                     "metadata": {"name": "kubellm-e2e-cluster-reader"},
                     "rules": [{"apiGroups": ["cluster.kubellm.io"], "resources": ["clusters"],
                                "verbs": ["get", "list"]}]},
                    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                     "metadata": {"name": "kubellm-e2e-cluster-reader"},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                 "name": "kubellm-e2e-cluster-reader"},
                     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
                assert eventually(lambda: host.request("GET", path, client=pair).status, lambda s: s == 200,
                                  timeout=30) == 200
                # docs/install.md's check, through the host
                assert "No resources found" in host.kubectl("get", "llms", "-A").stderr

                # both replicas: the install's client CA (the break-glass admin certificate) and one encryption
                # key (what replica a encrypts, replica b decrypts)
                def kubectl(server: str, *args: str, input: str | None = None) -> str:
                    return host.kubectl("--server", server, *args, kubeconfig=admin, input=input).stdout

                kubectl(a.url, "apply", "-f", "-", input=json.dumps({
                    "apiVersion": "cluster.kubellm.io/v1alpha1", "kind": "Cluster",
                    "metadata": {"name": "deployed-e2e"},
                    "spec": {"apiEndpoint": "https://member.example:6443",
                             "caBundle": base64.b64encode(host.ca.cert.read_bytes()).decode(),
                             "credentials": {"token": credential}, "region": "local"}}))
                read = json.loads(kubectl(b.url, "get", "--raw", f"{path}/deployed-e2e/credentials"))
                assert read["spec"]["credentials"]["token"] == credential
                assert credential not in kubectl(b.url, "get", "cluster", "deployed-e2e", "-o", "json")

                # Prometheus's token (the ServiceMonitor's) reads /metrics; another ServiceAccount's does not
                status, body = _https(f"{a.url}/metrics", pki / "serving-ca.crt", _token(host, "kubellm-metrics", "1h"))
                assert status == 200 and "apiserver_request_total" in body, body[:500]
                status, body = _https(f"{a.url}/metrics", pki / "serving-ca.crt", _token(host, MANAGER, "1h"))
                assert status == 403, body[:500]
                kubectl(a.url, "delete", "cluster", "deployed-e2e")
            finally:
                unregister(host, reg)
                host.kubectl("delete", "clusterrolebinding,clusterrole", "kubellm-e2e-cluster-reader",
                             "--ignore-not-found", check=False)
