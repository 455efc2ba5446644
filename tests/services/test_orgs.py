"""Organizations, teams and members: names, owners, and concurrent changes."""

from __future__ import annotations

import asyncio

import pytest

from imagegate.services import AlreadyExists, InvalidInput, NotFound, Services
from imagegate.services.orgs import MemberInfo


async def _users(services: Services, *names: str) -> None:
    for name in names:
        await services.accounts.create_user(name, None, "pw")


async def test_a_new_organization_has_its_owner_in_the_owners_team(services: Services) -> None:
    await _users(services, "alice")
    org = await services.orgs.add_org("acme", "alice")
    assert org.name == "acme"
    assert await services.orgs.members("acme") == [MemberInfo("alice", ("owners",))]
    assert await services.orgs.teams("acme") == ["owners"]
    assert [o.name for o in await services.orgs.list_orgs()] == ["acme"]
    assert (await services.orgs.get_org("acme")).created_at == org.created_at


async def test_organization_names_are_checked_and_unique(services: Services) -> None:
    await _users(services, "alice")
    with pytest.raises(InvalidInput, match="invalid organization name"):
        await services.orgs.add_org("Acme", "alice")
    with pytest.raises(InvalidInput, match="reserved"):
        await services.orgs.add_org("library", "alice")
    with pytest.raises(AlreadyExists, match="taken by a user"):
        await services.orgs.add_org("alice", "alice")
    await services.orgs.add_org("acme", "alice")
    with pytest.raises(AlreadyExists, match="taken by an organization"):
        await services.orgs.add_org("acme", "alice")


async def test_an_unknown_owner_leaves_nothing_behind(services: Services) -> None:
    with pytest.raises(NotFound, match="user 'ghost' does not exist"):
        await services.orgs.add_org("acme", "ghost")
    with pytest.raises(NotFound):
        await services.orgs.get_org("acme")
    await _users(services, "acme")  # the name was not claimed either


async def test_members_join_the_members_team_by_default(services: Services) -> None:
    await _users(services, "alice", "bob", "carol")
    await services.orgs.add_org("acme", "alice")
    assert await services.orgs.add_member("acme", "bob")
    assert not await services.orgs.add_member("acme", "bob")  # already there: no change
    assert await services.orgs.add_member("acme", "carol", "owners")
    assert await services.orgs.add_member("acme", "carol", "build-team")
    assert await services.orgs.members("acme") == [
        MemberInfo("alice", ("owners",)),
        MemberInfo("bob", ("members",)),
        MemberInfo("carol", ("build-team", "owners")),
    ]
    assert [m.is_owner for m in await services.orgs.members("acme")] == [True, False, True]


@pytest.mark.parametrize(
    ("org", "user", "team", "error", "message"),
    [
        ("nope", "bob", "members", NotFound, "organization 'nope' does not exist"),
        ("acme", "ghost", "members", NotFound, "user 'ghost' does not exist"),
        ("acme", "bob", "Bad Team", InvalidInput, "invalid team name"),
    ],
)
async def test_adding_a_member_checks_everything(
    services: Services, org: str, user: str, team: str, error: type[Exception], message: str
) -> None:
    await _users(services, "alice", "bob")
    await services.orgs.add_org("acme", "alice")
    with pytest.raises(error, match=message):
        await services.orgs.add_member(org, user, team)
    assert len(await services.orgs.members("acme")) == 1


async def test_removing_a_member_takes_them_out_of_every_team(services: Services) -> None:
    await _users(services, "alice", "bob")
    await services.orgs.add_org("acme", "alice")
    await services.orgs.add_member("acme", "bob")
    await services.orgs.add_member("acme", "bob", "owners")
    assert await services.orgs.remove_member("acme", "bob") == ("members", "owners")
    assert await services.orgs.members("acme") == [MemberInfo("alice", ("owners",))]
    with pytest.raises(NotFound, match="not a member"):
        await services.orgs.remove_member("acme", "bob")


async def test_the_last_owner_cannot_be_removed(services: Services) -> None:
    await _users(services, "alice", "bob")
    await services.orgs.add_org("acme", "alice")
    with pytest.raises(InvalidInput, match="last owner"):
        await services.orgs.remove_member("acme", "alice")
    await services.orgs.add_member("acme", "bob", "owners")
    await services.orgs.remove_member("acme", "alice")
    assert await services.orgs.members("acme") == [MemberInfo("bob", ("owners",))]


async def test_concurrent_member_additions_lose_nothing(services: Services) -> None:
    names = [f"user{i:02d}" for i in range(20)]
    await _users(services, "alice", *names)
    await services.orgs.add_org("acme", "alice")
    added = await asyncio.gather(
        *(services.orgs.add_member("acme", name, "newteam") for name in names),
        *(services.orgs.add_member("acme", name, "newteam") for name in names[:5]),
    )
    assert sum(added) == len(names)  # each added once, the repeats changed nothing
    members = await services.orgs.members("acme")
    assert sorted(m.username for m in members if "newteam" in m.teams) == names
    assert await services.orgs.teams("acme") == ["newteam", "owners"]


async def test_two_owners_removing_each_other_at_once_leave_one(services: Services) -> None:
    await _users(services, "alice", "bob")
    await services.orgs.add_org("acme", "alice")
    await services.orgs.add_member("acme", "bob", "owners")
    results = await asyncio.gather(
        services.orgs.remove_member("acme", "alice"),
        services.orgs.remove_member("acme", "bob"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, InvalidInput) for r in results) == 1
    assert [m.is_owner for m in await services.orgs.members("acme")] == [True]


async def test_teams_are_added_empty_once(services: Services) -> None:
    await _users(services, "alice")
    await services.orgs.add_org("acme", "alice")
    await services.orgs.add_team("acme", "devs")
    assert await services.orgs.teams("acme") == ["devs", "owners"]
    assert await services.orgs.members("acme") == [MemberInfo("alice", ("owners",))]
    with pytest.raises(AlreadyExists, match="team 'devs' already exists in organization 'acme'"):
        await services.orgs.add_team("acme", "devs")
    with pytest.raises(AlreadyExists, match="team 'owners' already exists"):
        await services.orgs.add_team("acme", "owners")
    await services.orgs.add_team("acme", "members")  # created by the first member otherwise
    with pytest.raises(InvalidInput, match="invalid team name"):
        await services.orgs.add_team("acme", "Devs")
    with pytest.raises(NotFound, match="organization 'nope' does not exist"):
        await services.orgs.add_team("nope", "devs")
    assert await services.orgs.teams("acme") == ["devs", "members", "owners"]


async def test_concurrent_additions_of_one_team_create_it_once(services: Services) -> None:
    await _users(services, "alice")
    await services.orgs.add_org("acme", "alice")
    results = await asyncio.gather(
        *(services.orgs.add_team("acme", "devs") for _ in range(10)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if r is not None)
    assert await services.orgs.teams("acme") == ["devs", "owners"]
