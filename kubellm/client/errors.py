"""Typed API errors from the server's `Status`, as client-go's `k8s.io/apimachinery/pkg/api/errors` reads them.

Every error a server answers is an `APIError` carrying the decoded `metav1.Status` (`.status`), its `code`,
`reason`, `message`, `details` and, for 429 and 5xx answers, `retry_after` (seconds, from the Status or the
`Retry-After` header). The class follows the reason, or the HTTP code when the body is not a Status (a
proxy's page, an empty 503), as `apierrors.FromObject` and `newUnstructuredResponseError` do:

    try:
        clients.model_v1alpha1.llmservices("ns").get("qwen")
    except NotFound:
        ...
    except Invalid as e:
        for cause in e.causes: print(cause.field, cause.message)

Failures that are not answers (refused connections, TLS, a deadline passed on the client) are
`TransportError` and `ClientTimeout` (a `TimeoutError`); neither carries a Status.
"""

from __future__ import annotations

from typing import Any

import orjson

from kubellm.apis.meta.v1 import Status, StatusCause


class ClientError(Exception):
    """Base of everything the clientset raises on purpose."""


class TransportError(ClientError, ConnectionError):
    """The request did not get an answer: connection refused or reset, TLS failure, a stream cut."""


class ClientTimeout(ClientError, TimeoutError):
    """The call's deadline passed before the server answered (the client gave up; the server may still act)."""


class APIError(ClientError):
    """An answer of the server that is a failure: the decoded `Status` and what it says."""

    default_code = 500
    default_reason = ""

    def __init__(self, status: Status, retry_after: float | None = None) -> None:
        super().__init__(status.message or status.reason or f"the server answered {status.code}")
        self.status = status
        self.retry_after = retry_after

    @property
    def code(self) -> int:
        return self.status.code or self.default_code

    @property
    def reason(self) -> str:
        return self.status.reason or ""

    @property
    def message(self) -> str:
        return self.status.message or ""

    @property
    def causes(self) -> list[StatusCause]:
        details = self.status.details
        return list(details.causes or []) if details is not None else []

    @property
    def name(self) -> str:
        details = self.status.details
        return (details.name or "") if details is not None else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, reason={self.reason!r}, message={self.message!r})"


class BadRequest(APIError):
    default_code, default_reason = 400, "BadRequest"


class Unauthorized(APIError):
    default_code, default_reason = 401, "Unauthorized"


class Forbidden(APIError):
    default_code, default_reason = 403, "Forbidden"


class NotFound(APIError):
    default_code, default_reason = 404, "NotFound"


class MethodNotAllowed(APIError):
    default_code, default_reason = 405, "MethodNotAllowed"


class NotAcceptable(APIError):
    default_code, default_reason = 406, "NotAcceptable"


class AlreadyExists(APIError):
    default_code, default_reason = 409, "AlreadyExists"


class Conflict(APIError):
    default_code, default_reason = 409, "Conflict"


class Gone(APIError):
    """410: what was asked for is no longer available (a compacted resourceVersion, an expired continue)."""

    default_code, default_reason = 410, "Gone"


class Expired(Gone):
    """410 Expired: the resourceVersion (or continue token) is older than the server's history."""

    default_code, default_reason = 410, "Expired"


class RequestEntityTooLarge(APIError):
    default_code, default_reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(APIError):
    default_code, default_reason = 415, "UnsupportedMediaType"


class Invalid(APIError):
    """422: the object failed validation; `causes` lists each field (`field`, `reason`, `message`)."""

    default_code, default_reason = 422, "Invalid"


class TooManyRequests(APIError):
    """429: the server is busy; `retry_after` says when to try again (the client already retried)."""

    default_code, default_reason = 429, "TooManyRequests"


class InternalError(APIError):
    default_code, default_reason = 500, "InternalError"


class ServerTimeout(APIError):
    default_code, default_reason = 500, "ServerTimeout"


class ServiceUnavailable(APIError):
    default_code, default_reason = 503, "ServiceUnavailable"


class Timeout(APIError):
    """504 Timeout: the server could not finish in time (also "Too large resource version")."""

    default_code, default_reason = 504, "Timeout"

    @property
    def too_large_resource_version(self) -> bool:
        """The resourceVersion asked for is newer than the server has seen (client-go's
        `IsTooLargeResourceVersion`)."""
        return ("Too large resource version" in self.message
                or any(c.reason == "ResourceVersionTooLarge" for c in self.causes))


_BY_REASON: dict[str, type[APIError]] = {
    cls.default_reason: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable, AlreadyExists,
                Conflict, Gone, Expired, RequestEntityTooLarge, UnsupportedMediaType, Invalid, TooManyRequests,
                InternalError, ServerTimeout, ServiceUnavailable, Timeout)
}
_BY_CODE: dict[int, type[APIError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed, 406: NotAcceptable,
    409: Conflict, 410: Gone, 413: RequestEntityTooLarge, 415: UnsupportedMediaType, 422: Invalid,
    429: TooManyRequests, 500: InternalError, 503: ServiceUnavailable, 504: Timeout,
}
_REASON_OF_CODE = {code: cls.default_reason for code, cls in _BY_CODE.items()}


def error_class(code: int, reason: str) -> type[APIError]:
    """The class for a Status: by reason when it is a known one, else by HTTP code."""
    return _BY_REASON.get(reason) or _BY_CODE.get(code) or APIError


def decode_status(data: Any) -> Status | None:
    """A Status from a decoded JSON value, or None when it is not one. Unknown fields are kept."""
    if not isinstance(data, dict) or data.get("kind") != "Status":
        return None
    try:
        return Status.model_validate(data, extra="allow")
    except ValueError:
        return None


def from_status(status: Status, retry_after: float | None = None) -> APIError:
    """The typed error for a Status (as in an ERROR watch event)."""
    if retry_after is None and status.details is not None and status.details.retry_after_seconds:
        retry_after = float(status.details.retry_after_seconds)
    return error_class(status.code or 0, status.reason or "")(status, retry_after)


def from_response(code: int, body: bytes, retry_after: float | None = None) -> APIError:
    """The typed error for a failed HTTP answer: its Status if the body is one, else one made from the code
    and the body's text (as client-go does for a body it cannot decode)."""
    status = None
    if body[:1] == b"{":
        try:
            status = decode_status(orjson.loads(body))
        except orjson.JSONDecodeError:
            status = None
    if status is None:
        text = body.decode("utf-8", errors="replace").strip()[:1024]
        reason = _REASON_OF_CODE.get(code, "Unknown")
        message = text or f"the server answered {code} without a Status"
        status = Status(kind="Status", api_version="v1", status="Failure", code=code, reason=reason, message=message)
    elif status.code is None:
        status.code = code
    return from_status(status, retry_after)
