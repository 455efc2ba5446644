"""Hosted repositories and team permissions, gathered from the database."""

from __future__ import annotations

import asyncio

import pytest

from imagegate.core.names import RepositoryName, parse_repository
from imagegate.core.permissions import Permission, Visibility
from imagegate.services import InvalidInput, NotFound, Services
from imagegate.services.repositories import GrantInfo

READ, WRITE, ADMIN, NONE = Permission.READ, Permission.WRITE, Permission.ADMIN, Permission.NONE
PRIVATE, PUBLIC = Visibility.PRIVATE, Visibility.PUBLIC


def repo(name: str) -> RepositoryName:
    return parse_repository(name)


@pytest.fixture
async def world(services: Services) -> Services:
    """acme: owner alice, bob in devs, carol in ops and members; globex: owner gina, with
    a devs team too; dave is in no organization."""
    for name in ("alice", "bob", "carol", "dave", "gina"):
        await services.accounts.create_user(name, None, "pw")
    await services.orgs.add_org("acme", "alice")
    await services.orgs.add_member("acme", "bob", "devs")
    await services.orgs.add_member("acme", "carol", "ops")
    await services.orgs.add_member("acme", "carol")
    await services.orgs.add_org("globex", "gina")
    await services.orgs.add_team("globex", "devs")
    return services


async def test_the_first_push_creates_a_private_repository(world: Services) -> None:
    repositories = world.repositories
    assert await repositories.get(repo("acme/app")) is None
    assert await repositories.ensure(repo("acme/app")) is True
    assert await repositories.ensure(repo("acme/app")) is False
    assert await repositories.get(repo("acme/app")) is PRIVATE
    assert await repositories.get(repo("globex/app")) is None  # per organization
    assert await repositories.ensure(repo("acme/team/app")) is True  # nested paths


@pytest.mark.parametrize("name", ["alice/app", "someone/app", "library/nginx"])
async def test_only_an_organization_namespace_holds_repositories(
    world: Services, name: str
) -> None:
    with pytest.raises(NotFound, match=f"cannot create {name}: organization"):
        await world.repositories.ensure(repo(name))
    assert await world.repositories.get(repo(name)) is None


async def test_concurrent_first_pushes_create_the_repository_once(world: Services) -> None:
    created = await asyncio.gather(
        *(world.repositories.ensure(repo("acme/app")) for _ in range(20))
    )
    assert sum(created) == 1
    assert [r.name.full for r in await world.repositories.list("acme")] == ["acme/app"]


async def test_visibility_changes_and_creates_when_missing(world: Services) -> None:
    repositories = world.repositories
    assert await repositories.set_visibility(repo("acme/app"), PUBLIC) is True
    assert await repositories.get(repo("acme/app")) is PUBLIC
    assert await repositories.ensure(repo("acme/app")) is False  # a push keeps it public
    assert await repositories.set_visibility(repo("acme/app"), PRIVATE) is False
    assert await repositories.get(repo("acme/app")) is PRIVATE
    with pytest.raises(NotFound, match="organization 'nope' does not exist"):
        await repositories.set_visibility(repo("nope/app"), PUBLIC)


async def test_visibility_set_while_the_first_push_creates_it(world: Services) -> None:
    results = await asyncio.gather(
        *(world.repositories.ensure(repo("acme/app")) for _ in range(5)),
        world.repositories.set_visibility(repo("acme/app"), PUBLIC),
        *(world.repositories.ensure(repo("acme/app")) for _ in range(5)),
    )
    assert sum(results) == 1  # exactly one call created it
    assert await world.repositories.get(repo("acme/app")) is PUBLIC


async def test_list_is_in_byte_order_with_visibility(world: Services) -> None:
    for name in ("acme/b", "acme/app/x", "acme/app-b", "acme/app", "globex/app"):
        await world.repositories.ensure(repo(name))
    await world.repositories.set_visibility(repo("acme/app-b"), PUBLIC)
    listed = await world.repositories.list("acme")
    assert [(r.name.full, r.visibility) for r in listed] == [
        ("acme/app", PRIVATE),
        ("acme/app-b", PUBLIC),
        ("acme/app/x", PRIVATE),
        ("acme/b", PRIVATE),
    ]
    assert await world.repositories.list("globex") != []
    with pytest.raises(NotFound, match="organization 'nope' does not exist"):
        await world.repositories.list("nope")


