"""Image access settings and the pull decision, gathered from the database."""

from __future__ import annotations

import asyncio

import pytest

from imagegate.core.categories import Category, PublisherStatus
from imagegate.core.names import parse_repository
from imagegate.core.policy import ImageAccessSettings, Membership, Outcome
from imagegate.db import Database
from imagegate.services import AccessService, NotFound, PublisherService, Services


class RecordingPublishers(PublisherService):
    """Publisher status from a table, recording which namespaces were asked about."""

    def __init__(self, database: Database, statuses: dict[str, PublisherStatus]) -> None:
        super().__init__(database, "")
        self.statuses = statuses
        self.asked: list[str] = []

    async def status(self, namespace: str) -> PublisherStatus:
        self.asked.append(namespace)
        return self.statuses.get(namespace, PublisherStatus.COMMUNITY)


@pytest.fixture
def publishers(database: Database) -> RecordingPublishers:
    return RecordingPublishers(
        database,
        {
            "verifiedco": PublisherStatus.VERIFIED_PUBLISHER,
            "ossproject": PublisherStatus.SPONSORED_OSS,
        },
    )


@pytest.fixture
async def world(services: Services) -> Services:
    """acme (owner alice; bob, carol) and globex (owner gina; carol); dave is in no org."""
    for name in ("alice", "bob", "carol", "dave", "gina"):
        await services.accounts.create_user(name, None, "pw")
    await services.orgs.add_org("acme", "alice")
    await services.orgs.add_member("acme", "bob")
    await services.orgs.add_member("acme", "carol")
    await services.orgs.add_org("globex", "gina")
    await services.orgs.add_member("globex", "carol")
    return services


@pytest.fixture
def access(database: Database, publishers: RecordingPublishers) -> AccessService:
    return AccessService(database, publishers)


async def test_settings_start_from_docker_hubs_defaults(world: Services) -> None:
    assert await world.access.get_settings("acme") == ImageAccessSettings(
        enabled=False, allow_official=True, allow_verified_publishers=True, allow_community=False
    )


async def test_only_the_given_settings_change(world: Services) -> None:
    after = await world.access.set_settings("acme", enabled=True, allow_community=True)
    assert after == ImageAccessSettings(True, True, True, True)
    after = await world.access.set_settings("acme", allow_official=False)
    assert after == ImageAccessSettings(True, False, True, True)
    assert await world.access.get_settings("acme") == after
    assert await world.access.set_settings("acme") == after
    assert await world.access.get_settings("globex") == ImageAccessSettings()


async def test_settings_of_an_unknown_organization(world: Services) -> None:
    with pytest.raises(NotFound, match="organization 'nope' does not exist"):
        await world.access.get_settings("nope")
    with pytest.raises(NotFound):
        await world.access.set_settings("nope", enabled=True)


async def test_concurrent_changes_to_different_settings_all_apply(world: Services) -> None:
    for round_ in range(3):
        value = round_ % 2 == 0
        await asyncio.gather(
            world.access.set_settings("acme", enabled=value),
            world.access.set_settings("acme", allow_official=not value),
            world.access.set_settings("acme", allow_verified_publishers=not value),
            world.access.set_settings("acme", allow_community=value),
        )
        assert await world.access.get_settings("acme") == ImageAccessSettings(
            value, not value, not value, value
        )


async def test_the_requester_carries_memberships_owner_flags_and_settings(
    world: Services,
) -> None:
    await world.access.set_settings("globex", enabled=True)
    carol = await world.access.requester("carol")
    assert carol.username == "carol"
    assert list(carol.memberships) == [
        Membership("acme", False, ImageAccessSettings()),
        Membership("globex", False, ImageAccessSettings(enabled=True)),
    ]
    await world.orgs.add_member("acme", "carol", "owners")
    assert (await world.access.requester("carol")).memberships[0].is_owner
    assert (await world.access.requester("dave")).memberships == ()
    assert (await world.access.requester(None)).is_anonymous


