"""KubeLLM bearer tokens (kubellm.service.tokens).

Forged tokens are built by hand (base64url parts, HMAC from the standard library), so the tests do not
depend on the library under test to make them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from kubellm.service.tokens import (
    Claims,
    InMemoryRevocations,
    InvalidToken,
    KeyRing,
    SigningKey,
    TokenIssuer,
)

NOW = 1_700_000_000
TTL = 600
LEEWAY = 30
GRACE = 3600
ISS = "https://kubellm.example"
AUD = "kubellm"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forge(header: dict[str, Any], payload: dict[str, Any], secret: bytes, digest: Any = hashlib.sha256) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    sig = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(sig)}"


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    h, p, _ = token.split(".")
    return json.loads(unb64(h)), json.loads(unb64(p))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def revocations(clock: Clock) -> InMemoryRevocations:
    return InMemoryRevocations(clock=clock)


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.generate(NOW, verify_grace=GRACE)


@pytest.fixture
def issuer(ring: KeyRing, revocations: InMemoryRevocations) -> TokenIssuer:
    return TokenIssuer(ring, ISS, AUD, TTL, leeway=LEEWAY, revocations=revocations)


def good_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "uid": "uid-alice",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + TTL,
        "jti": "jti-1",
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def fails(issuer: TokenIssuer, token: str, reason: str, now: float = NOW + 1, **kw: Any) -> None:
    with pytest.raises(InvalidToken) as info:
        issuer.verify(token, now, **kw)
    assert info.value.reason == reason
    assert str(info.value) == reason


def test_valid_token(issuer: TokenIssuer, ring: KeyRing) -> None:
    token, claims = issuer.issue("alice", "uid-alice", NOW)
    header, payload = parts(token)
    assert header == {"alg": "HS256", "kid": ring.active.kid, "typ": "JWT"}
    assert payload == good_payload(jti=claims.jti)
    assert len(claims.jti) >= 16
    assert issuer.verify(token, NOW) == claims
    assert claims == Claims(ISS, (AUD,), "alice", "uid-alice", NOW, NOW, NOW + TTL, claims.jti)
    assert issuer.issue("alice", "uid-alice", NOW)[1].jti != claims.jti


def test_hand_signed_token_verifies(issuer: TokenIssuer, ring: KeyRing) -> None:
    # the control for the forgeries below: the same construction with the right key and claims passes
    token = forge({"alg": "HS256", "kid": ring.active.kid}, good_payload(aud=["other", AUD]), ring.active.secret)
    claims = issuer.verify(token, NOW + 1)
    assert claims.sub == "alice" and claims.aud == ("other", AUD) and claims.uid == "uid-alice"


def test_default_now(issuer: TokenIssuer) -> None:
    token, claims = issuer.issue("alice", "uid-alice")
    assert issuer.verify(token) == claims


def test_expiry_with_leeway(issuer: TokenIssuer) -> None:
    token, claims = issuer.issue("alice", "uid-alice", NOW)
    assert issuer.verify(token, claims.exp + LEEWAY - 1) == claims
    fails(issuer, token, "expired", now=claims.exp + LEEWAY)
    fails(issuer, token, "expired", now=claims.exp + 10_000)


def test_not_yet_valid(issuer: TokenIssuer, ring: KeyRing) -> None:
    token, claims = issuer.issue("alice", "uid-alice", NOW)
    assert issuer.verify(token, NOW - LEEWAY) == claims
    fails(issuer, token, "not yet valid", now=NOW - LEEWAY - 1)
    later = forge({"alg": "HS256", "kid": ring.active.kid}, good_payload(nbf=NOW + 300), ring.active.secret)
    fails(issuer, later, "not yet valid", now=NOW + 1)
    assert issuer.verify(later, NOW + 300).sub == "alice"
    future_iat = forge({"alg": "HS256", "kid": ring.active.kid}, good_payload(iat=NOW + 300), ring.active.secret)
    fails(issuer, future_iat, "issued in the future", now=NOW + 1)


def test_tampered_payload(issuer: TokenIssuer) -> None:
    token, _ = issuer.issue("alice", "uid-alice", NOW)
    h, p, s = token.split(".")
    payload = json.loads(unb64(p))
    payload["sub"] = "admin"
    fails(issuer, f"{h}.{b64(json.dumps(payload).encode())}.{s}", "bad signature")
    payload = json.loads(unb64(p))
    payload["uid"] = "uid-of-someone-else"
    fails(issuer, f"{h}.{b64(json.dumps(payload).encode())}.{s}", "bad signature")


def test_tampered_signature(issuer: TokenIssuer) -> None:
    token, _ = issuer.issue("alice", "uid-alice", NOW)
    h, p, s = token.split(".")
    sig = bytearray(unb64(s))
    sig[0] ^= 1
    fails(issuer, f"{h}.{p}.{b64(bytes(sig))}", "bad signature")
    fails(issuer, f"{h}.{p}.", "bad signature")
    fails(issuer, f"{h}.{p}.{s[:-4]}", "bad signature")


def test_alg_none(issuer: TokenIssuer, ring: KeyRing) -> None:
    payload = b64(json.dumps(good_payload()).encode())
    for alg in ("none", "None", "NONE"):
        header = b64(json.dumps({"alg": alg, "kid": ring.active.kid, "typ": "JWT"}).encode())
        fails(issuer, f"{header}.{payload}.", "algorithm not allowed")
    header = b64(json.dumps({"kid": ring.active.kid, "typ": "JWT"}).encode())
    fails(issuer, f"{header}.{payload}.", "algorithm not allowed")


def test_algorithm_confusion(issuer: TokenIssuer, ring: KeyRing) -> None:
    # the right secret with another HMAC: the key only verifies its own algorithm
    token = forge({"alg": "HS512", "kid": ring.active.kid}, good_payload(), ring.active.secret, hashlib.sha512)
    fails(issuer, token, "algorithm not allowed")
    token = forge({"alg": "RS256", "kid": ring.active.kid}, good_payload(), ring.active.secret)
    fails(issuer, token, "algorithm not allowed")


def test_signed_by_another_key(issuer: TokenIssuer, ring: KeyRing) -> None:
    other = KeyRing.generate(NOW, verify_grace=GRACE)
    token, _ = TokenIssuer(other, ISS, AUD, TTL).issue("alice", "uid-alice", NOW)
    fails(issuer, token, "unknown signing key")
    # another secret under our kid
    forged = forge({"alg": "HS256", "kid": ring.active.kid}, good_payload(), other.active.secret)
    fails(issuer, forged, "bad signature")


def test_unknown_or_missing_kid(issuer: TokenIssuer, ring: KeyRing) -> None:
    secret = ring.active.secret
    fails(issuer, forge({"alg": "HS256", "kid": "no-such-key"}, good_payload(), secret), "unknown signing key")
    fails(issuer, forge({"alg": "HS256"}, good_payload(), secret), "unknown signing key")
    fails(issuer, forge({"alg": "HS256", "kid": 7}, good_payload(), secret), "unknown signing key")


def test_wrong_issuer_and_audience(issuer: TokenIssuer, ring: KeyRing) -> None:
    header = {"alg": "HS256", "kid": ring.active.kid}
    secret = ring.active.secret
    fails(issuer, forge(header, good_payload(iss="https://evil.example"), secret), "wrong issuer")
    fails(issuer, forge(header, good_payload(aud="someone-else"), secret), "wrong audience")
    fails(issuer, forge(header, good_payload(aud=["a", "b"]), secret), "wrong audience")
    token, _ = issuer.issue("alice", "uid-alice", NOW)
    fails(TokenIssuer(ring, "https://other.example", AUD, TTL, leeway=LEEWAY), token, "wrong issuer")
    fails(TokenIssuer(ring, ISS, "other-audience", TTL, leeway=LEEWAY), token, "wrong audience")


def test_malformed_claims(issuer: TokenIssuer, ring: KeyRing) -> None:
    header = {"alg": "HS256", "kid": ring.active.kid}
    secret = ring.active.secret
    for bad in [
        good_payload(sub=None),
        good_payload(sub=""),
        good_payload(exp=None),
        good_payload(jti=None),
        good_payload(exp="soon"),
        good_payload(exp=True),
        good_payload(uid=None),
        good_payload(uid=""),
        good_payload(uid=7),
        good_payload(aud=None),
        good_payload(aud=[]),
        good_payload(iss=None),
    ]:
        fails(issuer, forge(header, bad, secret), "malformed claims")


def test_malformed_tokens(issuer: TokenIssuer) -> None:
    token, _ = issuer.issue("alice", "uid-alice", NOW)
    for bad in ["", "abc", "a.b", "a.b.c", "a.b.c.d", "..", token + ".x", "x" * 9000, f"{b64(b'[1]')}.e30.x"]:
        fails(issuer, bad, "malformed token")


def test_revoked(issuer: TokenIssuer, revocations: InMemoryRevocations, clock: Clock) -> None:
    token, claims = issuer.issue("alice", "uid-alice", NOW)
    other, _ = issuer.issue("alice", "uid-alice", NOW)
    revocations.revoke(claims.jti, issuer.accepted_until(claims))
    fails(issuer, token, "revoked")
    assert issuer.verify(other, NOW + 1).sub == "alice"
    # the entry lasts exactly as long as the token could otherwise verify
    assert issuer.accepted_until(claims) == claims.exp + LEEWAY
    clock.now = claims.exp + LEEWAY - 1
    assert revocations.is_revoked(claims.jti)
    clock.now = claims.exp + LEEWAY
    assert not revocations.is_revoked(claims.jti)
    assert len(revocations) == 0


def test_revocation_prune(clock: Clock) -> None:
    revocations = InMemoryRevocations(clock=clock)
    revocations.revoke("a", NOW + 10)
    revocations.revoke("b", NOW + 100)
    revocations.revoke("b", NOW + 50)  # never shortened
    clock.now = NOW + 60
    revocations.prune()
    assert len(revocations) == 1
    assert revocations.is_revoked("b") and not revocations.is_revoked("a")


def test_disabled_user(issuer: TokenIssuer) -> None:
    token, _ = issuer.issue("alice", "uid-alice", NOW)
    asked: list[tuple[str, str]] = []

    def is_active(claims: Claims) -> bool:
        asked.append((claims.sub, claims.uid))
        return claims.sub != "alice"

    fails(issuer, token, "user not active", is_active=is_active)
    assert asked == [("alice", "uid-alice")]
    assert issuer.verify(token, NOW + 1, is_active=lambda _: True).sub == "alice"


def test_rotation_grace(issuer: TokenIssuer, ring: KeyRing) -> None:
    old_key = ring.active
    token, claims = issuer.issue("alice", "uid-alice", NOW)
    new_key = ring.rotate(NOW + 100)
    assert ring.active is new_key and new_key.kid != old_key.kid and new_key.secret != old_key.secret
    retired = ring.get(old_key.kid, NOW + 100)
    assert retired is not None and retired.retired_at == NOW + 100 and retired.expires_at == NOW + 100 + GRACE
    # during the grace period the old token verifies, new tokens are signed with the new key
    assert issuer.verify(token, NOW + 200) == claims
    new_token, _ = issuer.issue("alice", "uid-alice", NOW + 200)
    assert parts(new_token)[0]["kid"] == new_key.kid
    assert issuer.verify(new_token, NOW + 201).sub == "alice"
    # once the old key expires, its tokens fail on the key (not just on their own expiry)
    long_lived = forge({"alg": "HS256", "kid": old_key.kid}, good_payload(exp=NOW + 10 * GRACE), old_key.secret)
    assert issuer.verify(long_lived, NOW + 100 + GRACE - 1).sub == "alice"
    fails(issuer, long_lived, "unknown signing key", now=NOW + 100 + GRACE)
    fails(issuer, token, "unknown signing key", now=NOW + 100 + GRACE)
    assert ring.get(old_key.kid, NOW + 100 + GRACE) is None
    ring.prune(NOW + 100 + GRACE)
    assert [k.kid for k in ring.keys] == [new_key.kid]


def test_rotation_drops_expired_keys(ring: KeyRing) -> None:
    first = ring.active.kid
    ring.rotate(NOW + 10)
    second = ring.active.kid
    ring.rotate(NOW + 20)
    assert [k.kid for k in ring.keys][1:] == [second, first]
    ring.rotate(NOW + 10 + GRACE)
    assert first not in [k.kid for k in ring.keys]
    assert len(ring.keys) == 3


def test_keyring_dict_round_trip(issuer: TokenIssuer, ring: KeyRing) -> None:
    old_token, old_claims = issuer.issue("alice", "uid-alice", NOW)
    ring.rotate(NOW + 100)
    token, claims = issuer.issue("bob", "uid-bob", NOW + 100)
    data = json.loads(json.dumps(ring.to_dict()))
    restored = KeyRing.from_dict(data)
    assert restored.to_dict() == ring.to_dict()
    assert [(k.kid, k.secret, k.retired_at, k.expires_at) for k in restored.keys] == [
        (k.kid, k.secret, k.retired_at, k.expires_at) for k in ring.keys
    ]
    assert restored.verify_grace == GRACE
    other = TokenIssuer(restored, ISS, AUD, TTL, leeway=LEEWAY)
    assert other.verify(token, NOW + 101) == claims
    assert other.verify(old_token, NOW + 101) == old_claims
    assert other.issue("carol", "uid-carol", NOW + 101)[0].split(".")[0] == token.split(".")[0]  # same kid and alg


def test_keyring_from_bad_dict(ring: KeyRing) -> None:
    data = ring.to_dict()
    with pytest.raises(ValueError):
        KeyRing.from_dict({**data, "version": 2})
    with pytest.raises(ValueError):
        KeyRing.from_dict({k: v for k, v in data.items() if k != "active"})
    with pytest.raises(ValueError, match="at least 32 bytes"):
        KeyRing.from_dict({**data, "active": {**data["active"], "secret": b64(b"short")}})
    with pytest.raises(ValueError, match="unsupported"):
        KeyRing.from_dict({**data, "active": {**data["active"], "alg": "none"}})


def test_signing_key_hides_secret() -> None:
    key = SigningKey.generate(NOW)
    assert len(key.secret) == 32 and key.algorithm == "HS256"
    assert b64(key.secret) not in repr(key) and repr(key.secret) not in repr(key)
    assert len(SigningKey.generate(NOW, "HS512").secret) == 64
    with pytest.raises(ValueError):
        SigningKey.generate(NOW, "none")


def test_issuer_needs_grace_covering_ttl() -> None:
    with pytest.raises(ValueError, match="verify_grace"):
        TokenIssuer(KeyRing.generate(NOW, verify_grace=600), ISS, AUD, ttl=600)
    with pytest.raises(ValueError):
        TokenIssuer(KeyRing.generate(NOW), ISS, AUD, ttl=0)
    with pytest.raises(ValueError):
        TokenIssuer(KeyRing.generate(NOW), ISS, AUD, ttl=60).issue("", "uid-x", NOW)
