"""Password hashing and policy (kubellm.service.passwords), with cheap argon2 parameters."""

from __future__ import annotations

import threading

import pytest

from kubellm.service.passwords import MAX_PASSWORD_LENGTH, PasswordHasher, PasswordPolicy


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(memory_cost=8, time_cost=1)


def test_round_trip_and_wrong_password(hasher: PasswordHasher) -> None:
    h = hasher.hash("correct horse battery staple")
    assert h.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hasher.verify("correct horse battery staple", h)
    assert not hasher.verify("correct horse battery stapl", h)
    assert not hasher.verify("Correct horse battery staple", h)
    assert not hasher.verify("", h)


def test_salted(hasher: PasswordHasher) -> None:
    assert hasher.hash("same password") != hasher.hash("same password")


def test_default_profile_is_argon2id_owasp() -> None:
    h = PasswordHasher().hash("a password of some length")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_nfkc_normalization(hasher: PasswordHasher) -> None:
    # U+FB01 LATIN SMALL LIGATURE FI is "fi" under NFKC; a composed and a decomposed é are the same.
    assert hasher.verify("\ufb01sh and chips!", hasher.hash("fish and chips!"))
    assert hasher.verify("caf\u00e9 au lait 1234", hasher.hash("cafe\u0301 au lait 1234"))


def test_malformed_hashes_do_not_verify(hasher: PasswordHasher) -> None:
    for bad in ["", "garbage", "$2b$12$abcdefghijklmnopqrstuu", "$argon2id$v=19$m=8,t=1,p=1$AAAA"]:
        assert not hasher.verify("anything", bad)
        assert hasher.needs_rehash(bad)


def test_length_limit(hasher: PasswordHasher) -> None:
    h = hasher.hash("x" * MAX_PASSWORD_LENGTH)
    assert hasher.verify("x" * MAX_PASSWORD_LENGTH, h)
    assert not hasher.verify("x" * (MAX_PASSWORD_LENGTH + 1), h)
    with pytest.raises(ValueError, match="at most 4096"):
        hasher.hash("x" * (MAX_PASSWORD_LENGTH + 1))


def test_needs_rehash(hasher: PasswordHasher) -> None:
    h = hasher.hash("some password")
    assert not hasher.needs_rehash(h)
    stronger = PasswordHasher(memory_cost=16, time_cost=1)
    assert stronger.needs_rehash(h)
    assert not stronger.needs_rehash(stronger.hash("some password"))
    assert PasswordHasher(memory_cost=8, time_cost=2).needs_rehash(h)
    # an argon2i hash verifies but is not what we make
    assert hasher.needs_rehash("$argon2i$v=19$m=8,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        PasswordHasher(memory_cost=8, parallelism=2)
    with pytest.raises(ValueError):
        PasswordHasher(time_cost=0)


def test_verify_unknown_verifies_against_one_dummy_hash(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    real = hasher.verify

    def spy(password: str, hash: str) -> bool:
        calls.append((password, hash))
        return real(password, hash)

    monkeypatch.setattr(hasher, "verify", spy)
    assert hasher.verify_unknown("guess one") is False
    assert hasher.verify_unknown("guess two") is False
    assert [c[0] for c in calls] == ["guess one", "guess two"]
    dummy = calls[0][1]
    assert calls[1][1] == dummy  # computed once
    assert dummy.startswith("$argon2id$v=19$m=8,t=1,p=1$")  # same cost as a real user's hash
    assert not hasher.needs_rehash(dummy)


def test_verify_unknown_is_false_even_if_the_password_matches(hasher: PasswordHasher) -> None:
    hasher._dummy_hash = hasher.hash("the dummy password")
    assert hasher.verify("the dummy password", hasher._dummy_hash)
    assert hasher.verify_unknown("the dummy password") is False


async def test_async_variants_run_off_the_event_loop(hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    real_hash, real_verify = hasher.hash, hasher.verify

    def hash_spy(password: str) -> str:
        threads.append(threading.get_ident())
        return real_hash(password)

    def verify_spy(password: str, hash: str) -> bool:
        threads.append(threading.get_ident())
        return real_verify(password, hash)

    monkeypatch.setattr(hasher, "hash", hash_spy)
    monkeypatch.setattr(hasher, "verify", verify_spy)
    h = await hasher.hash_async("an async password")
    assert h.startswith("$argon2id$")
    assert await hasher.verify_async("an async password", h) is True
    assert await hasher.verify_async("another password", h) is False
    assert await hasher.verify_unknown_async("an async password") is False
    assert len(threads) >= 4
    assert threading.get_ident() not in threads


def test_policy_messages() -> None:
    policy = PasswordPolicy()
    assert policy.check("a fine long passphrase", "alice") == []
    assert policy.check("short", "alice") == ["must be at least 12 characters long"]
    assert policy.check("x" * 1025, "alice") == ["must be at most 1024 characters long"]  # what /login accepts
    assert policy.check("AliceInWonderland", "alice") == ["must not contain the username"]
    assert policy.check("my.alice.password", "ALICE") == ["must not contain the username"]
    assert policy.check("Administrator", "administrator") == ["must not be the same as the username"]
    assert policy.check("bob", "bob") == ["must be at least 12 characters long", "must not be the same as the username"]
    assert policy.check("", "") == ["must be at least 12 characters long"]
    # a name under 3 characters only forbids the exact name, not its letters
    assert policy.check("a long password", "a") == []


def test_policy_limits() -> None:
    policy = PasswordPolicy(min_length=8, max_length=16)
    assert policy.check("12345678") == []
    assert policy.check("1234567") == ["must be at least 8 characters long"]
    assert policy.check("x" * 17) == ["must be at most 16 characters long"]
    # length is measured after NFKC normalization: U+FB03 is "ffi"
    assert policy.check("\ufb03\ufb03\ufb03") == []
    with pytest.raises(ValueError):
        PasswordPolicy(min_length=0)
    with pytest.raises(ValueError):
        PasswordPolicy(max_length=MAX_PASSWORD_LENGTH + 1)
