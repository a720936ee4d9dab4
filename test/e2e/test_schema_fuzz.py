"""Every operation the server publishes, fuzzed from its published OpenAPI v3 documents with schemathesis.

The server (its own: the fuzzer creates, patches and deletes at will) publishes one document per
group-version; they are merged, and every operation runs a bounded number of examples, positive and negative,
derandomized (the same examples on every run). Half of the examples are aimed at the server's objects: the
namespace and name of a seeded object, a body whose apiVersion, kind and metadata fit the URL, well-formed
query options, the current resourceVersion for a PUT, a patch drawn from the kind's own schema (the documents
publish a patch as any object), and, when the answer is 422, the fields it names replaced from a complete
valid object and the request sent again (twice at most), so that generated values reach storage. The other
half are sent as generated. For every answer:

- no 5xx, and every error is a `kind: Status`;
- every object the server accepted (2xx to a create, update or patch) passes the project's own validation
  (decoding, ObjectMeta, the kind's rules) and conforms to the published response schema: no
  accepted-but-invalid object.

Watches are bounded (`timeoutSeconds=1`). Authentication is the admin client certificate; the documents'
bearer-token scheme is dropped so that no random Authorization header is generated.
"""

from __future__ import annotations

import copy
import itertools
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
import yaml
from conftest import APIServer, running_apiserver
from examples import FULL
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from kubellm.apis.codec import FieldValidation, decode
from kubellm.apis.scheme import ResourceInfo
from kubellm.apis.validation.meta import validate_object_meta
from kubellm.registry.registry import ALL_RESOURCES

EXAMPLES = 8
"""Examples per operation: about 80 operations, the whole file in about a minute on two cores."""
REPAIRS = 2
NAMESPACE = "fuzz"
SEED = "seed"
WRITES = ("post", "put", "patch")
MANAGER = re.compile(r"^[\x21-\x7e]{1,128}$")


class Client:
    """The admin's HTTPS session to the server under test."""

    def __init__(self, server: APIServer) -> None:
        pki = server.state_dir / "pki"
        self.url = server.url
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the server's CA
        self.kwargs: dict[str, Any] = {"verify": str(pki / "serving-ca.crt"),
                                       "cert": (str(pki / "admin.crt"), str(pki / "admin.key")), "timeout": 15}
        self.last = ""
        """The previous request, for a failure that shows only on the next one (a dropped connection)."""

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url + path, **self.kwargs, **kwargs)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with running_apiserver(Path(tmp_path_factory.mktemp("kubellm-fuzz"))) as server:
        yield Client(server)


def _document(client: Client) -> dict[str, Any]:
    """The published v3 documents of every group-version, merged, without the bearer-token scheme."""
    index = client.request("GET", "/openapi/v3").json()["paths"]
    merged: dict[str, Any] = {"paths": {}, "components": {"schemas": {}}}
    for key, entry in sorted(index.items()):
        if not key.startswith("apis/"):
            continue
        doc = client.request("GET", entry["serverRelativeURL"]).json()
        merged = {**doc, "paths": {**merged["paths"], **doc["paths"]},
                  "components": {"schemas": {**merged["components"]["schemas"], **doc["components"]["schemas"]}}}
    merged.pop("security", None)
    for item in merged["paths"].values():
        for op in item.values():
            if isinstance(op, dict):
                op.pop("security", None)
    return merged


def _info(path: str) -> tuple[ResourceInfo, str]:
    """The kind a path serves and its subresource ("" for the object)."""
    parts = path.split("/")
    for info in ALL_RESOURCES:
        if f"/apis/{info.group}/{info.version}/" in path and info.plural in parts:
            rest = parts[parts.index(info.plural) + 1:]
            return info, rest[1] if len(rest) > 1 else ""
    raise KeyError(path)


def _collection(info: ResourceInfo) -> str:
    scope = f"/namespaces/{NAMESPACE}" if info.namespaced else ""
    return f"/apis/{info.group}/{info.version}{scope}/{info.plural}"


def _metadata(info: ResourceInfo, name: str) -> dict[str, Any]:
    return {"name": name, **({"namespace": NAMESPACE} if info.namespaced else {})}