async def test_delete_forgets_the_repository_but_not_its_grants(world: Services) -> None:
    await world.repositories.ensure(repo("acme/app"))
    await world.repositories.grant("acme", "devs", "app", WRITE)
    assert await world.repositories.delete(repo("acme/app")) is True
    assert await world.repositories.delete(repo("acme/app")) is False
    assert await world.repositories.delete(repo("nope/app")) is False
    assert await world.repositories.get(repo("acme/app")) is None
    assert await world.repositories.list_grants("acme") == [GrantInfo("devs", "app", WRITE)]


async def test_grants_replace_and_report_what_was_there(world: Services) -> None:
    repositories = world.repositories
    assert await repositories.grant("acme", "devs", "app", READ) is NONE
    assert await repositories.grant("acme", "devs", "app", WRITE) is READ
    assert await repositories.grant("acme", "devs", None, READ) is NONE
    assert await repositories.grant("acme", "devs", None, ADMIN) is READ
    assert await repositories.grant("acme", "ops", "tools/ci", READ) is NONE
    assert await repositories.grant("acme", "members", "app", READ) is NONE
    assert await repositories.list_grants("acme") == [
        GrantInfo("devs", None, ADMIN),
        GrantInfo("devs", "app", WRITE),
        GrantInfo("members", "app", READ),
        GrantInfo("ops", "tools/ci", READ),
    ]
    assert await repositories.list_grants("globex") == []

    assert await repositories.revoke("acme", "devs", None) is ADMIN
    assert await repositories.revoke("acme", "devs", "app") is WRITE
    with pytest.raises(NotFound, match="team 'devs' of 'acme' has no permission on acme/app"):
        await repositories.revoke("acme", "devs", "app")
    with pytest.raises(NotFound, match="no permission on every repository of acme"):
        await repositories.revoke("acme", "devs", None)
    assert [g.team for g in await repositories.list_grants("acme")] == ["members", "ops"]


