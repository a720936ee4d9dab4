"""Encryption at rest: reading (or, for a standalone server, generating) an EncryptionConfiguration.

The file has the shape of kube-apiserver's `apiserver.config.k8s.io/v1` EncryptionConfiguration:
for each listed resource, providers in order — the first encrypts new writes, all of them decrypt:

    resources:
      - resources: [clusters.cluster.kubellm.io]
        providers:
          - aesgcm: {keys: [{name: key2, secret: <base64>}, {name: key1, secret: <base64>}]}
          - identity: {}
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from kubellm.apis.scheme import storage_root
from kubellm.registry.registry import ALL_RESOURCES
from kubellm.registry.storage.value import IDENTITY, AESGCMTransformer, PrefixTransformers, Transformer

ENCRYPTED_BY_DEFAULT = (*(info.group_resource for info in ALL_RESOURCES if info.encrypted_by_default),
                        "signingkeys.iam.kubellm.io")
"""Resources with secret fields (Cluster credentials, User password hashes), sensitive ones (LoginRecords)
and the token signing keys."""


class EncryptionConfigError(ValueError):
    pass


class _WritesPlain:
    """identity first: new writes are plaintext, values still encrypted are read with the aesgcm keys."""

    def __init__(self, reader: AESGCMTransformer) -> None:
        self.reader = reader

    def to_storage(self, key: str, data: bytes) -> bytes:
        return data

    def from_storage(self, key: str, data: bytes) -> bytes:
        return self.reader.from_storage(key, data)


def _transformer(providers: list[Any], where: str) -> Transformer:
    keys: list[tuple[str, bytes]] = []
    first = ""
    for p in providers:
        if not isinstance(p, dict) or len(p) != 1:
            raise EncryptionConfigError(f"{where}: each provider is a map with one of: aesgcm, identity")
        kind, body = next(iter(p.items()))
        first = first or kind
        if kind == "identity":
            continue
        if kind != "aesgcm":
            raise EncryptionConfigError(f"{where}: unsupported provider {kind!r} (supported: aesgcm, identity)")
        for k in (body or {}).get("keys") or []:
            try:
                keys.append((str(k["name"]), base64.b64decode(k["secret"], validate=True)))
            except (KeyError, TypeError, binascii.Error) as exc:
                raise EncryptionConfigError(f"{where}: aesgcm keys need a name and a base64 secret") from exc
    if not keys:
        return IDENTITY
    try:
        aes = AESGCMTransformer(keys)
    except ValueError as exc:
        raise EncryptionConfigError(f"{where}: {exc}") from exc
    return aes if first == "aesgcm" else _WritesPlain(aes)


def parse(config: dict[str, Any]) -> PrefixTransformers:
    rules: list[tuple[str, Transformer]] = []
    for i, entry in enumerate(config.get("resources") or []):
        where = f"resources[{i}]"
        transformer = _transformer(list(entry.get("providers") or []), where)
        for resource in entry.get("resources") or []:
            plural, _, group = str(resource).partition(".")
            rules.append((storage_root(group, plural), transformer))
    return PrefixTransformers(tuple(rules))


def default_config() -> dict[str, Any]:
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
            "resources": [{"resources": list(ENCRYPTED_BY_DEFAULT),
                           "providers": [{"aesgcm": {"keys": [{"name": "key1", "secret": secret}]}},
                                         {"identity": {}}]}]}


def _write(path: Path, config: dict[str, Any], *, new: bool) -> None:
    if new:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    else:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    if not new:
        os.replace(tmp, path)


def _cover_defaults(path: Path) -> None:
    """A generated configuration from an older release gains the resources encrypted by default now
    (its keys are kept; values written before stay readable and are encrypted when next written)."""
    try:
        data = yaml.safe_load(path.read_text())
        entry = data["resources"][0]
        listed = list(entry["resources"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return  # load() reports what is wrong with the file
    missing = [r for r in ENCRYPTED_BY_DEFAULT if r not in listed]
    if missing:
        entry["resources"] = listed + missing
        _write(path, data, new=False)


def load(path: Path | None, state_dir: Path) -> PrefixTransformers:
    """The configured transformers; without a file, one generated (mode 0600) in the state directory."""
    if path is None:
        path = state_dir / "encryption-config.yaml"
        if path.exists():
            _cover_defaults(path)
        else:
            _write(path, default_config(), new=True)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise EncryptionConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("kind") != "EncryptionConfiguration":
        raise EncryptionConfigError(f"{path}: not an EncryptionConfiguration")
    return parse(data)
