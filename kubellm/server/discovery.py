"""Discovery documents: /api, /apis, /apis/<group>, /apis/<group>/<version>, and aggregated discovery v2.

Verbs and subresources come from the capabilities of each resource's REST objects
(`Resource.describe()`), so discovery never advertises a route the server does not serve.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubellm.registry.rest import Served


@dataclass(frozen=True)
class GroupVersion:
    group: str
    version: str
    resources: tuple[Served, ...]


def group_versions(resources: Sequence[Served]) -> list[GroupVersion]:
    by_gv: dict[tuple[str, str], list[Served]] = {}
    for r in resources:
        by_gv.setdefault((r.group, r.version), []).append(r)
    return [GroupVersion(g, v, tuple(sorted(rs, key=lambda r: r.info.plural))) for (g, v), rs in sorted(by_gv.items())]


def _hash(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()[:8]).decode()


def resource_list(gv: GroupVersion) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for served in gv.resources:
        info = served.info
        entry: dict[str, Any] = {"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
                                 "kind": info.kind, "verbs": list(served.verbs),
                                 "storageVersionHash": _hash(f"{info.group}/{info.version}/{info.kind}")}
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        resources.append(entry)
        for sub in served.subresources:
            sub_entry: dict[str, Any] = {"name": f"{info.plural}/{sub.name}", "singularName": "",
                                         "namespaced": info.namespaced, "kind": sub.kind, "verbs": list(sub.verbs)}
            if sub.group != info.group:
                sub_entry["group"], sub_entry["version"] = sub.group, sub.version
            resources.append(sub_entry)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{gv.group}/{gv.version}" if gv.group else gv.version,
            "resources": resources}


def _group(name: str, gvs: list[GroupVersion]) -> dict[str, Any]:
    versions = [{"groupVersion": f"{gv.group}/{gv.version}", "version": gv.version} for gv in gvs]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def groups(gvs: list[GroupVersion]) -> dict[str, dict[str, Any]]:
    """The named groups (the core group is discovered at /api, not /apis)."""
    by_group: dict[str, list[GroupVersion]] = {}
    for gv in gvs:
        if gv.group:
            by_group.setdefault(gv.group, []).append(gv)
    return {name: _group(name, v) for name, v in by_group.items()}


def group_list(gvs: list[GroupVersion]) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": list(groups(gvs).values())}


def api_group(gvs: list[GroupVersion], name: str) -> dict[str, Any] | None:
    g = groups(gvs).get(name)
    return {"kind": "APIGroup", "apiVersion": "v1", **g} if g else None


def api_versions(server_address: str, gvs: list[GroupVersion] | None = None) -> dict[str, Any]:
    """/api: the core group's versions (none when the core group is not served)."""
    versions = [gv.version for gv in gvs or [] if not gv.group]
    return {"kind": "APIVersions", "versions": versions,
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def aggregated(gvs: list[GroupVersion], *, core: bool = False) -> dict[str, Any]:
    """Aggregated discovery v2: the named groups (/apis), or with `core` the core group (/api)."""
    items: dict[str, dict[str, Any]] = {}
    for gv in gvs:
        if bool(gv.group) == core:
            continue
        resources = []
        for served in gv.resources:
            info = served.info
            res: dict[str, Any] = {
                "resource": info.plural,
                "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
                "scope": "Namespaced" if info.namespaced else "Cluster",
                "singularResource": info.singular,
                "verbs": list(served.verbs),
            }
            if info.short_names:
                res["shortNames"] = list(info.short_names)
            if info.categories:
                res["categories"] = list(info.categories)
            subs = [{"subresource": sub.name, "responseKind": {"group": sub.group, "version": sub.version,
                                                                "kind": sub.kind}, "verbs": list(sub.verbs)}
                    for sub in served.subresources]
            if subs:
                res["subresources"] = subs
            resources.append(res)
        item = items.setdefault(gv.group, {"metadata": {"name": gv.group}, "versions": []})
        item["versions"].append({"version": gv.version, "resources": resources, "freshness": "Current"})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": list(items.values())}
