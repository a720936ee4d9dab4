"""Value transformers: how stored bytes are encrypted at rest (as Kubernetes' EncryptionConfiguration).

`AESGCMTransformer` writes `k8s:enc:aesgcm:v1:<key name>:` + nonce + ciphertext, with the storage key
as associated data (a value cannot be moved to another key). The first key encrypts; every listed key
decrypts, so keys rotate by putting a new one first, rewriting, then dropping the old one. Values
written before encryption was turned on (no prefix) are still read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubellm.registry.storage import errors

AESGCM_PREFIX = b"k8s:enc:aesgcm:v1:"


class Transformer(Protocol):
    def to_storage(self, key: str, data: bytes) -> bytes: ...

    def from_storage(self, key: str, data: bytes) -> bytes: ...


class Identity:
    def to_storage(self, key: str, data: bytes) -> bytes:
        return data

    def from_storage(self, key: str, data: bytes) -> bytes:
        if data.startswith(b"k8s:enc:"):
            raise errors.Unavailable(key, "the value is encrypted but no decryption key is configured for it")
        return data


IDENTITY = Identity()


class AESGCMTransformer:
    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("aesgcm needs at least one key")
        for name, secret in keys:
            if len(secret) not in (16, 24, 32):
                raise ValueError(f"aesgcm key {name!r} must be 16, 24 or 32 bytes")
            if not name or ":" in name:
                raise ValueError(f"aesgcm key name {name!r} must be non-empty and contain no ':'")
        self.keys = {name: AESGCM(secret) for name, secret in keys}
        self.primary = keys[0][0]

    def to_storage(self, key: str, data: bytes) -> bytes:
        nonce = os.urandom(12)
        sealed = self.keys[self.primary].encrypt(nonce, data, key.encode())
        return AESGCM_PREFIX + self.primary.encode() + b":" + nonce + sealed

    def from_storage(self, key: str, data: bytes) -> bytes:
        if not data.startswith(AESGCM_PREFIX):
            return IDENTITY.from_storage(key, data)
        name, sep, rest = data[len(AESGCM_PREFIX):].partition(b":")
        cipher = self.keys.get(name.decode(errors="replace"))
        if not sep or cipher is None or len(rest) < 12 + 16:
            raise errors.Unavailable(key, "the value is encrypted with a key this server does not have")
        try:
            return cipher.decrypt(rest[:12], rest[12:], key.encode())
        except InvalidTag:
            raise errors.Unavailable(key, "the stored value failed authentication") from None


@dataclass(frozen=True)
class PrefixTransformers:
    """The transformer for each key prefix (a resource's root); identity elsewhere."""

    rules: tuple[tuple[str, Transformer], ...] = ()

    def for_key(self, key: str) -> Transformer:
        for prefix, transformer in self.rules:
            if key.startswith(prefix):
                return transformer
        return IDENTITY

    def to_storage(self, key: str, data: bytes) -> bytes:
        return self.for_key(key).to_storage(key, data)

    def from_storage(self, key: str, data: bytes) -> bytes:
        return self.for_key(key).from_storage(key, data)
