"""Every change a service makes is in the audit trail, written with the change itself.

Each test runs a scripted sequence of changes as some actor and reads the events back
from ``audit_events``: action, actor, account, name, before and after. A call that
changes nothing records nothing, a refused one leaves no record, and no secret (token,
its digest, a password or its hash) is ever written there.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from imagegate.audit.context import Origin, acting_as
from imagegate.audit.events import AuditEvent
from imagegate.auth.passwords import token_digest
from imagegate.core.categories import PublisherStatus
from imagegate.core.names import RepositoryName
from imagegate.core.permissions import Permission, Visibility
from imagegate.db.models import AuditRecord, User
from imagegate.services import InvalidInput, NotFound, Services

Seen = tuple[str, str | None, str | None, str, Any, Any]  # action ... before, after


class Trail:
    """The events recorded since the last ``take``, oldest first."""

    def __init__(self, services: Services) -> None:
        self._db = services.database
        self._last = 0

    async def events(self) -> list[AuditEvent]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(AuditRecord).where(AuditRecord.id > self._last).order_by(AuditRecord.id)
            )
            found = [AuditEvent.from_row(dict(row._mapping)) for row in rows]
        if found:
            self._last = found[-1].id or self._last
        return found

    async def take(self) -> list[Seen]:
        return [
            (e.action, e.actor, e.account, e.name, e.data["before"], e.data["after"])
            for e in await self.events()
        ]

    async def raw(self) -> str:
        """Every stored column of every event, as text: what a leak would show up in."""
        async with self._db.read() as conn:
            rows = await conn.execute(select(AuditRecord))
            return "\n".join(repr(tuple(row)) for row in rows)


@pytest.fixture
async def trail(services: Services) -> Trail:
    trail = Trail(services)
    with acting_as("setup"):
        for name in ("alice", "bob"):
            await services.accounts.create_user(name, f"{name}@example.com", "pw")
        await services.orgs.add_org("acme", "alice")
    await trail.take()
    return trail


def member(*teams: str) -> dict[str, Any]:
    role = None if not teams else "owner" if "owners" in teams else "member"
    return {"role": role, "teams": sorted(teams)}


def team(name: str, description: str = "") -> dict[str, str]:
    return {"team": name, "description": description}


def by_alice(action: str, name: str, before: Any, after: Any) -> Seen:
    """An event of organization acme, caused by its owner alice."""
    return (action, "alice", "acme", name, before, after)


async def test_creating_users_and_organizations(services: Services) -> None:
    trail = Trail(services)
    with acting_as("cli:root"):
        await services.accounts.create_user("alice", "alice@example.com", "secret-pw")
        await services.accounts.create_user("root", None, "pw", admin=True)
        await services.orgs.add_org("acme", "alice")
    assert await trail.take() == [
        (
            "user.create",
            "cli:root",
            None,
            "alice",
            None,
            {"email": "alice@example.com", "admin": False},
        ),
        ("user.create", "cli:root", None, "root", None, {"email": None, "admin": True}),
        ("org.create", "cli:root", "acme", "acme", None, {"owner": "alice"}),
    ]


async def test_admin_rights_and_passwords(services: Services, trail: Trail) -> None:
    with acting_as("cli:root"):
        await services.accounts.set_admin("bob", True)
        await services.accounts.set_admin("bob", True)  # no change
        await services.accounts.set_admin("bob", False)
        await services.accounts.set_password("bob", "new-secret-pw")
    assert await trail.take() == [
        ("user.admin.change", "cli:root", None, "bob", {"admin": False}, {"admin": True}),
        ("user.admin.change", "cli:root", None, "bob", {"admin": True}, {"admin": False}),
        ("user.password.change", "cli:root", None, "bob", None, None),
    ]
    async with services.database.read() as conn:
        password_hash = await conn.scalar(select(User.password_hash).where(User.name == "bob"))
    stored = await trail.raw()
    assert "new-secret-pw" not in stored
    assert str(password_hash) not in stored


async def test_access_tokens_are_recorded_without_their_secret(
    services: Services, trail: Trail
) -> None:
    with acting_as("bob"):
        info, secret = await services.accounts.create_token(
            "bob", "ci", scopes=["repo:read"], creator_ip="10.0.0.9"
        )
        await services.accounts.update_token("bob", info.uuid, active=False)
        await services.accounts.update_token("bob", info.uuid, active=False)  # no change
        await services.accounts.update_token("bob", info.uuid, active=True, description="ci2")
        await services.accounts.deactivate_token("bob", info.id)
        await services.accounts.delete_token("bob", info.uuid)
    token: dict[str, Any] = {
        "uuid": info.uuid,
        "label": "ci",
        "scopes": ["repo:read"],
        "active": True,
        "expires_at": None,
    }
    inactive = {**token, "active": False}
    renamed = {**token, "label": "ci2"}
    renamed_inactive = {**renamed, "active": False}
    assert await trail.take() == [
        ("user.access_token.create", "bob", None, "bob", None, token),
        ("user.access_token.update", "bob", None, "bob", token, inactive),
        ("user.access_token.update", "bob", None, "bob", inactive, renamed),
        ("user.access_token.update", "bob", None, "bob", renamed, renamed_inactive),
        ("user.access_token.delete", "bob", None, "bob", renamed_inactive, None),
    ]
    stored = await trail.raw()
    assert secret not in stored
    assert token_digest(secret) not in stored


async def test_members_joining_and_leaving(services: Services, trail: Trail) -> None:
    with acting_as("alice"):
        assert await services.orgs.add_member("acme", "bob")
        assert not await services.orgs.add_member("acme", "bob")  # already there
        assert await services.orgs.add_member("acme", "bob", "devs")  # a new team, too
        await services.orgs.set_role("acme", "bob", "owner")
        await services.orgs.set_role("acme", "bob", "owner")  # no change
        await services.orgs.set_role("acme", "bob", "member")
        await services.orgs.remove_team_member("acme", "devs", "bob")
        assert await services.orgs.add_team_member("acme", "devs", "bob")
        assert not await services.orgs.add_team_member("acme", "devs", "bob")
        await services.orgs.remove_member("acme", "bob")
    devs_members = member("devs", "members")
    assert await trail.take() == [
        by_alice("org.team.create", "members", None, team("members")),
        by_alice("org.member.add", "bob", member(), member("members")),
        by_alice("org.team.create", "devs", None, team("devs")),
        by_alice("org.team.member.add", "bob", member("members"), devs_members),
        by_alice(
            "org.member.role.change", "bob", devs_members, member("devs", "members", "owners")
        ),
        by_alice(
            "org.member.role.change", "bob", member("devs", "members", "owners"), devs_members
        ),
        by_alice("org.team.member.remove", "bob", devs_members, member("members")),
        by_alice("org.team.member.add", "bob", member("members"), devs_members),
        by_alice("org.member.remove", "bob", devs_members, member()),
    ]


async def test_an_owner_made_a_member_joins_the_members_team(
    services: Services, trail: Trail
) -> None:
    with acting_as("alice"):
        await services.orgs.add_member("acme", "bob", "owners")
        await services.orgs.set_role("acme", "bob", "member")
        await services.orgs.remove_team_member("acme", "members", "bob")  # no team left
    assert await trail.take() == [
        by_alice("org.member.add", "bob", member(), member("owners")),
        by_alice("org.team.create", "members", None, team("members")),
        by_alice("org.member.role.change", "bob", member("owners"), member("members")),
        by_alice("org.member.remove", "bob", member("members"), member()),
    ]


async def test_team_changes_record_before_and_after(services: Services, trail: Trail) -> None:
    with acting_as("alice"):
        await services.orgs.create_team("acme", "devs", "developers")
        await services.orgs.update_team("acme", "devs", name="builders", description="CI")
        await services.orgs.update_team("acme", "builders", name="builders")  # no change
        await services.orgs.add_team("acme", "ops")
        await services.orgs.add_team_member("acme", "builders", "bob")
        await services.repositories.grant("acme", "builders", "app", Permission.READ)
        await services.repositories.grant("acme", "builders", "app", Permission.READ)  # same
        await services.repositories.grant("acme", "builders", "app", Permission.WRITE)
        await services.repositories.grant("acme", "builders", None, Permission.READ)
        await services.repositories.grant("acme", "builders", "web", Permission.ADMIN)
        assert await services.repositories.revoke("acme", "builders", "web") is Permission.ADMIN
        await services.orgs.delete_team("acme", "builders")
    read = {"team": "builders", "permission": "read"}
    write = {"team": "builders", "permission": "write"}
    admin = {"team": "builders", "permission": "admin"}
    deleted = {
        **team("builders", "CI"),
        "members": ["bob"],
        "permissions": [
            {"repository": None, "permission": "read"},
            {"repository": "app", "permission": "write"},
        ],
    }
    assert await trail.take() == [
        by_alice("org.team.create", "devs", None, team("devs", "developers")),
        by_alice("org.team.update", "devs", team("devs", "developers"), team("builders", "CI")),
        by_alice("org.team.create", "ops", None, team("ops")),
        by_alice("org.member.add", "bob", member(), member("builders")),
        by_alice("repo.permission.set", "acme/app", None, read),
        by_alice("repo.permission.set", "acme/app", read, write),
        by_alice("repo.permission.set", "acme", None, read),
        by_alice("repo.permission.set", "acme/web", None, admin),
        by_alice("repo.permission.remove", "acme/web", admin, None),
        by_alice("org.team.delete", "builders", deleted, None),
        by_alice("org.member.remove", "bob", member("builders"), member()),  # his only team
    ]


async def test_image_access_settings_and_allowlist(services: Services, trail: Trail) -> None:
    with acting_as("alice", Origin("192.0.2.7", "Mozilla/5.0")):
        await services.access.set_settings("acme", enabled=True, allow_official=False)
        await services.access.set_settings("acme", enabled=True)  # no change
        assert await services.allowlist.add("acme", "nginx")
        assert not await services.allowlist.add("acme", "library/nginx")  # the same entry
        assert await services.allowlist.remove("acme", "nginx")
        assert not await services.allowlist.remove("acme", "nginx")
        await services.access.set_upstream_namespace("acme", "acme-inc")
        await services.access.set_upstream_namespace("acme", "acme-inc")  # no change
        await services.access.set_upstream_namespace("acme", None)
    events = await trail.events()
    off = {  # the defaults
        "enabled": False,
        "allow_official": True,
        "allow_verified_publishers": True,
        "allow_community": False,
    }
    on = {**off, "enabled": True, "allow_official": False}
    entry = {"repository": "library/nginx"}
    assert [(e.action, e.name, e.data["before"], e.data["after"]) for e in events] == [
        ("org.settings.update", "acme", off, on),
        ("org.allowlist.add", "library/nginx", None, entry),
        ("org.allowlist.remove", "library/nginx", entry, None),
        ("org.upstream_namespace.update", "acme", mirror(None), mirror("acme-inc")),
        ("org.upstream_namespace.update", "acme", mirror("acme-inc"), mirror(None)),
    ]
    assert {(e.actor, e.account, e.client_ip, e.user_agent) for e in events} == {
        ("alice", "acme", "192.0.2.7", "Mozilla/5.0")
    }


def mirror(namespace: str | None) -> dict[str, str | None]:
    return {"upstream_namespace": namespace}


async def test_repositories(services: Services, trail: Trail) -> None:
    app = RepositoryName("acme", "app")
    web = RepositoryName("acme", "web")
    with acting_as("alice"):
        assert await services.repositories.ensure(app)  # a first push
        assert not await services.repositories.ensure(app)
        await services.repositories.set_visibility(app, Visibility.PUBLIC)
        await services.repositories.set_visibility(app, Visibility.PUBLIC)  # no change
        assert await services.repositories.set_visibility(web, Visibility.PUBLIC)
        assert await services.repositories.delete(app)
        assert not await services.repositories.delete(app)
    private, public = {"visibility": "private"}, {"visibility": "public"}
    assert await trail.take() == [
        by_alice("repo.create", "acme/app", None, private),
        by_alice("repo.change_privacy", "acme/app", private, public),
        by_alice("repo.create", "acme/web", None, public),
        by_alice("repo.delete", "acme/app", public, None),
    ]


async def test_publisher_overrides(services: Services, trail: Trail) -> None:
    with acting_as("root"):
        await services.publishers.set_override("bitnami", PublisherStatus.VERIFIED_PUBLISHER)
        await services.publishers.set_override("bitnami", PublisherStatus.VERIFIED_PUBLISHER)
        await services.publishers.set_override("bitnami", PublisherStatus.SPONSORED_OSS)
        await services.publishers.remove_override("bitnami")
    verified, oss = {"status": "verified_publisher"}, {"status": "sponsored_oss"}
    assert await trail.take() == [
        ("publisher.override.set", "root", None, "bitnami", None, verified),
        ("publisher.override.set", "root", None, "bitnami", verified, oss),
        ("publisher.override.remove", "root", None, "bitnami", oss, None),
    ]


async def test_refused_changes_leave_no_record(services: Services, trail: Trail) -> None:
    refused = [
        (NotFound, services.orgs.add_member("globex", "bob")),
        (NotFound, services.orgs.add_member("acme", "ghost", "new-team")),  # team rolled back
        (InvalidInput, services.orgs.remove_member("acme", "alice")),  # the last owner
        (InvalidInput, services.orgs.set_role("acme", "alice", "member")),
        (NotFound, services.orgs.remove_team_member("acme", "owners", "bob")),
        (NotFound, services.access.set_settings("globex", enabled=True)),
        (NotFound, services.allowlist.add("globex", "nginx")),
        (NotFound, services.repositories.grant("acme", "ghosts", "app", Permission.READ)),
        (NotFound, services.repositories.revoke("acme", "owners", "app")),
        (NotFound, services.publishers.remove_override("bitnami")),
        (NotFound, services.accounts.create_token("ghost")),
        (NotFound, services.accounts.delete_token("bob", "no-such-uuid")),
        (NotFound, services.accounts.set_admin("ghost")),
        (NotFound, services.accounts.set_password("ghost", "pw")),
    ]
    with acting_as("alice"):
        for error, attempt in refused:
            with pytest.raises(error):
                await attempt
    assert await trail.take() == []
    assert "new-team" not in await services.orgs.teams("acme")


async def test_storage_quotas(services: Services, trail: Trail) -> None:
    with acting_as("cli:root"):
        await services.quotas.set_quota("acme", 20 * 1024**3)
        await services.quotas.set_quota("acme", 20 * 1024**3)  # no change
        await services.quotas.set_quota("acme", None)
        with pytest.raises(NotFound):
            await services.quotas.set_quota("initech", 1)
        with pytest.raises(InvalidInput):
            await services.quotas.set_quota("acme", -1)
    assert await trail.take() == [
        ("org.quota.update", "cli:root", "acme", "acme", {"quota": None}, {"quota": 21474836480}),
        ("org.quota.update", "cli:root", "acme", "acme", {"quota": 21474836480}, {"quota": None}),
    ]