def _seed(client: Client, info: ResourceInfo) -> None:
    """The seeded object of a kind (a complete valid one), created again if a fuzzed delete took it."""
    body = {**copy.deepcopy(FULL[info.kind]), "metadata": _metadata(info, SEED)}
    response = client.request("POST", _collection(info), json=body)
    assert response.status_code in (201, 409), (info.kind, response.text)


def _body(response: Any) -> Any:
    """The decoded body of a requests or schemathesis response (JSON, or YAML when the server chose it)."""
    headers = {k.lower(): v for k, v in response.headers.items()}
    content_type = headers.get("content-type", "")
    if "yaml" in (content_type if isinstance(content_type, str) else ",".join(content_type)):
        return yaml.safe_load(response.text)
    return response.json()


# --- aiming a generated case at the server's objects -------------------------------------------------------

_names = itertools.count()


def _clean_query(query: dict[str, Any], apply: bool) -> None:
    """Query options as a client would send them: the generated values where they are well-formed."""
    if query.get("dryRun") not in (None, "All"):
        del query["dryRun"]
    if query.get("fieldValidation") not in (None, "Ignore", "Strict", "Warn"):
        del query["fieldValidation"]
    manager = query.get("fieldManager")
    if manager is not None and not (isinstance(manager, str) and MANAGER.match(manager)):
        del query["fieldManager"]
    if not apply:
        query.pop("force", None)


def _aim(case: Any, info: ResourceInfo, subresource: str, draw: Callable[[Any], Any], client: Client,
         bodies: dict[str, Any]) -> None:
    """Point a generated case at the server's objects (see the module docstring)."""
    params = case.path_parameters or {}
    if "namespace" in params:
        params["namespace"] = NAMESPACE
    if "name" in params:
        params["name"] = SEED
    _seed(client, info)
    method = case.method.lower()
    if method not in WRITES:
        return
    if method == "patch":  # drawn from the kind's own shape (or the Scale's)
        case.body = draw(bodies[subresource if subresource == "scale" else ""])
        case.media_type = draw(st.sampled_from(["application/merge-patch+json", "application/apply-patch+yaml"]
                                               if subresource != "scale" else ["application/merge-patch+json"]))
    case.query = case.query if isinstance(case.query, dict) else {}
    _clean_query(case.query, apply=case.media_type == "application/apply-patch+yaml")
    if not isinstance(case.body, dict):
        return
    meta = _metadata(info, SEED if "name" in params else f"fz-{next(_names)}")
    if subresource == "scale":
        case.body = {**case.body, "apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": meta}
        return
    if method == "put":
        current = client.request("GET", f"{_collection(info)}/{SEED}")
        meta["resourceVersion"] = current.json()["metadata"]["resourceVersion"]
    case.body = {**case.body, "apiVersion": info.api_version, "kind": info.kind, "metadata": meta}


_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def _segments(field: str) -> list[str | int]:
    return [int(index) if index.isdigit() else (name or index) for name, index in _SEGMENT.findall(field)]


def _lookup(node: Any, path: list[str | int]) -> tuple[bool, Any]:
    for part in path:
        if isinstance(part, int) and isinstance(node, list) and node:
            node = node[min(part, len(node) - 1)]
        elif isinstance(part, str) and isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def _repair(body: Any, causes: list[dict[str, Any]], reference: dict[str, Any]) -> bool:
    """Replace each field a 422 names with the reference object's value there (or remove it); whether
    anything changed."""
    changed = False
    for cause in causes:
        path = _segments(str(cause.get("field") or ""))
        if not path or path[0] == "metadata":
            continue
        found, parent = _lookup(body, path[:-1])
        last = path[-1]
        if not found:
            continue
        has, value = _lookup(reference, path)
        if isinstance(parent, dict) and isinstance(last, str):
            if has:
                changed |= parent.get(last) != value
                parent[last] = copy.deepcopy(value)
            elif last in parent:
                del parent[last]
                changed = True
        elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            del parent[last]
            changed = True
    return changed


# --- the checks --------------------------------------------------------------------------------------------


