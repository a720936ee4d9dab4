"""The deploy manifests render with kubectl's kustomize and register exactly the served groups; the controller
manager's host RBAC matches KubeLLM's default role for it, and its Deployment's flags parse."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm.controller.manager.options import Options
from kubellm.registry.registry import ALL_RESOURCES
from kubellm.service.rbac.defaults import CLUSTER_GROUP, CONTROLLER_MANAGER, MODEL_GROUP, default_cluster_roles

ROOT = Path(__file__).resolve().parents[2]


def render(path: str) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is required")
    out = subprocess.run(["kubectl", "kustomize", str(ROOT / path)], capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("path", ["deploy/base", "deploy/overlays/dev"])
def test_manifests_render_and_match_the_served_groups(path: str) -> None:
    docs = render(path)
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "APIService"}
    served = {(r.group, r.version) for r in ALL_RESOURCES if not r.host_kind}
    assert {(s["spec"]["group"], s["spec"]["version"]) for s in services.values()} == served
    for name, svc in services.items():
        assert name == f"{svc['spec']['version']}.{svc['spec']['group']}"
        assert svc["spec"]["service"] == {"name": "kubellm-apiserver", "namespace": "kubellm-system", "port": 443}
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    reader = by_kind[("RoleBinding", "kubellm-apiserver-auth-reader")]
    assert reader["metadata"]["namespace"] == "kube-system"
    deployment = by_kind[("Deployment", "kubellm-apiserver")]
    assert deployment["metadata"]["namespace"] == "kubellm-system"
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    # etcd over TLS with KubeLLM's client certificate, and a NetworkPolicy that lets only KubeLLM reach it
    assert "--etcd-servers=https://etcd-0.etcd:2379" in args
    assert {"--etcd-cafile=/etc/kubellm/etcd/ca.crt", "--etcd-certfile=/etc/kubellm/etcd/tls.crt",
            "--etcd-keyfile=/etc/kubellm/etcd/tls.key"} <= set(args)
    etcd = by_kind[("StatefulSet", "etcd")]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--client-cert-auth" in etcd and "--peer-client-cert-auth" in etcd
    assert not any(a.startswith("--listen-client-urls=http:") for a in etcd)
    policy = by_kind[("NetworkPolicy", "etcd")]["spec"]
    sources = [(rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], rule["ports"][0]["port"])
               for rule in policy["ingress"]]
    assert sources == [("kubellm-apiserver", 2379), ("etcd", 2380)] and policy["policyTypes"] == ["Ingress"]
    if path.endswith("dev"):
        assert all(s["spec"].get("insecureSkipTLSVerify") for s in services.values())
    else:
        assert all("cert-manager.io/inject-ca-from" in s["metadata"]["annotations"] for s in services.values())


# --- kubellm-controller-manager in the host cluster ---------------------------------------------------------------

KUBELLM_GROUPS = {MODEL_GROUP, CLUSTER_GROUP}
MANAGER = "kubellm-controller-manager"


def _grants(rules: list[dict[str, Any]], groups: set[str]) -> dict[tuple[str, str], set[str]]:
    """(group, resource) → verbs, for the rules' resources in `groups` (rules split or merged alike)."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule.get("apiGroups") or []:
            if group not in groups:
                continue
            for resource in rule.get("resources") or []:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def _default_controller_manager_rules() -> list[dict[str, Any]]:
    (role,) = [r for r in default_cluster_roles() if r["metadata"]["name"] == CONTROLLER_MANAGER]
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def _manager_objects(path: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in render(path)}


def test_the_host_cluster_role_grants_what_kubellms_default_controller_manager_role_grants() -> None:
    docs = yaml.safe_load_all((ROOT / "deploy/base/controller-manager.yaml").read_text())
    (deployed,) = [d for d in docs if d["kind"] == "ClusterRole"]
    defaults = _default_controller_manager_rules()
    # KubeLLM's groups: exactly the same, both ways (a verb or resource added to one side only fails)
    assert _grants(deployed["rules"], KUBELLM_GROUPS) == _grants(defaults, KUBELLM_GROUPS)
    assert ("cluster.kubellm.io", "clusters/credentials") in _grants(deployed["rules"], KUBELLM_GROUPS)
    # the host's core kinds the manager writes and reads: Events and Namespaces, as KubeLLM's role has them
    assert _grants(deployed["rules"], {""}) == _grants(defaults, {""}) == {
        ("", "events"): {"create", "patch", "update"}, ("", "namespaces"): {"get", "list", "watch"}}
    # nothing else cluster-wide: the Lease is granted in kubellm-system only (below)
    assert {g for rule in deployed["rules"] for g in rule["apiGroups"]} == KUBELLM_GROUPS | {""}


@pytest.mark.parametrize("path", ["deploy/base", "deploy/overlays/dev"])
def test_the_controller_manager_runs_in_the_host_with_leader_election_and_hardening(path: str) -> None:
    objs = _manager_objects(path)
    sa = objs[("ServiceAccount", MANAGER)]
    assert sa["metadata"]["namespace"] == "kubellm-system"
    subject = {"kind": "ServiceAccount", "name": MANAGER, "namespace": "kubellm-system"}
    binding = objs[("ClusterRoleBinding", MANAGER)]
    assert binding["roleRef"]["name"] == MANAGER and binding["subjects"] == [subject]
    role = objs[("Role", f"{MANAGER}:leader-election")]
    assert role["metadata"]["namespace"] == "kubellm-system"
    leases = _grants(role["rules"], {"coordination.k8s.io"})
    # what the elector calls (get, create, update), plus patch as kube-controller-manager's role; within what
    # KubeLLM's own role grants on its leases
    assert leases == {("coordination.k8s.io", "leases"): {"get", "create", "update", "patch"}}
    assert leases[("coordination.k8s.io", "leases")] <= _grants(
        _default_controller_manager_rules(), {"coordination.k8s.io"})[("coordination.k8s.io", "leases")]
    role_binding = objs[("RoleBinding", f"{MANAGER}:leader-election")]
    assert role_binding["metadata"]["namespace"] == "kubellm-system"
    assert role_binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                       "name": f"{MANAGER}:leader-election"}
    assert role_binding["subjects"] == [subject]

    deployment = objs[("Deployment", MANAGER)]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 2 and pod["serviceAccountName"] == MANAGER
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert anti["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert pod["securityContext"]["runAsNonRoot"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]

    # the flags exist and validate as the manager parses them; in-cluster config (no --kubeconfig)
    options = Options.parse(container["args"])
    assert options.validate() == []
    assert options.kubeconfig == "" and options.leader_elect
    assert options.leader_election_namespace == "kubellm-system"
    assert options.bind_address == "0.0.0.0"  # kubelet probes the pod IP, not loopback
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": options.health_port, "metrics": options.metrics_port} == {"health": 10358,
                                                                                          "metrics": 10359}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    # SIGTERM: the reconciles' grace period, then releasing the Lease and flushing Events, fit in the pod's
    assert pod["terminationGracePeriodSeconds"] > options.shutdown_grace_period + 5

    pdb = objs[("PodDisruptionBudget", MANAGER)]
    assert pdb["metadata"]["namespace"] == "kubellm-system" and pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
