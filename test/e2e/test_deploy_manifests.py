"""deploy/ against a real kube-apiserver: every rendered object of `deploy/base`, `deploy/overlays/dev` and
`deploy/member` is accepted by `kubectl apply --dry-run=server --validate=strict` (the server's schema, with
unknown fields refused, and its admission); the controller manager's pod passes the `restricted` Pod Security
Standard; and the controller manager's host RBAC works for real: a kubellm-controller-manager process under
its ServiceAccount's token, with the Deployment's flags, leads on its Lease in kubellm-system and keeps a Cluster's
status through an aggregated, delegating KubeLLM (the host's RBAC decides), the host itself being the member
cluster registered with deploy/member's ServiceAccount.

There is no kubelet here: Deployments and StatefulSets are accepted, their pods never run. The manager runs as a
process on this machine with a kubeconfig holding what its in-cluster config would: the host's address, its CA
and the ServiceAccount's token.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import eventually, secret
from hostcluster import ControlPlane, aggregated_kubellm, control_plane
from managers import FAST_ELECTION, managers, start_manager

from kubellm.service.rbac.defaults import CONTROLLER_MANAGER, default_cluster_roles

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "kubellm-system"
MANAGER = "kubellm-controller-manager"
MANAGER_USER = f"system:serviceaccount:{NAMESPACE}:{MANAGER}"
MEMBER_USER = f"system:serviceaccount:{NAMESPACE}:kubellm"

NEEDS_A_CRD = {
    ("cert-manager.io", "Certificate"), ("cert-manager.io", "Issuer"), ("cert-manager.io", "ClusterIssuer"),
    ("monitoring.coreos.com", "ServiceMonitor"), ("monitoring.coreos.com", "PodMonitor"),
}
"""Kinds a bare kube-apiserver does not serve (their CRDs come with cert-manager and the Prometheus operator):
left out of the dry run by this explicit list. Today no rendered object is of these kinds (`deploy/base` refers
to cert-manager only through the `cert-manager.io/inject-ca-from` annotation on its APIServices, which the server
accepts as any annotation); `test_what_the_dry_run_leaves_out` says so, and fails when that changes."""

SOURCES = ["deploy/base", "deploy/overlays/dev", "deploy/member", "deploy/member/runtimeclass-nvidia.yaml"]


def group_of(obj: dict[str, Any]) -> str:
    group, _, _ = str(obj["apiVersion"]).rpartition("/")
    return group


def render(host: ControlPlane, source: str) -> list[dict[str, Any]]:
    """A kustomization rendered by kubectl, or a plain manifest file."""
    path = ROOT / source
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
    with control_plane(tmp_path_factory.mktemp("deploy-host"), "deploy-host") as cp:
        yield cp


def test_what_the_dry_run_leaves_out(host: ControlPlane) -> None:
    for source in SOURCES:
        left_out = [f"{d['kind']}/{d['metadata']['name']}" for d in render(host, source)
                    if (group_of(d), d["kind"]) in NEEDS_A_CRD]
        assert left_out == [], f"{source}: these need a CRD the test cluster does not have: {left_out}"


@pytest.mark.parametrize("source", SOURCES)
def test_every_rendered_object_is_accepted_by_a_real_apiserver(host: ControlPlane, source: str) -> None:
    docs = render(host, source)
    # the namespace must exist for a dry run of what goes in it (`kubectl apply -k` creates it first too)
    apply(host, [d for d in docs if d["kind"] == "Namespace"])
    checked = [d for d in docs if (group_of(d), d["kind"]) not in NEEDS_A_CRD]
    out = dry_run(host, checked)
    assert out.returncode == 0, f"{source} rejected:\n{out.stdout}\n{out.stderr}"
    assert warnings(out.stderr) == [], f"{source}: warnings from the server"
    accepted = out.stdout.splitlines()
    assert len(accepted) == len(checked) and all(line.endswith("(server dry run)") for line in accepted), out.stdout
    # every object went to the server, dry-run and strict (the namespace, already there, may need no write)
    sent = writes(out.stderr)
    assert len(sent) >= len([d for d in checked if d["kind"] != "Namespace"]), out.stderr
    assert all("dryRun=All" in line and "fieldValidation=Strict" in line for line in sent), sent


def _controller_manager(host: ControlPlane) -> dict[str, Any]:
    (deployment,) = [d for d in render(host, "deploy/overlays/dev") if d["kind"] == "Deployment"
                     and d["metadata"]["name"] == MANAGER]
    return deployment


def test_strict_validation_has_teeth(host: ControlPlane) -> None:
    """The same dry run refuses a misspelt field, so the test above would see one."""
    apply(host, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
    broken = _controller_manager(host)
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    out = dry_run(host, [broken])
    assert out.returncode != 0, out.stdout
    assert ('strict decoding error: unknown field "spec.template.spec.containers[0].livenessProbe.httpGet.paht"'
            in out.stderr), out.stderr  # the server's answer, not kubectl's client-side check


def test_the_controller_manager_pod_meets_the_restricted_pod_security_standard(host: ControlPlane) -> None:
    apply(host, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "pss-restricted", "labels": {"pod-security.kubernetes.io/warn": "restricted"}}}])
    deployment = _controller_manager(host)
    deployment["metadata"]["namespace"] = "pss-restricted"
    out = dry_run(host, [deployment])
    assert out.returncode == 0 and warnings(out.stderr) == [], out.stderr
    # and the check has teeth: without the container's securityContext the server warns
    loose = copy.deepcopy(deployment)
    del loose["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    warned = "\n".join(warnings(dry_run(host, [loose]).stderr))
    assert 'would violate PodSecurity "restricted' in warned and "allowPrivilegeEscalation" in warned, warned


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
def deployed(host: ControlPlane) -> ControlPlane:
    """The host with what `kubectl apply -k deploy/overlays/dev` creates of the controller manager (its pods
    aside), and deploy/member with the RuntimeClass: the host doubles as a member cluster."""
    docs = render(host, "deploy/overlays/dev")
    apply(host, [d for d in docs if d["kind"] == "Namespace"])
    apply(host, [d for d in docs if d["metadata"]["name"].startswith(MANAGER) and d["kind"] in (
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")])
    apply(host, render(host, "deploy/member") + render(host, "deploy/member/runtimeclass-nvidia.yaml"))
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
        deployed: ControlPlane, tmp_path: Path) -> None:
    host = deployed
    args = [a for a in _controller_manager(host)["spec"]["template"]["spec"]["containers"][0]["args"]
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
