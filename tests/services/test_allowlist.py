"""The repository allowlist: stored per organization in canonical form, read by decisions."""

from __future__ import annotations

import asyncio

import pytest

from imagegate.core.names import parse_repository
from imagegate.core.policy import Outcome
from imagegate.services import InvalidInput, NotFound, Services
from imagegate.services.allowlist import MAX_ENTRIES


@pytest.fixture
async def world(services: Services) -> Services:
    """acme (owner alice; bob) and globex (owner gina; bob); dave is in no org."""
    for name in ("alice", "bob", "dave", "gina"):
        await services.accounts.create_user(name, None, "pw")
    await services.orgs.add_org("acme", "alice")
    await services.orgs.add_member("acme", "bob")
    await services.orgs.add_org("globex", "gina")
    await services.orgs.add_member("globex", "bob")
    return services


async def test_entries_are_canonical_sorted_and_unique_per_org(world: Services) -> None:
    allowlist = world.allowlist
    assert await allowlist.list("acme") == []
    assert await allowlist.add("acme", "someone/tool") is True
    assert await allowlist.add("acme", "nginx") is True
    assert await allowlist.add("acme", "library/nginx") is False  # the same repository
    assert await allowlist.add("globex", "nginx") is True
    assert await allowlist.list("acme") == ["library/nginx", "someone/tool"]
    assert await allowlist.list("globex") == ["library/nginx"]
    assert await allowlist.remove("acme", "nginx") is True
    assert await allowlist.remove("acme", "nginx") is False
    assert await allowlist.list("acme") == ["someone/tool"]
    assert await allowlist.list("globex") == ["library/nginx"]


@pytest.mark.parametrize("name", ["", "Bad/Name", "a//b", "x" * 201, "a/b:tag", " a/b"])
async def test_invalid_names_are_refused(world: Services, name: str) -> None:
    with pytest.raises(InvalidInput):
        await world.allowlist.add("acme", name)
    with pytest.raises(InvalidInput):
        await world.allowlist.remove("acme", name)


async def test_unknown_organization(world: Services) -> None:
    for call in (
        world.allowlist.list("nobody"),
        world.allowlist.add("nobody", "a/b"),
        world.allowlist.remove("nobody", "a/b"),
    ):
        with pytest.raises(NotFound, match="organization 'nobody' does not exist"):
            await call


async def test_concurrent_adds_of_one_entry_add_it_once(world: Services) -> None:
    results = await asyncio.gather(*(world.allowlist.add("acme", "a/b") for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    assert await world.allowlist.list("acme") == ["a/b"]


async def test_the_list_is_bounded(world: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("imagegate.services.allowlist.MAX_ENTRIES", 2)
    await world.allowlist.add("acme", "a/one")
    await world.allowlist.add("acme", "a/two")
    with pytest.raises(InvalidInput, match="already holds 2 repositories"):
        await world.allowlist.add("acme", "a/three")
    assert MAX_ENTRIES >= 100


async def test_decide_pull_reads_the_allowlist_of_the_requesters_orgs(world: Services) -> None:
    tool = parse_repository("someone/tool")
    await world.access.set_settings("acme", enabled=True)
    assert (await world.access.decide_pull("bob", tool)).outcome is Outcome.DENIED
    await world.allowlist.add("acme", "someone/tool")
    decision = await world.access.decide_pull("bob", tool)
    assert decision.allowed and decision.reason == "someone/tool is on the allowlist of acme"
    # globex binds bob too once enabled: acme's allowlist does not speak for globex.
    await world.access.set_settings("globex", enabled=True)
    decision = await world.access.decide_pull("bob", tool)
    assert decision.outcome is Outcome.DENIED and decision.org == "globex"
    await world.allowlist.add("globex", "someone/tool")
    assert (await world.access.decide_pull("bob", tool)).allowed
    # another repository, and another org's allowlist, change nothing
    other = parse_repository("someone/other")
    assert not (await world.access.decide_pull("bob", other)).allowed
    await world.allowlist.remove("acme", "someone/tool")
    assert not (await world.access.decide_pull("bob", tool)).allowed
    # dave is in no organization: allowlists do not matter to him
    assert (await world.access.decide_pull("dave", other)).allowed


async def test_decide_pull_is_still_one_snapshot(
    world: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    snapshot = world.database.snapshot

    async def counting(*queries):  # type: ignore[no-untyped-def]
        calls.append(len(queries))
        return await snapshot(*queries)

    monkeypatch.setattr(world.database, "snapshot", counting)
    await world.allowlist.add("acme", "library/nginx")
    await world.access.set_settings("acme", enabled=True, allow_official=False)
    assert (await world.access.decide_pull("bob", parse_repository("nginx"))).allowed
    assert calls == [4]
