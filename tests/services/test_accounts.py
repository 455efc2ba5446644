"""Users, access tokens and signing in with a password or a token."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from imagegate.auth.passwords import PasswordCheck, PasswordHasher
from imagegate.db import Database
from imagegate.db.models import AccessToken
from imagegate.services import (
    AccountService,
    AlreadyExists,
    InvalidInput,
    NotFound,
    Services,
    TooManyAttempts,
)
from imagegate.services.throttle import ADDRESS, USERNAME


class CountingHasher(PasswordHasher):
    """Cheap argon2 that counts verifications, to see what the cache saves."""

    def __init__(self) -> None:
        super().__init__(PasswordHasher.fast_for_tests()._hasher)
        self.verifications = 0

    def verify(self, stored_hash: str, password: str) -> PasswordCheck:
        self.verifications += 1
        return super().verify(stored_hash, password)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(database: Database, hasher: CountingHasher, clock: Clock) -> AccountService:
    return AccountService(database, hasher=hasher, clock=clock)


async def test_create_and_get_a_user(accounts: AccountService, clock: Clock) -> None:
    created = await accounts.create_user("alice", "alice@example.com", "pw")
    assert created.name == "alice" and created.created_at == clock.now
    assert await accounts.get_user("alice") == created


@pytest.mark.parametrize(
    ("name", "email", "password", "message"),
    [
        ("Alice", None, "pw", "invalid user name"),
        ("a", None, "pw", "invalid user name"),
        ("library", None, "pw", "reserved"),
        ("alice", "not-an-email", "pw", "not an email address"),
        ("alice", "a b@example.com", "pw", "not an email address"),
        ("alice", None, "", "must not be empty"),
    ],
)
async def test_invalid_users_are_refused(
    accounts: AccountService, name: str, email: str | None, password: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        await accounts.create_user(name, email, password)
    with pytest.raises(NotFound):
        await accounts.get_user("alice")


async def test_a_name_is_taken_once_by_a_user_or_an_organization(services: Services) -> None:
    await services.accounts.create_user("alice", None, "pw")
    with pytest.raises(AlreadyExists, match="already taken by a user"):
        await services.accounts.create_user("alice", None, "other")
    await services.orgs.add_org("acme", "alice")
    with pytest.raises(AlreadyExists, match="already taken by an organization"):
        await services.accounts.create_user("acme", None, "pw")


async def test_password_sign_in(accounts: AccountService) -> None:
    await accounts.create_user("alice", None, "s3cret")
    assert await accounts.authenticate("alice", "s3cret") == "alice"
    assert await accounts.authenticate("Alice", "s3cret") == "alice"  # canonical name
    assert await accounts.authenticate("alice", "wrong") is None
    assert await accounts.authenticate("nobody", "s3cret") is None
    assert await accounts.authenticate("alice", "") is None
    assert await accounts.authenticate("", "s3cret") is None


async def test_a_verified_password_is_not_hashed_again(
    accounts: AccountService, hasher: CountingHasher
) -> None:
    await accounts.create_user("alice", None, "s3cret")
    for _ in range(5):
        assert await accounts.authenticate("alice", "s3cret") == "alice"
    assert hasher.verifications == 1


async def test_wrong_passwords_always_pay_the_hash(
    accounts: AccountService, hasher: CountingHasher
) -> None:
    await accounts.create_user("alice", None, "s3cret")
    for _ in range(3):
        assert await accounts.authenticate("alice", "wrong") is None
    assert hasher.verifications == 3


async def test_an_unknown_user_costs_what_a_wrong_password_costs(
    accounts: AccountService, hasher: CountingHasher
) -> None:
    await accounts.create_user("alice", None, "s3cret")
    token_shaped = "igt_pat_" + "x" * 43
    for n, name in enumerate(["alice", "nobody", "alice", "nobody"]):
        secret = "wrong" if n < 2 else token_shaped
        assert await accounts.authenticate(name, secret) is None
        assert hasher.verifications == n + 1  # an unknown name is verified against a decoy


@pytest.mark.parametrize("name", ["alice", "nobody"])
async def test_text_no_password_can_hold_is_refused_alike_for_every_name(
    accounts: AccountService, hasher: CountingHasher, name: str
) -> None:
    await accounts.create_user("alice", None, "s3cret")
    assert await accounts.authenticate(name, "pass\ud800word") is None  # a lone surrogate
    assert await accounts.authenticate(name + "\udc00", "s3cret") is None
    assert await accounts.authenticate(name + "\x00", "s3cret") is None  # PostgreSQL takes no NUL
    assert await accounts.authenticate(name, "s3cret\x00") is None
    assert await accounts.authenticate(name, "igt_pat_\ud800" + "x" * 42) is None
    assert hasher.verifications == 0  # refused before any lookup: nothing tells them apart


async def test_identical_attempts_in_flight_are_checked_once(
    accounts: AccountService, hasher: CountingHasher
) -> None:
    await accounts.create_user("alice", None, "s3cret")
    for secret, expected, verifications in [("s3cret", "alice", 1), ("wrong", None, 2)]:
        results = await asyncio.gather(
            *(accounts.authenticate("alice", secret, client="10.0.0.1") for _ in range(20))
        )
        assert results == [expected] * 20
        assert hasher.verifications == verifications


async def test_failed_attempts_are_limited_and_refused_ones_are_not_checked(
    accounts: AccountService, hasher: CountingHasher
) -> None:
    await accounts.create_user("alice", None, "s3cret")
    _, token = await accounts.create_token("alice", "ci")
    assert await accounts.authenticate("alice", "s3cret", client="192.0.2.1") == "alice"
    for n in range(USERNAME.free):
        assert await accounts.authenticate("alice", f"guess{n}", client="10.0.0.1") is None
    with pytest.raises(TooManyAttempts) as refused:
        await accounts.authenticate("alice", "s3cret", client="10.0.0.1")
    assert refused.value.retry_after == 1
    assert refused.value.message == (
        "too many failed sign-in attempts for this account from addresses it has not "
        "signed in from; try again in 1 second"
    )
    assert hasher.verifications == 1 + USERNAME.free  # the refused attempt cost nothing
    # Where alice signed in before she still can, and her access token works anywhere.
    assert await accounts.authenticate("alice", "s3cret", client="192.0.2.1") == "alice"
    assert await accounts.authenticate("alice", token, client="10.0.0.1") == "alice"


async def test_a_name_or_secret_longer_than_any_is_refused_without_counting(
    accounts: AccountService, hasher: CountingHasher
) -> None:
    """Refused before the throttle, which so keeps nothing of them: no password, name or
    token is longer than 1,024 characters, so none of these could be right."""
    await accounts.create_user("alice", None, "s3cret")
    for n in range(ADDRESS.free + 1):
        assert await accounts.authenticate("alice", f"{n}" * 1025, client="10.0.0.1") is None
        assert await accounts.authenticate(f"{n}" * 1025, "s3cret", client="10.0.0.1") is None
    assert await accounts.authenticate("alice", "s3cret", client="10.0.0.1") == "alice"
    assert hasher.verifications == 1


async def test_a_revoked_token_is_refused_without_counting_as_a_guess(
    accounts: AccountService, hasher: CountingHasher
) -> None:
    """A CI job with a revoked or expired token must not lock its address out."""
    await accounts.create_user("bob", None, "pw")
    info, token = await accounts.create_token("bob", "ci")
    await accounts.update_token("bob", info.uuid, active=False)
    for _ in range(USERNAME.free + 3):
        assert await accounts.authenticate("bob", token, client="10.0.0.1") is None
    assert await accounts.authenticate("bob", "pw", client="10.0.0.1") == "bob"
    assert hasher.verifications == 1  # nor is a revoked token tried as a password


async def test_changing_the_password_invalidates_cached_sign_ins(
    database: Database, hasher: CountingHasher
) -> None:
    """Two processes: the gateway caches a sign-in; an admin command changes the password."""
    gateway = AccountService(database, hasher=hasher)
    admin = AccountService(database, hasher=hasher)
    await admin.create_user("alice", None, "old")
    assert await gateway.authenticate("alice", "old") == "alice"
    await admin.set_password("alice", "new")
    assert await gateway.authenticate("alice", "old") is None
    assert await gateway.authenticate("alice", "new") == "alice"
    with pytest.raises(NotFound):
        await admin.set_password("nobody", "pw")


async def test_access_token_sign_in_needs_no_password_hash(
    accounts: AccountService, hasher: CountingHasher
) -> None:
    await accounts.create_user("bob", None, "pw")
    info, secret = await accounts.create_token("bob", "laptop")
    assert info.username == "bob" and info.description == "laptop" and info.active
    assert info.expires_at is None
    assert await accounts.authenticate("bob", secret) == "bob"
    assert hasher.verifications == 0
    assert await accounts.authenticate("bob", secret + "x") is None


async def test_a_token_only_signs_in_its_own_user(accounts: AccountService) -> None:
    await accounts.create_user("bob", None, "pw")
    await accounts.create_user("eve", None, "pw")
    _, secret = await accounts.create_token("bob")
    assert await accounts.authenticate("eve", secret) is None


async def test_only_the_digest_of_a_token_is_stored(
    accounts: AccountService, database: Database
) -> None:
    await accounts.create_user("bob", None, "pw")
    _, secret = await accounts.create_token("bob")
    async with database.read() as conn:
        stored = list(await conn.scalars(select(AccessToken.token_hash)))
    assert len(stored) == 1 and secret not in stored[0] and len(stored[0]) == 64


async def test_expired_tokens_are_refused(accounts: AccountService, clock: Clock) -> None:
    await accounts.create_user("bob", None, "pw")
    info, secret = await accounts.create_token("bob", expires_in_days=2)
    assert info.expires_at == clock.now + dt.timedelta(days=2)
    clock.advance(days=2, seconds=-1)
    assert await accounts.authenticate("bob", secret) == "bob"
    assert not info.expired(clock.now)
    clock.advance(seconds=1)
    assert await accounts.authenticate("bob", secret) is None
    [listed] = await accounts.list_tokens("bob")
    assert listed.active and listed.expired(clock.now)


async def test_deactivated_tokens_are_refused(accounts: AccountService) -> None:
    await accounts.create_user("bob", None, "pw")
    info, secret = await accounts.create_token("bob")
    await accounts.deactivate_token("bob", info.id)
    assert await accounts.authenticate("bob", secret) is None
    assert [t.active for t in await accounts.list_tokens("bob")] == [False]
    with pytest.raises(NotFound):
        await accounts.deactivate_token("bob", info.id + 1000)


async def test_last_use_is_recorded_now_and_then(accounts: AccountService, clock: Clock) -> None:
    await accounts.create_user("bob", None, "pw")
    _, secret = await accounts.create_token("bob")
    first_use = clock.now
    await accounts.authenticate("bob", secret)
    clock.advance(minutes=1)
    await accounts.authenticate("bob", secret)  # within the interval: not written again
    [token] = await accounts.list_tokens("bob")
    assert token.last_used_at == first_use
    clock.advance(minutes=5)
    await accounts.authenticate("bob", secret)
    [token] = await accounts.list_tokens("bob")
    assert token.last_used_at == clock.now


@pytest.mark.parametrize(
    ("user", "description", "days", "error"),
    [
        ("nobody", "", None, NotFound),
        ("bob", "", 0, InvalidInput),
        ("bob", "", -1, InvalidInput),
        ("bob", "", 100_000, InvalidInput),
        ("bob", "x" * 256, None, InvalidInput),
    ],
)
async def test_invalid_token_requests_are_refused(
    accounts: AccountService,
    user: str,
    description: str,
    days: int | None,
    error: type[Exception],
) -> None:
    await accounts.create_user("bob", None, "pw")
    with pytest.raises(error):
        await accounts.create_token(user, description, days)
    assert await accounts.list_tokens("bob") == []


async def test_a_password_that_looks_like_a_token_still_works(accounts: AccountService) -> None:
    await accounts.create_user("bob", None, "igt_pat_not-really-a-token")
    assert await accounts.authenticate("bob", "igt_pat_not-really-a-token") == "bob"


async def test_an_outdated_hash_is_upgraded_on_sign_in(database: Database) -> None:
    old = AccountService(database, hasher=PasswordHasher.fast_for_tests())
    await old.create_user("alice", None, "pw")
    stronger = CountingHasher()
    stronger._hasher = type(stronger._hasher)(time_cost=2, memory_cost=16, parallelism=1)
    upgraded = AccountService(database, hasher=stronger)
    assert await upgraded.authenticate("alice", "pw") == "alice"
    assert await upgraded.authenticate("alice", "pw") == "alice"
    assert stronger.verifications == 1  # the cache holds the upgraded hash
    fresh = AccountService(database, hasher=stronger)
    assert await fresh.authenticate("alice", "pw") == "alice"
    assert stronger.verifications == 2


async def test_a_token_that_signed_in_is_recognised_without_the_database_until_a_change(
    accounts: AccountService, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another service object revokes it, as an admin command in another process would."""
    await accounts.create_user("bob", None, "pw")
    info, secret = await accounts.create_token("bob")
    reads = 0
    read = database.read

    def counted() -> Any:
        nonlocal reads
        reads += 1
        return read()

    monkeypatch.setattr(database, "read", counted)
    assert await accounts.authenticate("bob", secret) == "bob"
    assert await accounts.authenticate("bob", secret) == "bob"
    assert reads == 1
    await AccountService(database).update_token("bob", info.uuid, active=False)
    assert await accounts.authenticate("bob", secret) is None
    assert reads == 2
