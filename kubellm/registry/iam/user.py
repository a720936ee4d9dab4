"""User and LoginRecord strategies.

`spec.password` is write-only input: it is replaced by `spec.passwordHash` before anything is
stored, using the hasher the server injects (the registry never imports a hashing library). A
client can never set `spec.passwordHash` itself; an update without a password keeps the old hash.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubellm.apis.scheme import ResourceInfo
from kubellm.apis.validation import field
from kubellm.apis.validation.field import ErrorList, ErrorType, FieldError
from kubellm.registry.options import RegistryOptions
from kubellm.registry.strategy import Strategy


class UserStrategy(Strategy):
    field_selectors = ("spec.email", "spec.state", "status.state")
    printer_columns = (
        ("Email", "string", ".spec.email"),
        ("Display Name", "string", ".spec.displayName"),
        ("State", "string", ".status.state"),
        ("Groups", "string", ".spec.groups"),
    )

    def __init__(self, info: ResourceInfo, options: RegistryOptions) -> None:
        super().__init__(info)
        self.options = options

    def _password_errors(self, obj: Any, client_hash: bool) -> ErrorList:
        errs: ErrorList = []
        if client_hash:
            errs.append(field.forbidden("spec.passwordHash", "is set by the server from spec.password"))
        if obj.spec.password and self.options.password_hasher is None:
            errs.append(field.forbidden("spec.password", "this server has no password hasher configured"))
        if obj.spec.password and self.options.password_policy is not None:
            name = obj.metadata.name or ""
            errs.extend(FieldError(ErrorType.INVALID, "spec.password", detail=problem)
                        for problem in self.options.password_policy(obj.spec.password, name))
        return errs

    def prepare_for_create(self, obj: Any) -> None:
        super().prepare_for_create(obj)
        obj._client_hash = bool(obj.spec.password_hash)
        obj.spec.password_hash = None

    def prepare_for_update(self, new: Any, old: Any) -> None:
        new._client_hash = bool(new.spec.password_hash) and new.spec.password_hash != old.spec.password_hash
        new.spec.password_hash = old.spec.password_hash
        super().prepare_for_update(new, old)

    def validate(self, obj: Any) -> ErrorList:
        return super().validate(obj) + self._password_errors(obj, getattr(obj, "_client_hash", False))

    def validate_update(self, new: Any, old: Any) -> ErrorList:
        return super().validate_update(new, old) + self._password_errors(new, getattr(new, "_client_hash", False))

    async def before_storage(self, obj: Any, old: Any = None) -> None:
        """Hash a new password in a worker thread (argon2id takes tens of milliseconds), never on the loop.

        The same password sent again keeps the stored hash: `kubectl apply` sends it on every apply (it is
        not kept in the last-applied annotation), and that must not count as a password change."""
        password = obj.spec.password
        obj.spec.password = None
        if not password:
            return
        old_hash = old.spec.password_hash if old is not None else None
        verify = self.options.password_verifier
        if old_hash and verify is not None and await asyncio.to_thread(verify, password, old_hash):
            obj.spec.password_hash = old_hash
            return
        assert self.options.password_hasher is not None
        obj.spec.password_hash = await asyncio.to_thread(self.options.password_hasher, password)


class LoginRecordStrategy(Strategy):
    field_selectors = ("spec.username", "spec.success", "spec.reason")
    printer_columns = (
        ("User", "string", ".spec.username"),
        ("Success", "boolean", ".spec.success"),
        ("Reason", "string", ".spec.reason"),
        ("Source IP", "string", ".spec.sourceIP"),
    )
