"""Sessions of the API and the console, through a real gateway: each is tied to the
credential it was made with, checked on every request, ended by signing out on any
gateway process, and refused while enforce sign-in turns its user away.

Issue 9's holes 2 (a read-only token signs in to the console with full rights), 4
(revoking a token or changing a password leaves its sessions alive), 11 (a read-only
token removes its user from an organization) and 14 (users outside ``allowedOrgs`` sign
in to the API and the console).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from imagegate.core.signin import membership_message
from imagegate.db.models import AccessToken
from tests.api.conftest import Api, Visitor
from tests.support.gateway import Gateway
from tests.support.polling import eventually

READ_ONLY_WORDS = "read-only access token (scope repo:read)"
SETTINGS = "/v2/orgs/acme/settings"
STRICT = {
    "restricted_images": {
        "enabled": True,
        "allow_official_images": False,
        "allow_verified_publishers": False,
    }
}


async def _token(api: Api, user: str, *scopes: str) -> tuple[str, str]:
    """A new access token of ``user``: its uuid and secret."""
    token, secret = await api.services.accounts.create_token(user, "t", scopes=list(scopes))
    return token.uuid, secret


async def _signed_in_page(visitor: Visitor, path: str = "/console/") -> bool:
    """Whether ``path`` shows a page to a signed-in visitor (not the way to sign in)."""
    reply = await visitor.get(path, keep_cookie=True)
    return reply.status == 200


# --- hole 2: a read-only token is read-only in the console too ---------------------------


async def test_a_read_only_token_in_the_console_changes_nothing(api: Api) -> None:
    _, secret = await _token(api, "alice", "repo:read")  # alice owns acme
    visitor = await api.visitor("alice", secret)
    tokens_before = await api.services.accounts.list_tokens("alice")
    settings_before = await api.services.access.get_settings("acme")

    minted = await visitor.post("/console/tokens", {"description": "w", "expires_in_days": ""})
    assert minted.status == 403 and "Nothing was changed" in minted.body
    form = {"enabled": "on", "official": "restricted", "verified": "restricted"}
    changed = await visitor.post("/console/orgs/acme/image-access", {**form, "community": "x"})
    assert changed.status == 403 and "Nothing was changed" in changed.body
    added = await visitor.post("/console/orgs/acme/members/add", {"username": "dave"})
    assert added.status == 403
    assert await api.services.accounts.list_tokens("alice") == tokens_before
    assert await api.services.access.get_settings("acme") == settings_before
    assert {m.username for m in await api.services.orgs.members("acme")} == {"alice", "bob"}
    page = await visitor.get("/console/orgs/acme/image-access")  # reads, and says why not more
    assert page.status == 200 and "signed in with a read-only access token" in page.body


async def test_a_write_token_in_the_console_manages_no_tokens(api: Api) -> None:
    """Issue 9: a session made with any access token creates and deactivates no tokens,
    so a leaked token cannot mint itself a successor; the page says why."""
    _, secret = await _token(api, "alice", "repo:write")
    spare, _ = await _token(api, "alice", "repo:read")
    visitor = await api.visitor("alice", secret)
    before = await api.services.accounts.list_tokens("alice")
    [spare_id] = [t.id for t in before if t.uuid == spare]
    minted = await visitor.post("/console/tokens", {"description": "w", "expires_in_days": ""})
    deactivated = await visitor.post(f"/console/tokens/{spare_id}/deactivate")
    for refused in (minted, deactivated):
        assert refused.status == 403 and "<h1>Access token session</h1>" in refused.body
        assert "sign in with your password to manage tokens. Nothing was changed." in refused.body
    assert await api.services.accounts.list_tokens("alice") == before
    page = await visitor.get("/console/tokens")  # the form is disabled, and says why
    assert page.status == 200 and "an access token cannot create or deactivate tokens" in page.body
    assert '<button type="submit" class="primary" disabled>Create token</button>' in page.body
    # Everything else a write token may do, it still does here.
    changed = await visitor.post("/console/orgs/acme/members/add", {"username": "dave"})
    assert changed.status == 303


async def test_a_public_read_token_does_not_sign_in_to_the_console(api: Api) -> None:
    _, secret = await _token(api, "alice", "repo:public_read")
    visitor = await api.visitor()
    reply = await visitor.sign_in("alice", secret)
    assert reply.status == 403 and "public-read access token" in reply.body
    assert not await _signed_in_page(visitor)


# --- hole 11: a read-only token cannot remove its user from an organization --------------


async def test_a_read_only_token_cannot_leave_an_organization(api: Api) -> None:
    _, secret = await _token(api, "bob", "repo:read")
    bearer = await api.login("bob", secret)
    reply = await api.call("DELETE", "/v2/orgs/acme/members/bob", bearer=bearer)
    assert reply.status == 403 and READ_ONLY_WORDS in reply.body["message"]
    assert "bob" in {m.username for m in await api.services.orgs.members("acme")}
    # With a password (or a write token) a member may still leave.
    assert (await api.call("DELETE", "/v2/orgs/acme/members/bob", "bob")).status == 204


# --- hole 4: a session ends with its credential --------------------------------------------


async def test_api_sessions_end_when_their_token_is_revoked_deleted_or_expires(api: Api) -> None:
    made = {}
    for how in ("revoked", "deleted", "expired"):
        uuid, secret = await _token(api, "bob", "repo:write")
        made[how] = (uuid, await api.login("bob", secret))
        assert (await api.call("GET", "/v2/access-tokens", bearer=made[how][1])).status == 200
    patch = {"is_active": False}
    revoked = made["revoked"][0]
    assert (
        await api.call("PATCH", f"/v2/access-tokens/{revoked}", "bob", json=patch)
    ).status == 200
    assert (
        await api.call("DELETE", f"/v2/access-tokens/{made['deleted'][0]}", "bob")
    ).status == 204
    async with api.services.database.write() as conn:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        which = AccessToken.uuid == made["expired"][0]
        await conn.execute(update(AccessToken).where(which).values(expires_at=past))
    words = {"revoked": "deactivated", "deleted": "deleted", "expired": "expired"}
    for how, (_, bearer) in made.items():
        reply = await api.call("GET", "/v2/access-tokens", bearer=bearer)
        assert reply.status == 401, (how, reply.body)
        assert words[how] in reply.body["message"] and "sign in again" in reply.body["message"]
    # Reactivating the token brings none of its old sessions back.
    patch = {"is_active": True}
    reply = await api.call("PATCH", f"/v2/access-tokens/{revoked}", "bob", json=patch)
    assert reply.status == 200 and reply.body["is_active"] is True
    reply = await api.call("GET", "/v2/access-tokens", bearer=made["revoked"][1])
    assert reply.status == 401 and "deactivated" in reply.body["message"]


async def test_an_api_session_ends_when_the_password_changes(api: Api) -> None:
    bearer = await api.login("alice", "alice-password")
    assert (await api.call("GET", SETTINGS, bearer=bearer)).status == 200
    await api.services.accounts.set_password("alice", "a-new-password")
    reply = await api.call("PUT", SETTINGS, json=STRICT, bearer=bearer)
    assert reply.status == 401 and "password was changed" in reply.body["message"]
    assert not (await api.services.access.get_settings("acme")).enabled


async def test_console_sessions_end_with_their_token_or_password(api: Api) -> None:
    uuid, secret = await _token(api, "bob", "repo:write")
    by_token = await api.visitor("bob", secret)
    by_password = await api.visitor("bob")
    assert await _signed_in_page(by_token) and await _signed_in_page(by_password)

    await api.services.accounts.update_token("bob", uuid, active=False)
    reply = await by_token.get("/console/tokens")
    assert reply.status == 303
    assert reply.headers["Location"] == "/console/sign-in?next=%2Fconsole%2Ftokens&ended=unknown"
    notice = await by_token.get(reply.headers["Location"])
    assert "the access token you signed in with was deactivated or deleted" in notice.body
    await api.services.accounts.update_token("bob", uuid, active=True)
    assert not await _signed_in_page(by_token)  # reactivated, but the session stays ended
    assert await _signed_in_page(by_password)

    await api.services.accounts.set_password("bob", "a-new-password")
    created = await by_password.post("/console/tokens", {"description": "x", "expires_in_days": ""})
    assert created.status == 401 and "password was changed" in created.body
    assert await api.services.accounts.list_tokens("bob") != []  # only the revoked one
    assert len(await api.services.accounts.list_tokens("bob")) == 1


async def test_after_sign_out_a_copy_of_the_cookie_is_dead(api: Api) -> None:
    visitor = await api.visitor("alice")
    stolen = Visitor(api, visitor.cookie, visitor.csrf)
    assert await _signed_in_page(stolen)
    reply = await visitor.post("/console/sign-out")
    assert reply.status == 303
    assert not await _signed_in_page(stolen)
    refused = await stolen.post("/console/orgs/acme/image-access", {"enabled": "on"})
    assert refused.status == 401
    assert not (await api.services.access.get_settings("acme")).enabled


@pytest.fixture
def second_gateway(api: Api, tmp_path: Path) -> Iterator[Gateway]:
    """Another ``imagegate serve`` process on the same database and keys."""
    other = Gateway(
        tmp_path / "second",
        upstream_url="http://127.0.0.1:9",
        database_url=api.settings.effective_database_url,
        settings={"IMAGEGATE_DATA_DIR": str(api.settings.data_dir)},
    )
    yield other
    other.stop()


async def test_sessions_are_shared_by_every_gateway_process(
    api: Api, second_gateway: Gateway
) -> None:
    await asyncio.to_thread(second_gateway.start)
    here = await api.visitor("alice")
    other = dataclasses.replace(api, url=second_gateway.url, jwts={})
    there = Visitor(other, here.cookie, here.csrf)  # the same browser, the other process
    assert await _signed_in_page(there)  # signed in on one, recognised on the other
    assert (await there.post("/console/sign-out")).status == 303
    assert not await _signed_in_page(here)  # signed out on the other: dead here too

    uuid, secret = await _token(api, "alice", "repo:write")
    bearer = await other.login("alice", secret)
    assert (await api.call("GET", SETTINGS, bearer=bearer)).status == 200
    patch = {"is_active": False}
    reply = await other.call("PATCH", f"/v2/access-tokens/{uuid}", "alice", json=patch)
    assert reply.status == 200
    assert (await api.call("GET", SETTINGS, bearer=bearer)).status == 401


# --- hole 14: enforce sign-in on the API and the console --------------------------------


async def test_users_outside_allowed_orgs_cannot_sign_in_and_their_sessions_stop(
    api: Api,
) -> None:
    message = membership_message(["acme"])
    ginas_bearer = await api.login("gina", "gina-password")  # gina owns globex only
    ginas_visit = await api.visitor("gina")
    (api.settings.data_dir / "registry.json").write_text(json.dumps({"allowedOrgs": ["acme"]}))

    async def refused() -> bool:
        reply = await api.call("GET", "/v2/orgs/globex/settings", bearer=ginas_bearer)
        return reply.status == 401 and reply.body["message"] == message

    await eventually(refused)  # the file is picked up within a second or two
    page = await ginas_visit.get("/console/", keep_cookie=True)
    assert page.status == 403 and message in page.body
    assert (await ginas_visit.get("/console/sign-in")).status == 200  # to sign in as another
    assert (await ginas_visit.post("/console/sign-out")).status == 303

    login = {"username": "dave", "password": "dave-password"}
    reply = await api.call("POST", "/v2/users/login", json=login)
    assert reply.status == 401 and reply.body == {"detail": message, "login_2fa_token": None}
    exchange = {"identifier": "dave", "secret": "dave-password"}
    reply = await api.call("POST", "/v2/auth/token", json=exchange)
    assert reply.status == 401 and reply.body["message"] == message
    visitor = await api.visitor()
    signed = await visitor.sign_in("dave", "dave-password")
    assert signed.status == 403 and message in signed.body
    assert not await _signed_in_page(visitor)

    # Members of an allowed organization carry on.
    assert (await api.call("GET", SETTINGS, "bob")).status == 200
    assert await _signed_in_page(await api.visitor("bob"))
