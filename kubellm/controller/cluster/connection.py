"""How the controller reaches a member cluster: a client configuration from a Cluster read through its
`credentials` subresource, and when those credentials expire."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from kubellm.client.config import Config

USER_AGENT = "kubellm-controller-manager/cluster-controller"


class CredentialsError(ValueError):
    """The stored credentials cannot be used as they are (the message says why, for a person)."""


@dataclass(frozen=True)
class Expiry:
    """When the credentials stop working, and what they are (`client certificate`, `token`)."""

    what: str
    not_after: datetime


def _decoded(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CredentialsError(f"{field} is not valid base64") from exc


def client_config(cluster: dict[str, Any], *, timeout: float) -> Config:
    """A client configuration for the member: its endpoint, the CA bundle (or the system roots), and the token or
    client certificate the Cluster stores."""
    spec = cluster.get("spec") or {}
    creds = spec.get("credentials") or {}
    cert, key, token = creds.get("clientCertificate") or "", creds.get("clientKey") or "", creds.get("token") or ""
    if not token and not (cert and key):
        raise CredentialsError("spec.credentials has neither a token nor a client certificate and key")
    return Config(
        host=spec.get("apiEndpoint") or "",
        ca_data=_decoded(spec["caBundle"], "spec.caBundle") if spec.get("caBundle") else None,
        cert_data=_decoded(cert, "spec.credentials.clientCertificate") if cert and key else None,
        key_data=_decoded(key, "spec.credentials.clientKey") if cert and key else None,
        token=token or None,
        insecure_skip_tls_verify=bool(spec.get("insecureSkipTLSVerify")),
        user_agent=USER_AGENT,
        timeout=timeout,
        qps=50.0,
        burst=100,
    )


def fingerprint(cluster: dict[str, Any]) -> str:
    """A digest of where and how the controller connects: a new one means a new client."""
    spec = cluster.get("spec") or {}
    material = [spec.get("apiEndpoint"), spec.get("caBundle"), spec.get("insecureSkipTLSVerify"),
                spec.get("credentials")]
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def expiry(cluster: dict[str, Any]) -> Expiry | None:
    """When the client certificate (its notAfter) or a JWT token (its `exp` claim, read without verifying) expires;
    None when neither says."""
    creds = (cluster.get("spec") or {}).get("credentials") or {}
    cert = creds.get("clientCertificate") or ""
    if cert:
        try:
            parsed = x509.load_pem_x509_certificate(base64.b64decode(cert))
        except (ValueError, binascii.Error):
            return None
        return Expiry("client certificate", parsed.not_valid_after_utc)
    token = creds.get("token") or ""
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 16384:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if not isinstance(exp, int) or isinstance(exp, bool) or not 0 < exp < 253402300800:
        return None
    return Expiry("token", datetime.fromtimestamp(exp, UTC))
