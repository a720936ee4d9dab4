"""Self-signed PKI for a standalone server: a serving CA and certificate, a client CA and an admin
client certificate, generated into the state directory when none are given (kept across restarts)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class PKI:
    serving_ca: Path
    serving: Pair
    client_ca: Pair
    admin: Pair
    controller_manager: Pair
    """The controller manager's client certificate (user system:kubellm:controller-manager, kubeadm's
    controller-manager.conf)."""


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _save(pair: Pair, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    _write(pair.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(pair.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)


def _load(pair: Pair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _ca(cn: str, pair: Pair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if pair.cert.exists() and pair.key.exists():
        return _load(pair)
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY * 10)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _save(pair, cert, key)
    return cert, key


def _leaf(pair: Pair, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], subject: x509.Name, *,
          server: bool, hosts: list[str] | None = None, client_too: bool = False) -> None:
    if pair.cert.exists() and pair.key.exists():
        return
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca[0].subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(_usages(server, client_too)), critical=False))
    if hosts:
        sans: list[x509.GeneralName] = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    _save(pair, builder.sign(ca[1], hashes.SHA256()), key)


def _usages(server: bool, client_too: bool) -> list[x509.ObjectIdentifier]:
    if not server:
        return [ExtendedKeyUsageOID.CLIENT_AUTH]
    return [ExtendedKeyUsageOID.SERVER_AUTH, *([ExtendedKeyUsageOID.CLIENT_AUTH] if client_too else [])]


def ensure_ca(cn: str, pair: Pair) -> None:
    """Create (or keep) a CA certificate and key at `pair`."""
    _ca(cn, pair)


def issue_client_certificate(ca: Pair, out: Pair, user: str, groups: tuple[str, ...] = ()) -> None:
    """A client certificate signed by `ca`: CN is the user, one O per group (as Kubernetes reads them)."""
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups),
                         x509.NameAttribute(NameOID.COMMON_NAME, user)])
    _leaf(out, _load(ca), subject, server=False)


def issue_serving_certificate(ca: Pair, out: Pair, cn: str, hosts: list[str], *, client_too: bool = False) -> None:
    """A serving certificate signed by `ca` for `hosts` (DNS names or IP addresses). `client_too` adds the
    client-auth usage, for servers that also dial themselves with it (etcd's gRPC gateway does)."""
    _leaf(out, _load(ca), _name(cn), server=True, hosts=hosts, client_too=client_too)


def ensure_pki(directory: Path, hosts: list[str]) -> PKI:
    """Create (or reuse) the certificates under `directory`."""
    d = directory
    pki = PKI(serving_ca=d / "serving-ca.crt", serving=Pair(d / "apiserver.crt", d / "apiserver.key"),
              client_ca=Pair(d / "client-ca.crt", d / "client-ca.key"), admin=Pair(d / "admin.crt", d / "admin.key"),
              controller_manager=Pair(d / "controller-manager.crt", d / "controller-manager.key"))
    serving_ca = _ca("kubellm-serving-ca", Pair(pki.serving_ca, d / "serving-ca.key"))
    _leaf(pki.serving, serving_ca, _name("kubellm-apiserver"), server=True, hosts=hosts)
    client_ca = _ca("kubellm-client-ca", pki.client_ca)
    _leaf(pki.admin, client_ca, _name("kubellm-admin", "system:masters"), server=False)
    _leaf(pki.controller_manager, client_ca, _name("system:kubellm:controller-manager"), server=False)
    return pki
