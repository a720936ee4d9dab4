"""POST /login and POST /logout: the HTTP side of logging in (the work is the Login service's).

A login body is small: anything over `MAX_LOGIN_BODY` bytes is refused before it is read, and each
field is bounded (a username can be at most an object name, a password at most `MAX_PASSWORD`
characters), so an anonymous client cannot make the server read, hash or store more than that.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from kubellm.apis import errors
from kubellm.server import negotiation
from kubellm.server.handlers import respond
from kubellm.service.passwords import POLICY_MAX_LENGTH

MAX_LOGIN_BODY = 8 * 1024
MAX_USERNAME = 253
MAX_PASSWORD = POLICY_MAX_LENGTH
SECRET_FIELDS = (("password",), ("status", "token"))
"""What the audit log redacts in /login bodies: the request's password and the response's token."""


class Login(Protocol):
    async def login(self, username: str, password: str, source_ip: str, agent: str) -> dict[str, Any]: ...

    async def logout(self, token: str) -> None: ...


async def read_bounded(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (declared or actual length)."""
    if request.content_length is not None and request.content_length > limit:
        raise errors.request_entity_too_large(f"limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(4096):
        size += len(chunk)
        if size > limit:
            raise errors.request_entity_too_large(f"limit is {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


def credentials(body: object) -> tuple[str, str]:
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) \
            or not isinstance(body.get("password"), str):
        raise errors.bad_request("a login needs a username and a password")
    username, password = body["username"], body["password"]
    if not username or len(username) > MAX_USERNAME:
        raise errors.bad_request(f"username must be 1 to {MAX_USERNAME} characters")
    if len(password) > MAX_PASSWORD:
        raise errors.bad_request(f"password must be at most {MAX_PASSWORD} characters")
    return username, password


class LoginEndpoints:
    def __init__(self, service: Login | None) -> None:
        self.service = service

    async def login(self, request: web.Request) -> web.Response:
        """POST /login {"username", "password"} → a bearer token (LoginResponse)."""
        if self.service is None:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        raw = await read_bounded(request, MAX_LOGIN_BODY)
        username, password = credentials(negotiation.decode_body(raw, request.headers.get("Content-Type")))
        agent = request.headers.get("User-Agent", "")
        result = await self.service.login(username, password, request.remote or "", agent)
        resp = respond(request, result)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        """POST /logout with `Authorization: Bearer <token>`: that token is revoked."""
        if self.service is None:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthorized()
        await self.service.logout(token.strip())
        return respond(request, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                 "code": 200})

    def install(self, app: web.Application) -> None:
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
