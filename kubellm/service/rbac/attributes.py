"""What a request asks to do (kube's authorizer.Attributes) and the answer (Decision)."""

from __future__ import annotations

from dataclasses import dataclass

from kubellm.service.identity import UserInfo


@dataclass(frozen=True)
class Attributes:
    """A request to authorize.

    A resource request names a verb (get, list, watch, create, update, patch, delete, deletecollection, or
    a special verb such as bind, escalate, impersonate), an API group, a resource and maybe a subresource,
    a name and a namespace. A non-resource request (`is_resource_request=False`) names a verb (the HTTP
    method in lower case) and a `path`.
    """

    user: UserInfo
    verb: str
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    is_resource_request: bool = True
    path: str = ""

    @classmethod
    def non_resource(cls, user: UserInfo, verb: str, path: str) -> Attributes:
        return cls(user=user, verb=verb, is_resource_request=False, path=path)


@dataclass(frozen=True)
class Decision:
    """Allowed or not, with kube's reason: on allow the binding that allowed it, on deny `""`."""

    allowed: bool
    reason: str = ""
