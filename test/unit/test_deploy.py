"""deploy/ rendered with kubectl's kustomize: every object of both overlays (and of an install overlay made by
hack/gen-install.py) validates against the Kubernetes schemas (kubernetes-validate, strict) and the
Prometheus operator's published CRD schemas (vendored in deploy/third_party); the API server's flags parse as
the server parses them and name files its Secrets hold; delegation, hardening, etcd, NetworkPolicies,
APIServices and monitoring are as docs/install.md says; the controller manager's host RBAC matches
KubeLLM's default role for it, and its Deployment's flags parse."""

from __future__ import annotations

import base64
import copy
import functools
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubellm.app import encryption
from kubellm.app.options import Options as APIServerOptions
from kubellm.controller.manager.options import Options
from kubellm.registry.registry import ALL_RESOURCES
from kubellm.service.rbac.defaults import CLUSTER_GROUP, CONTROLLER_MANAGER, MODEL_GROUP, default_cluster_roles

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "kubellm-system"
OVERLAYS = ["deploy/overlays/dev", "deploy/overlays/prod"]
INSTALL = "install"
"""An install overlay hack/gen-install.py writes on top of overlays/prod (a tmp directory)."""
SOURCES = [*OVERLAYS, INSTALL]
K8S_VERSIONS = ["1.32", "1.36"]
"""kubernetes-validate's schemas (shipped in the package, offline): the oldest release docs/install.md supports
and the release of the kube-apiserver the e2e test dry-runs against."""
CRDS = ROOT / "deploy" / "third_party" / "prometheus-operator"
CIDRS = ["10.0.0.0/24", "10.1.2.3/32"]
IMAGE = "registry.example.com/kubellm:0.1.0"
SA_DIR = PurePosixPath("/var/run/secrets/kubernetes.io/serviceaccount")


# --- rendering -------------------------------------------------------------------------------------------------


def load_hack(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), ROOT / "hack" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_install = load_hack("gen-install")


@functools.cache
def _kustomize(path: str) -> str:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is required")
    return subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True, check=True).stdout


def render(path: str | Path) -> list[dict[str, Any]]:
    text = _kustomize(str(path if Path(path).is_absolute() else ROOT / path))
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def install_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("install") / "kubellm-install"
    argv = ["--out", str(out), "--image", IMAGE]
    for cidr in CIDRS:
        argv += ["--apiserver-cidr", cidr]
    assert gen_install.main(argv) == 0
    return out


@pytest.fixture
def docs_of(install_dir: Path) -> Any:
    def docs(source: str) -> list[dict[str, Any]]:
        return render(install_dir if source == INSTALL else source)
    return docs


