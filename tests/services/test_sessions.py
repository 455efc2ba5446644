"""SessionService: a session is tied to its credential and checked on every request,
in the database, so every process on one database sees the same sessions."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, update

from imagegate.core.authorization import Reach
from imagegate.core.signin import Refusal, membership_message
from imagegate.db import Database
from imagegate.db.models import AccessToken, Session
from imagegate.services import Services, TooManyAttempts
from imagegate.services.sessions import Ended, SessionService
from imagegate.services.signin import SignInService
from imagegate.services.throttle import USERNAME
from tests.services.conftest import MakeServices

HOUR = dt.timedelta(hours=1)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2027, 1, 5, 12, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


async def _world(services: Services) -> None:
    await services.accounts.create_user("alice", None, "alice-password")
    await services.accounts.create_user("dave", None, "dave-password")
    await services.orgs.add_org("acme", "alice")


async def test_a_password_session_ends_when_the_password_changes(services: Services) -> None:
    await _world(services)
    signed_in = await services.sessions.sign_in("Alice ", "alice-password", lifetime=HOUR)
    assert signed_in.user is not None and signed_in.user.username == "alice"
    assert signed_in.user.reach is Reach.WRITE and signed_in.user.scopes is None
    assert (await services.sessions.check(signed_in.secret)).user == signed_in.user
    await services.accounts.set_password("alice", "new-password")
    checked = await services.sessions.check(signed_in.secret)
    assert checked.user is None and checked.ended is Ended.PASSWORD_CHANGED
    again = await services.sessions.sign_in("alice", "new-password", lifetime=HOUR)
    assert (await services.sessions.check(again.secret)).user is not None


async def test_a_token_session_ends_when_the_token_is_revoked_deleted_or_expires(
    services: Services,
) -> None:
    await _world(services)
    sessions = services.sessions
    made = {}
    for label in ("revoked", "deleted", "expired", "kept"):
        token, secret = await services.accounts.create_token("alice", label, scopes=["repo:read"])
        signed_in = await sessions.sign_in("alice", secret, lifetime=HOUR)
        assert signed_in.user is not None and signed_in.user.reach is Reach.READ
        assert signed_in.user.token_uuid == token.uuid
        made[label] = (token, signed_in.secret)
    await services.accounts.update_token("alice", made["revoked"][0].uuid, active=False)
    await services.accounts.delete_token("alice", made["deleted"][0].uuid)
    async with services.database.write() as conn:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        expired = AccessToken.id == made["expired"][0].id
        await conn.execute(update(AccessToken).where(expired).values(expires_at=past))
    ended = {label: (await sessions.check(secret)).ended for label, (_, secret) in made.items()}
    assert ended == {
        "revoked": Ended.UNKNOWN,  # deactivation deleted the session
        "deleted": Ended.UNKNOWN,
        "expired": Ended.TOKEN_EXPIRED,
        "kept": None,
    }
    # A password change leaves a token's session alone: it was not made with the password.
    await services.accounts.set_password("alice", "new-password")
    assert (await sessions.check(made["kept"][1])).user is not None


@pytest.mark.parametrize("revoke", ["update_token", "deactivate_token"])
async def test_a_reactivated_token_does_not_bring_its_old_sessions_back(
    services: Services, revoke: str
) -> None:
    """Hole 4: a session must end for good with its token, not pause while it is off."""
    await _world(services)
    accounts, sessions = services.accounts, services.sessions
    token, secret = await accounts.create_token("alice", "ci", scopes=["repo:write"])
    before = await sessions.sign_in("alice", secret, lifetime=HOUR)
    if revoke == "update_token":  # the API's PATCH
        await accounts.update_token("alice", token.uuid, active=False)
    else:  # the console's deactivate button
        await accounts.deactivate_token("alice", token.id)
    assert (await sessions.check(before.secret)).user is None
    await accounts.update_token("alice", token.uuid, active=True)
    revived = await sessions.check(before.secret)
    assert revived.user is None, "the token's old session came back with it"
    assert revived.ended is Ended.UNKNOWN  # deactivation deleted it
    after = await sessions.sign_in("alice", secret, lifetime=HOUR)  # a new sign-in works
    assert (await sessions.check(after.secret)).user is not None


async def test_sign_out_on_one_process_ends_the_session_on_every_other(
    make_services: MakeServices,
) -> None:
    one, other = make_services(), make_services()  # two gateways, one database
    await _world(one)
    signed_in = await one.sessions.sign_in("alice", "alice-password", lifetime=HOUR)
    assert (await other.sessions.check(signed_in.secret)).user is not None
    await other.sessions.end(signed_in.secret)
    assert (await one.sessions.check(signed_in.secret)).ended is Ended.UNKNOWN


async def test_a_password_changed_while_it_is_checked_makes_no_session(
    services: Services,
) -> None:
    await _world(services)
    accounts = services.accounts
    authenticate = accounts.authenticate

    async def then_changed(name: str, secret: str, *, client: str | None = None) -> str | None:
        user = await authenticate(name, secret, client=client)  # right, with the old password
        await accounts.set_password("alice", "changed-meanwhile")
        return user

    accounts.authenticate = then_changed  # type: ignore[method-assign]
    signed_in = await services.sessions.sign_in("alice", "alice-password", lifetime=HOUR)
    assert signed_in.user is None and signed_in.secret == ""


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every statement sent to a database meanwhile."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", note)


@pytest.mark.parametrize(
    ("name", "secret"),
    [("al\udc80ice", "alice-password"), ("al\x00ice", "alice-password"), ("alice", "\x00")],
)
async def test_text_no_name_or_secret_can_be_signs_nobody_in_unread(
    services: Services, name: str, secret: str
) -> None:
    """A lone surrogate or a NUL (PostgreSQL takes none) made sign_in raise."""
    await _world(services)
    with statements() as sent:
        signed_in = await services.sessions.sign_in(name, secret, lifetime=HOUR)
    assert signed_in.user is None and signed_in.secret == ""
    assert sent == []


async def test_a_throttled_sign_in_costs_no_database_read(services: Services) -> None:
    await _world(services)
    for n in range(USERNAME.free):
        wrong = await services.sessions.sign_in("alice", f"guess{n}", lifetime=HOUR)
        assert wrong.user is None
    with statements() as sent, pytest.raises(TooManyAttempts):
        await services.sessions.sign_in("alice", "alice-password", lifetime=HOUR)
    assert sent == []


async def test_only_a_digest_is_kept_and_expired_sessions_go(
    services: Services, database: Database
) -> None:
    await _world(services)
    clock = Clock()
    sessions = SessionService(database, services.accounts, services.signin, clock=clock)
    first = await sessions.sign_in("alice", "alice-password", lifetime=HOUR)
    async with database.read() as conn:
        [row] = (await conn.execute(select(Session.__table__))).all()
    assert first.secret not in json.dumps([str(value) for value in row])
    clock.now += HOUR
    assert (await sessions.check(first.secret)).ended is Ended.EXPIRED
    second = await sessions.sign_in("alice", "alice-password", lifetime=HOUR)
    async with database.read() as conn:
        assert len((await conn.execute(select(Session.id))).all()) == 1  # the expired one went
    assert (await sessions.check(second.secret)).user is not None
    assert (await sessions.check("x" * 65)).ended is Ended.UNKNOWN


async def test_enforce_sign_in_refuses_outsiders_and_sessions_made_before(
    services: Services, database: Database, tmp_path: Path
) -> None:
    await _world(services)
    await services.orgs.add_org("globex", "dave")
    registry_json = tmp_path / "registry.json"
    signin = SignInService(
        database, registry_json, missing_ok=True, recheck_seconds=0, org_recheck_seconds=0
    )
    sessions = SessionService(database, services.accounts, signin)
    daves = await sessions.sign_in("dave", "dave-password", lifetime=HOUR)
    assert (await sessions.check(daves.secret)).refusal is None
    registry_json.write_text(json.dumps({"allowedOrgs": ["acme"]}))

    refused = await sessions.sign_in("dave", "dave-password", lifetime=HOUR)
    assert refused.user is None and refused.refusal is not None
    assert refused.refusal.kind is Refusal.NOT_ALLOWED_ORG
    assert refused.refusal.message == membership_message(["acme"])
    assert refused.audit_event("dave", via="api").outcome == Refusal.NOT_ALLOWED_ORG.value
    checked = await sessions.check(daves.secret)  # made before the file: refused now
    assert checked.user is not None and checked.refusal is not None
    assert checked.refusal.message == membership_message(["acme"])
    alices = await sessions.sign_in("alice", "alice-password", lifetime=HOUR)
    assert alices.user is not None and (await sessions.check(alices.secret)).refusal is None