@pytest.mark.parametrize(
    ("org", "team", "repository", "permission", "error", "message"),
    [
        ("nope", "devs", "app", READ, NotFound, "organization 'nope' does not exist"),
        ("acme", "qa", "app", READ, NotFound, "team 'qa' does not exist in organization 'acme'"),
        ("acme", "owners", "app", READ, InvalidInput, "admin permission on every repository"),
        ("acme", "devs", "App", READ, InvalidInput, "invalid repository name"),
        ("acme", "devs", "app/", READ, InvalidInput, "invalid repository name"),
        ("acme", "devs", "x" * 200, READ, InvalidInput, "at most 200"),
        ("acme", "devs", "app", NONE, InvalidInput, "use read, write or admin"),
    ],
)
async def test_grants_check_everything(
    world: Services,
    org: str,
    team: str,
    repository: str,
    permission: Permission,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        await world.repositories.grant(org, team, repository, permission)
    assert await world.repositories.list_grants("acme") == []


async def test_revoke_of_an_unknown_team_or_organization(world: Services) -> None:
    with pytest.raises(NotFound, match="team 'qa' does not exist"):
        await world.repositories.revoke("acme", "qa", None)
    with pytest.raises(NotFound, match="organization 'nope' does not exist"):
        await world.repositories.revoke("nope", "devs", None)
    with pytest.raises(NotFound, match="organization 'nope' does not exist"):
        await world.repositories.list_grants("nope")


async def test_concurrent_grants_to_one_team_leave_one_permission(world: Services) -> None:
    permissions = [READ, WRITE, ADMIN] * 4
    await asyncio.gather(
        *(world.repositories.grant("acme", "devs", "app", p) for p in permissions),
        *(world.repositories.grant("acme", "devs", None, p) for p in permissions),
    )
    grants = await world.repositories.list_grants("acme")
    assert [(g.team, g.repository) for g in grants] == [("devs", None), ("devs", "app")]


@pytest.mark.parametrize(
    ("user", "grants", "repository", "expected"),
    [
        ("alice", [], "acme/app", ADMIN),  # owner
        ("alice", [], "acme/never/pushed", ADMIN),
        ("bob", [("devs", "app", WRITE)], "acme/app", WRITE),
        ("bob", [("devs", "app", WRITE)], "acme/app/sub", NONE),  # exactly that repository
        ("bob", [("devs", "app", WRITE)], "acme/other", NONE),
        ("bob", [("devs", None, READ)], "acme/anything", READ),  # the whole namespace
        ("bob", [("devs", None, READ), ("devs", "app", ADMIN)], "acme/app", ADMIN),
        ("bob", [("devs", None, ADMIN), ("devs", "app", READ)], "acme/app", ADMIN),
        ("carol", [("ops", "app", READ), ("members", "app", WRITE)], "acme/app", WRITE),
        ("bob", [], "acme/app", NONE),  # a member without a grant
        ("bob", [("ops", None, ADMIN)], "acme/app", NONE),  # another team's grant
        ("dave", [("devs", None, ADMIN)], "acme/app", NONE),  # not a member
        ("gina", [("devs", None, ADMIN)], "acme/app", NONE),  # another org's owner
        ("bob", [("devs", None, ADMIN)], "globex/app", NONE),  # same team name elsewhere
        ("ghost", [], "acme/app", NONE),
    ],
)
async def test_permission_matrix(
    world: Services,
    user: str,
    grants: list[tuple[str, str | None, Permission]],
    repository: str,
    expected: Permission,
) -> None:
    await world.repositories.ensure(repo("acme/app"))
    for team, path, permission in grants:
        await world.repositories.grant("acme", team, path, permission)
    assert await world.repositories.permission(user, repo(repository)) is expected


async def test_permission_changes_apply_at_once(world: Services) -> None:
    app = repo("acme/app")
    assert await world.repositories.permission("bob", app) is NONE
    await world.repositories.grant("acme", "devs", "app", WRITE)
    assert await world.repositories.permission("bob", app) is WRITE
    await world.orgs.add_member("acme", "bob", "owners")
    assert await world.repositories.permission("bob", app) is ADMIN
    await world.orgs.remove_member("acme", "bob")
    assert await world.repositories.permission("bob", app) is NONE


@pytest.fixture
async def catalog(world: Services) -> Services:
    """Private and public repositories in acme, acme-2 (sorts before acme) and globex."""
    await world.orgs.add_org("acme-2", "gina")
    for name in ("acme/app", "acme/app/x", "acme/secret", "acme/tools/ci", "globex/api"):
        await world.repositories.ensure(repo(name))
    for name in ("acme/public", "acme-2/web", "globex/site"):
        await world.repositories.set_visibility(repo(name), PUBLIC)
    await world.repositories.grant("acme", "devs", "app", READ)
    await world.repositories.grant("acme", "ops", None, WRITE)
    return world


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (None, ["acme-2/web", "acme/public", "globex/site"]),
        ("dave", ["acme-2/web", "acme/public", "globex/site"]),
        ("bob", ["acme-2/web", "acme/app", "acme/public", "globex/site"]),
        (
            "carol",
            [
                "acme-2/web",
                "acme/app",
                "acme/app/x",
                "acme/public",
                "acme/secret",
                "acme/tools/ci",
                "globex/site",
            ],
        ),
        (
            "alice",
            [
                "acme-2/web",
                "acme/app",
                "acme/app/x",
                "acme/public",
                "acme/secret",
                "acme/tools/ci",
                "globex/site",
            ],
        ),
        ("gina", ["acme-2/web", "acme/public", "globex/api", "globex/site"]),
    ],
)
async def test_the_catalog_lists_what_the_caller_may_read(
    catalog: Services, user: str | None, expected: list[str]
) -> None:
    assert await catalog.repositories.readable(user) == expected


async def test_the_catalog_is_paginated_in_byte_order(catalog: Services) -> None:
    everything = await catalog.repositories.readable("alice")
    assert everything == sorted(everything)
    pages: list[list[str]] = []
    last: str | None = None
    while page := await catalog.repositories.readable("alice", 3, last):
        pages.append(page)
        last = page[-1]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [name for page in pages for name in page] == everything
    assert await catalog.repositories.readable("alice", 2, "acme/public") == [
        "acme/secret",
        "acme/tools/ci",
    ]
    assert await catalog.repositories.readable("alice", None, "acme/b") == [
        "acme/public",
        "acme/secret",
        "acme/tools/ci",
        "globex/site",
    ]
    assert await catalog.repositories.readable("alice", 0) == []
    assert await catalog.repositories.readable(None, 10, "zzz") == []


async def test_the_catalog_follows_changes_at_once(catalog: Services) -> None:
    assert "acme/secret" not in await catalog.repositories.readable("bob")
    await catalog.repositories.grant("acme", "devs", "secret", READ)
    assert "acme/secret" in await catalog.repositories.readable("bob")
    await catalog.repositories.set_visibility(repo("acme/public"), PRIVATE)
    assert "acme/public" not in await catalog.repositories.readable(None)