def objects(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def group_of(obj: dict[str, Any]) -> str:
    return str(obj["apiVersion"]).rpartition("/")[0]


def pod_templates(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d["spec"]["template"] for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


# --- schema validation ------------------------------------------------------------------------------------------


def _refuse_unknown_fields(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD's structural schema as a JSON Schema that refuses fields it does not declare, as the server's
    strict field validation does (unknown fields are pruned, and under strict validation refused), except
    where the schema keeps unknown fields (x-kubernetes-preserve-unknown-fields)."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: _refuse_unknown_fields(v) for k, v in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _refuse_unknown_fields(out["additionalProperties"])
    if isinstance(out.get("items"), dict):
        out["items"] = _refuse_unknown_fields(out["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [_refuse_unknown_fields(s) for s in out[key]]
    return out


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) → a validator from the vendored Prometheus operator CRDs' openAPIV3Schema."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            schema = _refuse_unknown_fields(version["schema"]["openAPIV3Schema"])
            validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            out[(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])] = validator_class(schema)
    return out


def schema_errors(obj: dict[str, Any], version: str) -> list[str]:
    """What is wrong with `obj` by its schema: Kubernetes' own kinds by kubernetes-validate (strict: unknown
    fields refused), the Prometheus operator's kinds by their CRDs. A kind with no schema is an error."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if group_of(obj) == "monitoring.coreos.com":
        validator = crd_validators().get((obj["apiVersion"], obj["kind"]))
        if validator is None:
            return [f"{where}: no vendored CRD for {obj['apiVersion']} {obj['kind']}"]
        return [f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{where}: {'.'.join(map(str, exc.absolute_path))}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"{where}: {exc.message}"]
    return []


def test_kubernetes_validate_has_the_schemas_offline() -> None:
    versions = {kubernetes_validate.utils.major_minor(v) for v in kubernetes_validate.utils.all_versions()}
    assert set(K8S_VERSIONS) <= versions


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("source", SOURCES)
def test_every_rendered_object_validates_against_its_schema(docs_of: Any, source: str, version: str) -> None:
    docs = docs_of(source)
    assert docs
    errors = [e for d in docs for e in schema_errors(d, version)]
    assert errors == []


def test_the_schema_validation_refuses_unknown_and_mistyped_fields(docs_of: Any) -> None:
    by_kind = objects(docs_of("deploy/overlays/prod"))
    deployment = copy.deepcopy(by_kind[("Deployment", "kubellm-apiserver")])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/livez"
    assert schema_errors(deployment, "1.32")
    deployment = copy.deepcopy(by_kind[("Deployment", "kubellm-apiserver")])
    deployment["spec"]["replicas"] = "three"
    assert schema_errors(deployment, "1.32")
    monitor = copy.deepcopy(by_kind[("ServiceMonitor", "kubellm-apiserver")])
    monitor["spec"]["endpoints"][0]["tlsConfig"]["servername"] = "x"
    assert any("servername" in e for e in schema_errors(monitor, "1.32"))
    rule = copy.deepcopy(by_kind[("PrometheusRule", "kubellm")])
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    assert schema_errors(rule, "1.32")
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert schema_errors(unknown, "1.32")


def test_the_etcd_data_pod_validates_and_meets_the_restricted_standard() -> None:
    (pod,) = yaml.safe_load_all((ROOT / "deploy/tools/etcd-data-pod.yaml").read_text())
    assert [e for v in K8S_VERSIONS for e in schema_errors(pod, v)] == []
    assert pod["spec"]["securityContext"]["runAsUser"] == 65532 and pod["spec"]["volumes"][0][
        "persistentVolumeClaim"]["claimName"] == "data-etcd-0"  # the StatefulSet's claim of member etcd-0
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}


def test_the_vendored_crds_are_the_operators() -> None:
    names = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in CRDS.glob("*.yaml")}
    assert names == {"servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"}
    assert set(crd_validators()) == {("monitoring.coreos.com/v1", "ServiceMonitor"),
                                     ("monitoring.coreos.com/v1", "PrometheusRule")}
    assert (CRDS / "LICENSE").read_text().lstrip().startswith("Apache License")


# --- what the overlays hold -------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_manifests_register_exactly_the_served_groups(docs_of: Any, source: str, install_dir: Path) -> None:
    docs = docs_of(source)
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "APIService"}
    served = {(r.group, r.version) for r in ALL_RESOURCES if not r.host_kind}
    assert {(s["spec"]["group"], s["spec"]["version"]) for s in services.values()} == served
    for name, svc in services.items():
        assert name == f"{svc['spec']['version']}.{svc['spec']['group']}"
        assert svc["spec"]["service"] == {"name": "kubellm-apiserver", "namespace": NAMESPACE, "port": 443}
        # the aggregator always verifies KubeLLM's certificate; no cert-manager is involved
        assert "insecureSkipTLSVerify" not in svc["spec"]
        assert "cert-manager.io/inject-ca-from" not in svc["metadata"].get("annotations", {})
        if source == INSTALL:
            ca = (install_dir / "pki" / "serving-ca.crt").read_bytes()
            assert base64.b64decode(svc["spec"]["caBundle"]) == ca
        else:
            assert "caBundle" not in svc["spec"]


@pytest.mark.parametrize("source", SOURCES)
def test_the_api_server_delegates_to_the_host(docs_of: Any, source: str) -> None:
    by_kind = objects(docs_of(source))
    pod = by_kind[("Deployment", "kubellm-apiserver")]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "kubellm-apiserver" and pod.get("automountServiceAccountToken") is not False
    sa = by_kind[("ServiceAccount", "kubellm-apiserver")]
    assert sa["metadata"]["namespace"] == NAMESPACE and sa.get("automountServiceAccountToken") is not False
    subject = [{"kind": "ServiceAccount", "name": "kubellm-apiserver", "namespace": NAMESPACE}]
    delegator = by_kind[("ClusterRoleBinding", "kubellm-apiserver:system:auth-delegator")]
    assert delegator["roleRef"]["name"] == "system:auth-delegator" and delegator["subjects"] == subject
    reader = by_kind[("RoleBinding", "kubellm-apiserver-auth-reader")]
    assert reader["metadata"]["namespace"] == "kube-system"
    assert reader["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                 "name": "extension-apiserver-authentication-reader"}
    assert reader["subjects"] == subject

    options = APIServerOptions.parse(pod["containers"][0]["args"])
    assert options.validate() == []
    config = options.complete().config()
    # TokenReview and SubjectAccessReview to the host, and the front-proxy CA and names read from the host's
    # kube-system/extension-apiserver-authentication (no --requestheader-client-ca-file: the ConfigMap is the
    # source, as for kube's aggregated servers); the host serves Namespaces, Events and Leases
    assert config.authentication_kubeconfig == config.authorization_kubeconfig == Path("/etc/kubellm/host/kubeconfig")
    assert config.requestheader_client_ca_file is None and not config.serve_host_kinds
    kubeconfig = yaml.safe_load(file_content(by_kind, pod, str(config.authentication_kubeconfig)))
    (cluster,) = kubeconfig["clusters"]
    (user,) = kubeconfig["users"]
    assert cluster["cluster"] == {"server": "https://kubernetes.default.svc:443",
                                  "certificate-authority": str(SA_DIR / "ca.crt")}
    assert user["user"] == {"tokenFile": str(SA_DIR / "token")}
    assert kubeconfig["current-context"] == kubeconfig["contexts"][0]["name"]


def _volume_for(pod: dict[str, Any], container: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The volume a file path of the container lies in, and the path inside it."""
    for mount in sorted(container["volumeMounts"], key=lambda m: -len(m["mountPath"])):
        inside = PurePosixPath(path).relative_to(mount["mountPath"]) if PurePosixPath(path).is_relative_to(
            mount["mountPath"]) else None
        if inside is not None:
            (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
            assert mount.get("readOnly") or "emptyDir" in volume, mount
            return volume, str(inside)
    raise AssertionError(f"{path} is in no volume of {container['name']}")


def file_content(by_kind: dict[tuple[str, str], dict[str, Any]], pod: dict[str, Any], path: str) -> str:
    (container,) = pod["containers"]
    volume, key = _volume_for(pod, container, path)
    if "configMap" in volume:
        return str(by_kind[("ConfigMap", volume["configMap"]["name"])]["data"][key])
    secret = by_kind[("Secret", volume["secret"]["secretName"])]
    return base64.b64decode(secret["data"][key]).decode()


FILE_FLAGS = re.compile(r"^--((?:etcd-)?(?:cafile|certfile|keyfile)|tls-cert-file|tls-private-key-file|client-ca-file|"
                        r"encryption-provider-config|authentication-kubeconfig|authorization-kubeconfig|"
                        r"requestheader-client-ca-file)=(.+)$")


@pytest.mark.parametrize("source", SOURCES)
def test_keys_and_certificates_come_from_secrets(docs_of: Any, source: str) -> None:
    by_kind = objects(docs_of(source))
    pod = by_kind[("Deployment", "kubellm-apiserver")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    files = dict(m.groups() for a in container["args"] if (m := FILE_FLAGS.match(a)))
    # shared by every replica: etcd's client certificate, the serving certificate, the client CA, the
    # encryption configuration (a key per pod would make one replica's writes unreadable to the others)
    assert set(files) == {"etcd-cafile", "etcd-certfile", "etcd-keyfile", "tls-cert-file", "tls-private-key-file",
                          "client-ca-file", "encryption-provider-config", "authentication-kubeconfig",
                          "authorization-kubeconfig"}
    for flag, path in files.items():
        volume, key = _volume_for(pod, container, path)
        assert "emptyDir" not in volume, f"--{flag} is in an emptyDir"
        if flag.endswith("kubeconfig"):
            assert volume["configMap"]["name"] == "kubellm-host-kubeconfig" and key == "kubeconfig"
        else:
            assert "secret" in volume, flag
            if source == INSTALL:  # the Secret the install applies has that key
                assert file_content(by_kind, pod, path), flag
    if source == INSTALL:
        encryption.parse(yaml.safe_load(file_content(by_kind, pod, files["encryption-provider-config"])))
    # the only writable volumes are in-memory scratch: --state-dir and /tmp
    scratch = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert {m["mountPath"] for m in container["volumeMounts"] if m["name"] in scratch} == {"/var/run/kubellm", "/tmp"}
    assert all(v["emptyDir"].get("medium") == "Memory" for v in pod["volumes"] if "emptyDir" in v)
    assert "--state-dir=/var/run/kubellm" in container["args"]


@pytest.mark.parametrize("source", SOURCES)
def test_the_api_server_deployment_is_highly_available_and_probed(docs_of: Any, source: str) -> None:
    docs = docs_of(source)
    by_kind = objects(docs)
    deployment = by_kind[("Deployment", "kubellm-apiserver")]
    spec = deployment["spec"]
    labels = spec["template"]["metadata"]["labels"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == (1 if source.endswith("dev") else 3)
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert anti["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    pdb = by_kind[("PodDisruptionBudget", "kubellm-apiserver")]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items() and pdb["maxUnavailable"] == 1
    options = APIServerOptions.parse(container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"https": options.secure_port} and options.bind_address == "0.0.0.0"
    for probe, path in (("startupProbe", "/livez"), ("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}, probe
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]
    service = by_kind[("Service", "kubellm-apiserver")]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"] == [{"name": "https", "port": 443, "targetPort": "https"}]
    if source == INSTALL:
        assert container["image"] == IMAGE


RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}


@pytest.mark.parametrize("source", OVERLAYS)
def test_every_pod_meets_the_restricted_pod_security_standard(docs_of: Any, source: str) -> None:
    """The restricted profile's checks (the e2e test has the real server's admission say so too)."""
    docs = docs_of(source)
    namespace = objects(docs)[("Namespace", NAMESPACE)]["metadata"]["labels"]
    for mode in ("enforce", "warn"):
        assert namespace[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    templates = pod_templates(docs)
    assert set(templates) == {"kubellm-apiserver", "kubellm-controller-manager", "etcd"}
    for name, template in templates.items():
        pod = template["spec"]
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), name
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert {k for v in pod.get("volumes", []) for k in v if k != "name"} <= RESTRICTED_VOLUMES, name
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["readOnlyRootFilesystem"] is True and not sc.get("privileged"), name
            assert not any("hostPort" in p for p in container.get("ports", [])), name
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"], name


ETCD_URL = re.compile(r"https://([a-z0-9.-]+):(\d+)")


def etcd_members(statefulset: dict[str, Any]) -> dict[str, str]:
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    return dict(m.split("=", 1) for m in env["INITIAL_CLUSTER"].split(","))


@pytest.mark.parametrize("source", SOURCES)
def test_etcd_is_a_tls_cluster_with_client_certificates_volumes_and_anti_affinity(docs_of: Any, source: str) -> None:
    by_kind = objects(docs_of(source))
    sts = by_kind[("StatefulSet", "etcd")]
    spec = sts["spec"]
    replicas = 1 if source.endswith("dev") else 3
    assert spec["replicas"] == replicas and spec["podManagementPolicy"] == "Parallel"
    # --initial-cluster names every member, as the StatefulSet names its pods
    assert etcd_members(sts) == {f"etcd-{i}": f"https://etcd-{i}.etcd:2380" for i in range(replicas)}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    command = container["command"]
    assert "--initial-cluster=$(INITIAL_CLUSTER)" in command and "--initial-cluster-state=new" in command
    assert "--client-cert-auth" in command and "--peer-client-cert-auth" in command
    for flag in ("listen-client-urls", "advertise-client-urls", "listen-peer-urls", "initial-advertise-peer-urls"):
        (value,) = [a.split("=", 1)[1] for a in command if a.startswith(f"--{flag}=")]
        assert value.startswith("https://"), flag
    trusted = {a.split("=", 1)[1] for a in command if a.startswith(("--trusted-ca-file=", "--peer-trusted-ca-file="))}
    assert trusted == {"/etc/etcd/tls/ca.crt"}
    (tls,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert tls["secret"]["secretName"] == "etcd-server-tls"
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data" and claim["spec"]["resources"]["requests"]["storage"]
    assert {"name": "data", "mountPath": "/var/lib/etcd"} in container["volumeMounts"]
    assert "--data-dir=/var/lib/etcd/data" in command
    (anti,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert anti["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert pod["automountServiceAccountToken"] is False
    assert by_kind[("PodDisruptionBudget", "etcd")]["spec"]["maxUnavailable"] == 1
    headless = by_kind[("Service", "etcd")]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert spec["serviceName"] == "etcd"
    # KubeLLM dials the etcd-client Service (ready members only) with its own client certificate
    api = by_kind[("Deployment", "kubellm-apiserver")]["spec"]["template"]["spec"]["containers"][0]["args"]
    options = APIServerOptions.parse(api)
    assert options.etcd_servers == ["https://etcd-client:2379"]
    assert by_kind[("Service", "etcd-client")]["spec"]["ports"] == [{"name": "client", "port": 2379,
                                                                    "targetPort": "client"}]


def _ingress(policy: dict[str, Any]) -> list[tuple[list[dict[str, Any]] | None, list[int]]]:
    return [(rule.get("from"), [p["port"] for p in rule["ports"]]) for rule in policy["spec"]["ingress"]]


@pytest.mark.parametrize("source", SOURCES)
def test_network_policies(docs_of: Any, source: str) -> None:
    by_kind = objects(docs_of(source))
    policies = {name: p for (kind, name), p in by_kind.items() if kind == "NetworkPolicy"}
    assert all(p["spec"]["policyTypes"] == ["Ingress"] for p in policies.values())
    # only KubeLLM reaches etcd's client port, only etcd members its peer port
    pod = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "kubellm-apiserver"}}}
    member = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "etcd"}}}
    assert _ingress(policies["etcd"]) == [([pod], [2379]), ([member], [2380])]
    # only the host's API server reaches KubeLLM's port: the control plane's addresses, which the install sets
    expected = {"deploy/overlays/dev": None, "deploy/overlays/prod": [{"ipBlock": {"cidr": "192.0.2.0/32"}}],
                INSTALL: [{"ipBlock": {"cidr": c}} for c in CIDRS]}[source]
    assert _ingress(policies["kubellm-apiserver"]) == [(expected, [6443])]
    # the controller manager's plain-HTTP health and metrics: nothing but Prometheus
    assert "ingress" not in policies["kubellm-controller-manager"]["spec"]
    prometheus = policies.get("kubellm-allow-prometheus")
    if source.endswith("dev"):
        assert prometheus is None
    else:
        assert prometheus is not None
        [(sources, ports)] = _ingress(prometheus)
        assert sources == [{"namespaceSelector": {}, "podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "prometheus"}}}]
        assert ports == [6443, 2381, 10359]
        assert prometheus["spec"]["podSelector"]["matchExpressions"] == [{
            "key": "app.kubernetes.io/name", "operator": "In",
            "values": ["kubellm-apiserver", "etcd", "kubellm-controller-manager"]}]


# --- monitoring -------------------------------------------------------------------------------------------------


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


@pytest.mark.parametrize("source", ["deploy/overlays/prod", INSTALL])
def test_service_monitors_scrape_the_three_components(docs_of: Any, source: str) -> None:
    docs = docs_of(source)
    by_kind = objects(docs)
    services = [d for d in docs if d["kind"] == "Service"]
    templates = pod_templates(docs)
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    jobs = {}
    for monitor in monitors:
        (service,) = [s for s in services if _selects(monitor["spec"]["selector"]["matchLabels"],
                                                      s["metadata"].get("labels", {}))]
        (endpoint,) = monitor["spec"]["endpoints"]
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
        (workload,) = [n for n, t in templates.items()
                       if _selects(service["spec"]["selector"], t["metadata"]["labels"])]
        (container,) = templates[workload]["spec"]["containers"]
        container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert port["targetPort"] in container_ports, (monitor["metadata"]["name"], port)
        jobs[service["metadata"]["name"]] = (workload, endpoint)
    assert {job: workload for job, (workload, _) in jobs.items()} == {
        "kubellm-apiserver": "kubellm-apiserver", "kubellm-etcd": "etcd",
        "kubellm-controller-manager": "kubellm-controller-manager"}
    # KubeLLM's /metrics: HTTPS verified with the serving CA for the Service's name, a token the host's RBAC
    # lets read /metrics
    endpoint = jobs["kubellm-apiserver"][1]
    assert endpoint["scheme"] == "https" and endpoint["path"] == "/metrics"
    assert endpoint["tlsConfig"] == {"ca": {"secret": {"name": "kubellm-apiserver-tls", "key": "ca.crt"}},
                                     "serverName": "kubellm-apiserver.kubellm-system.svc"}
    token = by_kind[("Secret", endpoint["authorization"]["credentials"]["name"])]
    assert token["type"] == "kubernetes.io/service-account-token"
    account = token["metadata"]["annotations"]["kubernetes.io/service-account.name"]
    binding = by_kind[("ClusterRoleBinding", "kubellm:metrics-reader")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    assert by_kind[("ClusterRole", binding["roleRef"]["name"])]["rules"] == [
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]


def alerts(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_alerts_cover_availability_errors_latency_and_etcd(docs_of: Any) -> None:
    docs = docs_of("deploy/overlays/prod")
    found = alerts(docs)
    assert {"KubeLLMAPIServiceUnavailable", "KubeLLMAPIServerDown", "KubeLLMAPIServerErrorsHigh",
            "KubeLLMAPIServerLatencyHigh", "KubeLLMEtcdNoLeader", "KubeLLMEtcdInsufficientMembers",
            "KubeLLMEtcdDatabaseQuotaLowSpace", "KubeLLMEtcdHighFsyncDurations",
            "KubeLLMControllerManagerNoLeader"} <= set(found)
    monitored = {s["metadata"]["name"] for s in docs if s["kind"] == "Service"
                 and any(_selects(m["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {}))
                         for m in docs if m["kind"] == "ServiceMonitor")}
    served = "|".join(re.escape(f"{r.version}.{r.group}") for r in ALL_RESOURCES if not r.host_kind)
    for name, rule in found.items():
        expr = rule["expr"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        # every job an alert reads is one of the ServiceMonitors' (named after their Services)
        assert set(re.findall(r'job="([^"]+)"', expr)) <= monitored, name
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), name
        if "aggregator_unavailable_apiservice" in expr:
            pattern = re.search(r'name=~"([^"]+)"', expr)
            assert pattern is not None
            names = {f"{r.version}.{r.group}" for r in ALL_RESOURCES if not r.host_kind}
            assert all(re.fullmatch(pattern.group(1), n) for n in names), served


def test_alert_rules_pass_promtool(docs_of: Any, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus): the PromQL of the alerts is "
                    "checked by the schema only")
    (rule,) = [d for d in docs_of("deploy/overlays/prod") if d["kind"] == "PrometheusRule"]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    # and the main alerts fire on the series they are about (not on healthy ones); annotations are left out,
    # promtool would compare their rendered text
    bare = copy.deepcopy(rule["spec"]["groups"])
    for group in bare:
        for r in group["rules"]:
            r.pop("annotations", None)
    path.write_text(yaml.safe_dump({"groups": bare}))
    api, etcd, ns = 'job="kubellm-apiserver"', 'job="kubellm-etcd"', 'namespace="kubellm-system",statefulset="etcd"'
    tests = {"rule_files": [path.name], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            {"series": f'apiserver_request_total{{{api},code="500"}}', "values": "0+10x30"},
            {"series": f'apiserver_request_total{{{api},code="200"}}', "values": "0+90x30"},
            {"series": 'aggregator_unavailable_apiservice{name="v1alpha1.model.kubellm.io"}', "values": "1x30"},
            {"series": 'aggregator_unavailable_apiservice{name="v1.metrics.k8s.io"}', "values": "1x30"},
            {"series": 'aggregator_unavailable_apiservice{name="v1alpha1.iam.kubellm.io"}', "values": "0x30"},
            {"series": f'etcd_server_has_leader{{{etcd},pod="etcd-1"}}', "values": "0x30"},
            {"series": f'etcd_server_has_leader{{{etcd},pod="etcd-0"}}', "values": "1x30"},
            {"series": f"kube_statefulset_status_replicas_ready{{{ns}}}", "values": "1x30"},
            {"series": f"kube_statefulset_replicas{{{ns}}}", "values": "3x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "KubeLLMAPIServerErrorsHigh", "exp_alerts": [
                {"exp_labels": {"severity": "critical"}}]},
            {"eval_time": "20m", "alertname": "KubeLLMAPIServiceUnavailable", "exp_alerts": [
                {"exp_labels": {"severity": "critical", "name": "v1alpha1.model.kubellm.io"}}]},
            {"eval_time": "20m", "alertname": "KubeLLMAPIServerDown", "exp_alerts": [
                {"exp_labels": {"severity": "critical"}}]},
            {"eval_time": "20m", "alertname": "KubeLLMEtcdNoLeader", "exp_alerts": [
                {"exp_labels": {"severity": "critical", "job": "kubellm-etcd", "pod": "etcd-1"}}]},
            {"eval_time": "20m", "alertname": "KubeLLMEtcdInsufficientMembers", "exp_alerts": [
                {"exp_labels": {"severity": "critical", "namespace": "kubellm-system", "statefulset": "etcd"}}]},
            {"eval_time": "2m", "alertname": "KubeLLMEtcdInsufficientMembers", "exp_alerts": []},  # not yet: for 3m
            {"eval_time": "20m", "alertname": "KubeLLMEtcdDatabaseQuotaLowSpace", "exp_alerts": []},
        ]}]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    out = subprocess.run([promtool, "test", "rules", "tests.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


# --- hack/gen-install.py ----------------------------------------------------------------------------------------


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _names(cert: x509.Certificate) -> set[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*sans.get_values_for_type(x509.DNSName), *(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))}


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and cert.signature_hash_algorithm is not None
    key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    return cert.issuer == ca.subject


def _usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_gen_install_writes_secrets_the_manifests_use(install_dir: Path, docs_of: Any) -> None:
    assert (install_dir.stat().st_mode & 0o777) == 0o700 and ((install_dir / "pki").stat().st_mode & 0o777) == 0o700
    for private in ("secrets.yaml", "encryption-config.yaml", "admin.kubeconfig", "pki/etcd-ca.key",
                    "pki/apiserver.key"):
        assert ((install_dir / private).stat().st_mode & 0o777) == 0o600, private
    docs = docs_of(INSTALL)
    by_kind = objects(docs)
    secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all((install_dir / "secrets.yaml").read_text())}
    assert set(secrets) == {"etcd-server-tls", "kubellm-etcd-client", "kubellm-apiserver-tls", "kubellm-client-ca",
                            "kubellm-encryption-config"}
    assert all(s["metadata"]["namespace"] == NAMESPACE and ("Secret", n) in by_kind for n, s in secrets.items())
    # every Secret a pod mounts is in the install, with every key a pod's flags name (SA tokens: the token
    # controller fills them)
    for name, template in pod_templates(docs).items():
        for volume in template["spec"].get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, (name, volume)
    pki = install_dir / "pki"
    etcd_ca, serving_ca, client_ca = (_cert(pki / f"{n}-ca.crt") for n in ("etcd", "serving", "client"))
    # etcd's certificate names every address it is dialled by: members (peers, advertised client URLs), the
    # etcd-client Service KubeLLM uses, loopback (etcdctl through a port-forward); server and client usage
    etcd = _cert(pki / "etcd-server.crt")
    sts = by_kind[("StatefulSet", "etcd")]
    (command,) = [c["command"] for c in sts["spec"]["template"]["spec"]["containers"]]
    hosts = {m.group(1) for url in etcd_members(sts).values() if (m := ETCD_URL.match(url))}
    hosts |= {a.split("//")[1].split(":")[0].replace("$(POD_NAME)", f"etcd-{i}") for a in command
              if a.startswith(("--advertise-client-urls", "--initial-advertise-peer-urls")) for i in range(3)}
    api = APIServerOptions.parse(by_kind[("Deployment", "kubellm-apiserver")]["spec"]["template"]["spec"][
        "containers"][0]["args"])
    hosts |= {ETCD_URL.match(u).group(1) for u in api.etcd_servers}  # type: ignore[union-attr]
    assert hosts | {"127.0.0.1", "localhost", "etcd.kubellm-system.svc"} <= _names(etcd)
    assert _signed_by(etcd, etcd_ca)
    assert _usages(etcd) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    for client in ("etcd-client", "etcd-admin"):
        cert = _cert(pki / f"{client}.crt")
        assert _signed_by(cert, etcd_ca) and _usages(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    # KubeLLM's serving certificate: the name the aggregator verifies, and the ServiceMonitor's serverName
    serving = _cert(pki / "apiserver.crt")
    monitor = by_kind[("ServiceMonitor", "kubellm-apiserver")]["spec"]["endpoints"][0]
    assert {"kubellm-apiserver.kubellm-system.svc", monitor["tlsConfig"]["serverName"], "127.0.0.1"} <= _names(serving)
    assert _signed_by(serving, serving_ca)
    tls = secrets["kubellm-apiserver-tls"]["data"]
    assert base64.b64decode(tls["tls.crt"]) == (pki / "apiserver.crt").read_bytes()
    assert base64.b64decode(tls["ca.crt"]) == (pki / "serving-ca.crt").read_bytes()
    assert b"PRIVATE KEY" not in base64.b64decode(tls["ca.crt"])
    # the break-glass admin: a client certificate of the client CA KubeLLM trusts, in system:masters
    admin = _cert(pki / "admin.crt")
    assert _signed_by(admin, client_ca)
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    assert base64.b64decode(secrets["kubellm-client-ca"]["data"]["ca.crt"]) == (pki / "client-ca.crt").read_bytes()
    kubeconfig = yaml.safe_load((install_dir / "admin.kubeconfig").read_text())
    (admin_user,) = kubeconfig["users"]
    assert base64.b64decode(admin_user["user"]["client-certificate-data"]) == (pki / "admin.crt").read_bytes()
    # the EncryptionConfiguration: aesgcm first for every resource KubeLLM encrypts by default
    config = yaml.safe_load(base64.b64decode(secrets["kubellm-encryption-config"]["data"]["encryption-config.yaml"]))
    assert config == yaml.safe_load((install_dir / "encryption-config.yaml").read_text())
    assert set(config["resources"][0]["resources"]) == set(encryption.ENCRYPTED_BY_DEFAULT)
    assert list(config["resources"][0]["providers"][0]) == ["aesgcm"]
    encryption.parse(config)


def test_gen_install_again_keeps_the_cas_and_the_encryption_key(tmp_path: Path) -> None:
    out = tmp_path / "install"
    assert gen_install.main(["--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in (out / "pki").iterdir()}
    key = (out / "encryption-config.yaml").read_text()
    assert gen_install.main(["--out", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in (out / "pki").iterdir()} == before
    assert (out / "encryption-config.yaml").read_text() == key
    # --renew: new certificates and keys from the same CAs
    assert gen_install.main(["--out", str(out), "--renew"]) == 0
    after = {p.name: p.read_bytes() for p in (out / "pki").iterdir()}
    cas = {n for n in before if n.split(".")[0].endswith("-ca")}
    assert len(cas) == 6 and all(after[n] == before[n] for n in cas)
    assert all(after[n] != before[n] for n in before if n not in cas)
    assert _signed_by(_cert(out / "pki" / "apiserver.crt"), _cert(out / "pki" / "serving-ca.crt"))
    # --rotate-encryption-key: a new key first (new writes), the old one kept (reads)
    assert gen_install.main(["--out", str(out), "--rotate-encryption-key"]) == 0
    old = yaml.safe_load(key)["resources"][0]["providers"][0]["aesgcm"]["keys"]
    config = yaml.safe_load((out / "encryption-config.yaml").read_text())
    keys = config["resources"][0]["providers"][0]["aesgcm"]["keys"]
    assert [k["name"] for k in keys] == ["key2", "key1"] and keys[1:] == old and keys[0]["secret"] != old[0]["secret"]
    secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all((out / "secrets.yaml").read_text())}
    shipped = yaml.safe_load(base64.b64decode(secrets["kubellm-encryption-config"]["data"]["encryption-config.yaml"]))
    assert shipped["resources"][0]["providers"][0]["aesgcm"]["keys"] == keys


def test_gen_install_on_the_dev_overlay(tmp_path: Path) -> None:
    out = tmp_path / "dev"
    assert gen_install.main(["--out", str(out), "--overlay", str(ROOT / "deploy/overlays/dev")]) == 0
    by_kind = objects(render(out))
    assert by_kind[("Deployment", "kubellm-apiserver")]["spec"]["replicas"] == 1
    assert all(d["spec"]["caBundle"] for (kind, _), d in by_kind.items() if kind == "APIService")
    assert _ingress(by_kind[("NetworkPolicy", "kubellm-apiserver")]) == [(None, [6443])]
    assert [e for d in by_kind.values() for e in schema_errors(d, "1.32")] == []


@pytest.mark.parametrize(("image", "entry"), [
    ("registry.example.com:5000/kubellm:0.1.0", {"newName": "registry.example.com:5000/kubellm", "newTag": "0.1.0"}),
    ("registry.example.com:5000/kubellm", {"newName": "registry.example.com:5000/kubellm"}),
    ("kubellm@sha256:" + "a" * 64, {"newName": "kubellm", "digest": "sha256:" + "a" * 64}),
])
def test_gen_install_image(image: str, entry: dict[str, str]) -> None:
    assert gen_install.image_entry(image) == {"name": "kubellm", **entry}


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


@pytest.mark.parametrize("source", SOURCES)
def test_the_controller_manager_runs_in_the_host_with_leader_election_and_hardening(docs_of: Any, source: str) -> None:
    objs = objects(docs_of(source))
    sa = objs[("ServiceAccount", MANAGER)]
    assert sa["metadata"]["namespace"] == NAMESPACE
    subject = {"kind": "ServiceAccount", "name": MANAGER, "namespace": NAMESPACE}
    binding = objs[("ClusterRoleBinding", MANAGER)]
    assert binding["roleRef"]["name"] == MANAGER and binding["subjects"] == [subject]
    role = objs[("Role", f"{MANAGER}:leader-election")]
    assert role["metadata"]["namespace"] == NAMESPACE
    leases = _grants(role["rules"], {"coordination.k8s.io"})
    # what the elector calls (get, create, update), plus patch as kube-controller-manager's role; within what
    # KubeLLM's own role grants on its leases
    assert leases == {("coordination.k8s.io", "leases"): {"get", "create", "update", "patch"}}
    assert leases[("coordination.k8s.io", "leases")] <= _grants(
        _default_controller_manager_rules(), {"coordination.k8s.io"})[("coordination.k8s.io", "leases")]
    role_binding = objs[("RoleBinding", f"{MANAGER}:leader-election")]
    assert role_binding["metadata"]["namespace"] == NAMESPACE
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
    assert options.leader_election_namespace == NAMESPACE
    assert options.bind_address == "0.0.0.0"  # kubelet probes the pod IP, not loopback
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": options.health_port, "metrics": options.metrics_port} == {"health": 10358,
                                                                                          "metrics": 10359}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    # SIGTERM: the reconciles' grace period, then releasing the Lease and flushing Events, fit in the pod's
    assert pod["terminationGracePeriodSeconds"] > options.shutdown_grace_period + 5

    pdb = objs[("PodDisruptionBudget", MANAGER)]
    assert pdb["metadata"]["namespace"] == NAMESPACE and pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
