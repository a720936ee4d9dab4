"""One error family mirroring metav1.Status reasons (k8s.io/apimachinery/pkg/api/errors).

Every layer raises these; the HTTP layer renders `StatusError.status` as a `kind: Status` body with
`code` as the HTTP status. Messages never carry storage keys or tracebacks.
"""

from __future__ import annotations

from typing import Any

from kubellm.apis.validation.field import ErrorList


class StatusError(Exception):
    """An API error carrying its `metav1.Status` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.warnings: list[str] = []

    @property
    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    d.update({k: v for k, v in extra.items() if v is not None})
    return d


def not_found(resource: str, group: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
                       _details(name, group, resource))


def already_exists(resource: str, group: str, name: str) -> StatusError:
    return StatusError(409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
                       _details(name, group, resource))


def conflict(resource: str, group: str, name: str, why: str) -> StatusError:
    return StatusError(409, "Conflict",
                       f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
                       _details(name, group, resource))


OPTIMISTIC_LOCK_MSG = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(kind: str, group: str, name: str, errs: ErrorList) -> StatusError:
    causes = [{"reason": e.type.reason, "message": e.body(), "field": e.field} for e in errs]
    listed = str(errs[0]) if len(errs) == 1 else "[" + ", ".join(str(e) for e in errs) + "]"
    return StatusError(422, "Invalid", f'{qualified(kind, group)} "{name}" is invalid: {listed}',
                       _details(name, group, kind, causes=causes))


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def resource_expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def gone(message: str) -> StatusError:
    return StatusError(410, "Gone", message)


def method_not_supported(resource: str, group: str, action: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed",
                       f"{action} is not supported on resources of kind {qualified(resource, group)!r}",
                       _details("", group, resource))


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - '
                       f'accepted media types include: application/json, application/yaml, '
                       f'application/merge-patch+json; got "{content_type}"')


def request_entity_too_large(message: str) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", f"Request entity too large: {message}")


def too_many_requests(message: str, retry_after: int) -> StatusError:
    return StatusError(429, "TooManyRequests", message, {"retryAfterSeconds": retry_after})


def timeout(message: str, retry_after: int = 1) -> StatusError:
    return StatusError(504, "Timeout", message, {"retryAfterSeconds": retry_after})


def too_large_resource_version(message: str, retry_after: int = 1) -> StatusError:
    """A resourceVersion newer than the server has seen (kube's `NewTooLargeResourceVersionError`): a Timeout with
    the cause clients key on (client-go's `IsTooLargeResourceVersion`) to list again."""
    return StatusError(504, "Timeout", message, {"retryAfterSeconds": retry_after, "causes": [
        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]})


def service_unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}",
                       {"causes": [{"message": message}]})


def unauthorized(message: str = "Unauthorized") -> StatusError:
    return StatusError(401, "Unauthorized", message)


def forbidden(user: str, verb: str, resource: str, group: str, name: str, namespace: str,
              why: str = "") -> StatusError:
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    target = f'{qualified(resource, group)} "{name}"' if name else qualified(resource, group)
    msg = f'{target} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "{group}"{where}'
    if why:
        msg = f"{msg}: {why}"
    return StatusError(403, "Forbidden", msg, _details(name, group, resource))


def is_reason(err: BaseException, reason: str) -> bool:
    return isinstance(err, StatusError) and err.reason == reason
