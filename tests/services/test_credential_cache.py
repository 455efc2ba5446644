"""The memory of verified passwords: bounded, brief, and tied to the stored hash."""

from __future__ import annotations

from imagegate.services.credential_cache import CredentialCache


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_remembered_credential_is_verified_until_its_ttl() -> None:
    ticker = Ticker()
    cache = CredentialCache(ttl=60, clock=ticker)
    cache.remember("alice", "pw", "$hash1")
    ticker.now = 59.9
    assert cache.verified("alice", "pw", "$hash1")
    ticker.now = 60
    assert not cache.verified("alice", "pw", "$hash1")
    assert len(cache) == 0


def test_only_the_exact_user_secret_and_hash_match() -> None:
    cache = CredentialCache()
    cache.remember("alice", "pw", "$hash1")
    assert not cache.verified("alice", "pw2", "$hash1")
    assert not cache.verified("bob", "pw", "$hash1")
    assert not cache.verified("alice", "pw", "$hash2")  # the password changed
    assert not cache.verified("alice", "pw", "$hash1")  # and the stale entry is gone


def test_the_oldest_entries_make_room() -> None:
    one = CredentialCache()
    one.remember("a", "pw", "$h")
    cache = CredentialCache(budget_bytes=2 * one.nbytes)
    cache.remember("a", "pw", "$h")
    cache.remember("b", "pw", "$h")
    cache.remember("c", "pw", "$h")
    assert len(cache) == 2
    assert not cache.verified("a", "pw", "$h")
    assert cache.verified("b", "pw", "$h") and cache.verified("c", "pw", "$h")


def test_separate_caches_share_no_keys() -> None:
    first, second = CredentialCache(), CredentialCache()
    first.remember("alice", "pw", "$h")
    assert not second.verified("alice", "pw", "$h")
