"""The memory of credentials that signed in: bounded, and forgotten at the next change."""

from __future__ import annotations

from imagegate.core.authorization import Reach
from imagegate.db.generation import MemorySignal
from imagegate.services.credential_cache import CredentialCache, Verified
from imagegate.services.credentials import SignedIn

ALICE = Verified(SignedIn("alice", Reach.WRITE, password_version=1))


def remembered(cache: CredentialCache, name: str, secret: str) -> Verified | None:
    return cache.lookup("password", name, secret)[0]


def test_a_remembered_credential_holds_until_the_next_change() -> None:
    signal = MemorySignal()
    cache = CredentialCache(signal)
    _, generation = cache.lookup("password", "alice", "pw")
    cache.remember("password", "alice", "pw", ALICE, generation)
    assert remembered(cache, "alice", "pw") == ALICE
    signal.publish(1)  # anything changed: a password, a token, a membership
    assert remembered(cache, "alice", "pw") is None
    assert len(cache) == 0


def test_a_check_that_raced_a_change_is_not_remembered() -> None:
    signal = MemorySignal()
    cache = CredentialCache(signal)
    _, generation = cache.lookup("password", "alice", "pw")  # before reading the database
    signal.publish(1)  # a change commits while the check runs
    assert cache.lookup("password", "alice", "old")[0] is None  # this process sees it
    cache.remember("password", "alice", "pw", ALICE, generation)
    assert remembered(cache, "alice", "pw") is None


def test_only_the_exact_kind_user_and_secret_match() -> None:
    cache = CredentialCache(MemorySignal())
    cache.remember("password", "alice", "pw", ALICE, 0)
    assert remembered(cache, "alice", "pw2") is None
    assert remembered(cache, "bob", "pw") is None
    assert cache.lookup("token", "alice", "pw")[0] is None


def test_the_oldest_entries_make_room() -> None:
    one = CredentialCache(MemorySignal())
    one.remember("password", "a", "pw", ALICE, 0)
    cache = CredentialCache(MemorySignal(), budget_bytes=2 * one.nbytes)
    for name in ("a", "b", "c"):
        cache.remember("password", name, "pw", ALICE, 0)
    assert len(cache) == 2
    assert remembered(cache, "a", "pw") is None
    assert remembered(cache, "b", "pw") and remembered(cache, "c", "pw")


def test_separate_caches_share_no_keys() -> None:
    first, second = CredentialCache(MemorySignal()), CredentialCache(MemorySignal())
    first.remember("password", "alice", "pw", ALICE, 0)
    assert remembered(second, "alice", "pw") is None