def _accepted_object_is_valid(info: ResourceInfo, obj: Any, where: str) -> None:
    assert isinstance(obj, dict), where
    decoded = decode(info.model, copy.deepcopy(obj), FieldValidation.STRICT)
    assert decoded.field_errors == [], (where, obj)
    meta = decoded.obj.metadata  # type: ignore[attr-defined]
    errs = [*validate_object_meta(meta.to_dict(), namespaced=info.namespaced, name_fn=info.validate_name),
            *info.validate(decoded.obj)]
    # write-only fields are never returned: what validation says of their absence is not about this object
    secret = tuple(".".join(p).replace(".*", "") for p in info.secret_fields)
    assert [str(e) for e in errs if not e.field.startswith(secret or ("\0",))] == [], (where, obj)


def _fuzz(op: Any, info: ResourceInfo, subresource: str, bodies: dict[str, Any], client: Client,
          failures: list[str], counts: dict[str, int]) -> None:
    """One operation's examples, positive and negative, half of them aimed at the server's objects."""
    modes = st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE))

    def send(case: Any) -> Any:
        if case.query and "watch" in case.query:
            case.query["timeoutSeconds"] = 1  # watches end
        try:
            response = case.call(session=client.session, base_url=client.url, **client.kwargs)
        except requests.RequestException as exc:
            failures.append(f"{case.method} {case.formatted_path}: {exc} (after {client.last})\n"
                            f"  {case.as_curl_command(verify=False)}"[:3000])
            return None
        client.last = f"{case.method} {case.formatted_path} {response.status_code} {dict(case.query or {})}"
        write = case.method.lower() in WRITES
        accepted = write and 200 <= response.status_code < 300
        key = f"{case.method.lower()} {'accepted' if accepted else response.status_code // 100}"
        counts[key] = counts.get(key, 0) + 1
        label = f"{case.method} {case.formatted_path} {response.status_code}"
        try:
            assert response.status_code < 500, response.text
            if response.status_code >= 400:
                body = _body(response)
                assert isinstance(body, dict) and body.get("kind") == "Status", response.text
            elif write:
                obj = _body(response)
                if subresource == "scale":
                    obj = client.request("GET", case.formatted_path.removesuffix("/scale")).json()
                _accepted_object_is_valid(info, obj, label)
            if "watch" not in (case.query or {}):
                case.validate_response(response, checks=[response_schema_conformance])
        except Exception as exc:  # assertions and schemathesis' check failures alike
            failures.append(f"{label}: {type(exc).__name__}: {exc}\n  {case.as_curl_command(verify=False)}"[:3000])
        return response

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=modes, aimed=st.booleans(), data=st.data())
    def run(case: Any, aimed: bool, data: st.DataObject) -> None:
        if aimed:
            _aim(case, info, subresource, data.draw, client, bodies)
        response = send(case)
        for _ in range(REPAIRS if aimed and case.method.lower() in WRITES and subresource != "scale" else 0):
            if response is None or response.status_code != 422:
                break
            if not _repair(case.body, (_body(response).get("details") or {}).get("causes") or [], FULL[info.kind]):
                break
            response = send(case)

    run()


def test_every_operation_fuzzed_from_the_published_schema(client: Client) -> None:
    schema = schemathesis.openapi.from_dict(_document(client))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 70
    bodies: dict[tuple[str, str], Any] = {}  # (kind, subresource): the bodies its POST (or scale PUT) takes
    for op in operations:
        info, subresource = _info(op.path)
        if (op.method.lower(), subresource) in (("post", ""), ("put", "scale")):
            bodies[(info.kind, subresource)] = op.as_strategy().map(lambda c: c.body)
    failures: list[str] = []
    counts: dict[str, int] = {}
    started = time.monotonic()
    for op in operations:
        info, subresource = _info(op.path)
        kind_bodies = {sub: strategy for (kind, sub), strategy in bodies.items() if kind == info.kind}
        _fuzz(op, info, subresource, kind_bodies, client, failures, counts)
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} failures in {elapsed:.0f}s:\n" + "\n".join(failures[:20])
    print(f"{len(operations)} operations in {elapsed:.0f}s: {dict(sorted(counts.items()))}")
    for method in WRITES:  # the aimed half reaches storage: writes are accepted, not only refused
        assert counts.get(f"{method} accepted", 0) >= 5, counts
