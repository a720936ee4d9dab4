"""Checks before serving: the mounted key and certificate files can be used, and the encryption keys can
decrypt what is already stored in etcd.

Several replicas on one etcd must share the encryption configuration, the client CA and the serving
certificate (files mounted from Secrets); a replica that cannot use them must not start half-working.
Each failure is a `StartupError` whose message is one line naming the flag to fix; `main` prints it
and exits 1, without a traceback.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509

from kubellm.apis.scheme import storage_root
from kubellm.app import encryption
from kubellm.app.options import Config
from kubellm.registry.storage import errors as serr
from kubellm.registry.storage.etcd import EtcdConfig, EtcdStorage
from kubellm.registry.storage.interface import ListOptions, Storage
from kubellm.registry.storage.value import IDENTITY, PrefixTransformers

UNDECRYPTABLE = ("failed authentication", "encrypted with a key this server does not have",
                 "no decryption key is configured")
"""What the value transformers say when a stored value cannot be decrypted with the configured keys."""


class StartupError(Exception):
    """The server cannot start as configured; the message (one line) names the flag to fix."""


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _ca_bundle(flag: str, path: str) -> None:
    try:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise StartupError(f"{flag}: cannot use {path}: {_one_line(exc)}") from None
    if not certs:
        raise StartupError(f"{flag}: {path} holds no PEM certificate")


def _key_pair(flag: str, cert: str, key: str) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"{flag}: cannot use {cert} with its key {key}: {_one_line(exc)}") from None


def check_files(cfg: Config) -> None:
    """The certificate and CA files given on the command line can be read and used."""
    if cfg.tls_cert_file and cfg.tls_private_key_file:
        _key_pair("--tls-cert-file/--tls-private-key-file", cfg.tls_cert_file, cfg.tls_private_key_file)
    for flag, path in (("--client-ca-file", cfg.client_ca_file),
                       ("--requestheader-client-ca-file", cfg.requestheader_client_ca_file),
                       ("--etcd-cafile", cfg.etcd_cafile)):
        if path:
            _ca_bundle(flag, path)
    if cfg.etcd_certfile and cfg.etcd_keyfile:
        _key_pair("--etcd-certfile/--etcd-keyfile", cfg.etcd_certfile, cfg.etcd_keyfile)


def load_encryption(cfg: Config) -> PrefixTransformers:
    """The transformers of `--encryption-provider-config` (generated in the state directory when empty)."""
    try:
        return encryption.load(cfg.encryption_provider_config, cfg.state_dir)
    except (encryption.EncryptionConfigError, OSError) as exc:
        where = cfg.encryption_provider_config or cfg.state_dir / "encryption-config.yaml"
        raise StartupError(f"--encryption-provider-config: {where}: {_one_line(exc)}") from None


def encrypted_roots(values: PrefixTransformers) -> list[str]:
    """Every key prefix whose values may be stored encrypted: the configured ones and the defaults."""
    roots = [prefix for prefix, transformer in values.rules if transformer is not IDENTITY]
    for group_resource in encryption.ENCRYPTED_BY_DEFAULT:
        plural, _, group = group_resource.partition(".")
        roots.append(storage_root(group, plural))
    return list(dict.fromkeys(roots))


async def check_decryption(storage: Storage, values: PrefixTransformers, cfg: Config) -> None:
    """Read one stored value of each encrypted resource: one the configured keys cannot decrypt (a replica
    started with another key than the others) stops the start with a StartupError."""
    for root in encrypted_roots(values):
        try:
            await storage.get_list(root, ListOptions(limit=1))
        except serr.Unavailable as exc:
            if not any(text in exc.message for text in UNDECRYPTABLE):
                raise
            where = cfg.encryption_provider_config or cfg.state_dir / "encryption-config.yaml"
            raise StartupError(f"--encryption-provider-config: the keys of {where} cannot decrypt what is stored "
                               f"in etcd under {root} ({exc.message}); every replica on this etcd needs the same "
                               "encryption configuration") from None


def etcd_config(cfg: Config, endpoints: tuple[str, ...], ca_file: str | None, cert_file: str | None,
                key_file: str | None) -> EtcdConfig:
    """The etcd client settings of the flags, for these endpoints and client files (the embedded etcd's or the
    flags')."""
    t = cfg.etcd_timeouts
    return EtcdConfig(endpoints=endpoints, prefix=cfg.etcd_prefix, ca_file=ca_file, cert_file=cert_file,
                      key_file=key_file, compaction_interval=cfg.etcd_compaction_interval, request_timeout=t.request,
                      list_timeout=t.list, dial_timeout=t.dial, healthcheck_timeout=t.healthcheck,
                      watch_progress_interval=t.watch_progress_interval)


async def check_stored(cfg: Config, config: EtcdConfig, values: PrefixTransformers) -> None:
    """Wait until etcd answers, then `check_decryption`: what the supervisor of workers checks once, before it
    starts them (each would otherwise fail alike, and say so once each)."""
    storage = EtcdStorage(config, values)
    try:
        await storage.wait_until_healthy()
        await check_decryption(storage, values, cfg)
    finally:
        await storage.close()