async def test_namespace_org(world: Services) -> None:
    assert await world.access.namespace_org("acme") == "acme"
    assert await world.access.namespace_org("alice") is None  # a user, not an org
    assert await world.access.namespace_org("someone") is None


@pytest.mark.parametrize(
    ("user", "repository", "outcome", "org", "category"),
    [
        # acme restricts official images and community; globex is off.
        ("bob", "nginx", Outcome.DENIED, "acme", Category.OFFICIAL),
        ("bob", "verifiedco/tool", Outcome.ALLOWED, None, Category.VERIFIED_PUBLISHER),
        ("bob", "ossproject/tool", Outcome.DENIED, "acme", Category.SPONSORED_OSS),
        ("bob", "someone/tool", Outcome.DENIED, "acme", Category.COMMUNITY),
        ("bob", "acme/app", Outcome.ALLOWED, None, Category.ORGANIZATION),
        ("bob", "globex/app", Outcome.NOT_MEMBER, "globex", Category.COMMUNITY),
        ("alice", "someone/tool", Outcome.ALLOWED, None, Category.COMMUNITY),  # owner
        ("carol", "globex/app", Outcome.DENIED, "acme", Category.COMMUNITY),  # acme binds
        ("dave", "someone/tool", Outcome.ALLOWED, None, Category.COMMUNITY),
        ("dave", "acme/app", Outcome.NOT_MEMBER, "acme", Category.COMMUNITY),
        (None, "someone/tool", Outcome.ALLOWED, None, Category.COMMUNITY),
        (None, "acme/app", Outcome.UNAUTHENTICATED, "acme", Category.COMMUNITY),
    ],
)
async def test_decide_pull_across_memberships(
    world: Services,
    access: AccessService,
    user: str | None,
    repository: str,
    outcome: Outcome,
    org: str | None,
    category: Category,
) -> None:
    await world.access.set_settings("acme", enabled=True, allow_official=False)
    decision = await access.decide_pull(user, parse_repository(repository))
    assert (decision.outcome, decision.org, decision.category) == (outcome, org, category)


async def test_every_binding_policy_must_pass(world: Services, access: AccessService) -> None:
    community = parse_repository("someone/tool")
    await world.access.set_settings("acme", enabled=True, allow_community=True)
    assert (await access.decide_pull("carol", community)).allowed
    await world.access.set_settings("globex", enabled=True)
    decision = await access.decide_pull("carol", community)
    assert (decision.outcome, decision.org) == (Outcome.DENIED, "globex")
    assert decision.message == (
        "image access restricted: someone/tool blocked for organization globex: "
        "community images are not allowed"
    )


async def test_changes_apply_to_the_very_next_decision(
    world: Services, access: AccessService
) -> None:
    community = parse_repository("someone/tool")
    assert (await access.decide_pull("bob", community)).allowed
    await world.access.set_settings("acme", enabled=True)
    assert not (await access.decide_pull("bob", community)).allowed
    await world.orgs.add_member("acme", "bob", "owners")
    assert (await access.decide_pull("bob", community)).allowed
    await world.orgs.remove_member("acme", "bob")
    assert (await access.decide_pull("bob", community)).allowed  # in no org now


async def test_publisher_status_is_looked_up_only_when_a_policy_binds(
    world: Services, access: AccessService, publishers: RecordingPublishers
) -> None:
    await world.access.set_settings("acme", enabled=True)
    for user, repository in [
        ("dave", "verifiedco/tool"),  # bound by nothing
        ("alice", "verifiedco/tool"),  # owner
        (None, "verifiedco/tool"),  # anonymous
        ("bob", "nginx"),  # official by name
        ("bob", "library/nginx"),
        ("bob", "acme/app"),  # bob's own organization
        ("bob", "globex/app"),  # refused anyway: not a member
    ]:
        await access.decide_pull(user, parse_repository(repository))
    assert publishers.asked == []
    await access.decide_pull("bob", parse_repository("verifiedco/tool"))
    assert publishers.asked == ["verifiedco"]
