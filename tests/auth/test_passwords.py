"""Password hashing and personal access token secrets."""

from __future__ import annotations

import hashlib

import argon2

from imagegate.auth.passwords import (
    ACCESS_TOKEN_PREFIX,
    PasswordHasher,
    looks_like_access_token,
    new_access_token,
    token_digest,
)


def test_a_password_verifies_against_its_hash_and_nothing_else() -> None:
    hasher = PasswordHasher.fast_for_tests()
    stored = hasher.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert hasher.verify(stored, "correct horse").ok
    assert not hasher.verify(stored, "correct horse ").ok
    assert not hasher.verify(stored, "").ok


def test_the_same_password_hashes_differently_each_time() -> None:
    hasher = PasswordHasher.fast_for_tests()
    assert hasher.hash("pw") != hasher.hash("pw")


def test_a_malformed_stored_hash_is_a_mismatch_not_a_crash() -> None:
    assert not PasswordHasher.fast_for_tests().verify("not-a-hash", "pw").ok


def test_a_hash_with_older_parameters_asks_to_be_rehashed() -> None:
    old = PasswordHasher.fast_for_tests().hash("pw")
    current = PasswordHasher(argon2.PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    check = current.verify(old, "pw")
    assert check.ok and check.needs_rehash
    assert not current.verify(current.hash("pw"), "pw").needs_rehash


def test_access_tokens_are_random_prefixed_and_stored_as_sha256() -> None:
    first, second = new_access_token(), new_access_token()
    assert first.secret != second.secret
    assert first.secret.startswith(ACCESS_TOKEN_PREFIX)
    assert len(first.secret) >= len(ACCESS_TOKEN_PREFIX) + 43  # 32 random bytes
    assert first.digest == hashlib.sha256(first.secret.encode()).hexdigest()
    assert first.digest == token_digest(first.secret)


def test_the_secret_stays_out_of_repr() -> None:
    token = new_access_token()
    assert token.secret not in repr(token)
    assert token.digest in repr(token)


def test_token_shape() -> None:
    assert looks_like_access_token(new_access_token().secret)
    assert not looks_like_access_token(ACCESS_TOKEN_PREFIX)
    assert not looks_like_access_token("hunter2")
