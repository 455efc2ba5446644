"""Image access settings and the pull decision, gathered from the database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from imagegate.core.categories import Category, PublisherStatus
from imagegate.core.names import parse_repository
from imagegate.core.permissions import HostedRepository, Permission, Visibility
from imagegate.core.policy import ImageAccessSettings, Membership, Outcome
from imagegate.db import Database
from imagegate.services import AccessService, NotFound, PublisherService, Services


class RecordingPublishers(PublisherService):
    """Docker Hub's badges from a table (admin overrides from the database, as always),
    recording which namespaces were asked about."""

    def __init__(self, database: Database, statuses: dict[str, PublisherStatus]) -> None:
        super().__init__(database, "")
        self.statuses = statuses
        self.asked: list[str] = []

    async def status(self, namespace: str, *, ask_hub: bool = True) -> PublisherStatus:
        self.asked.append(namespace)
        if not ask_hub:
            return await super().status(namespace, ask_hub=False)
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


async def test_a_mirrored_name_is_judged_by_the_upstream_namespaces_status(
    world: Services, access: AccessService, publishers: RecordingPublishers
) -> None:
    """carol is in acme and globex; globex's policy binds her. acme/app, that acme
    mirrors from the upstream's verifiedco (or library, or ossproject), is verifiedco/app
    to globex: its status is asked about, never acme's."""
    publishers.statuses["acme"] = PublisherStatus.VERIFIED_PUBLISHER
    await world.access.set_settings("globex", enabled=True, allow_official=False)
    app = parse_repository("acme/app")
    for mirror, asked, outcome, category in [
        ("verifiedco", ["verifiedco"], Outcome.ALLOWED, Category.ORGANIZATION),
        ("ossproject", ["ossproject"], Outcome.DENIED, Category.SPONSORED_OSS),
        ("library", [], Outcome.DENIED, Category.OFFICIAL),  # official by name
    ]:
        await world.access.set_upstream_namespace("acme", mirror)
        publishers.asked.clear()
        decision = await access.decide_pull("carol", app)
        assert (decision.outcome, decision.category) == (outcome, category), mirror
        assert publishers.asked == asked
        if decision.allowed:
            assert decision.upstream == parse_repository(f"{mirror}/app")
    # Hosted here, acme/app is acme's own: then acme's status is the one that counts, and
    # only an admin's override gives it one (Hub's "acme" may be anyone's).
    await world.repositories.ensure(app)
    publishers.asked.clear()
    decision = await access.decide_pull("carol", app)
    assert decision.outcome is Outcome.FORBIDDEN  # private, and carol may not read it
    await world.repositories.set_visibility(app, Visibility.PUBLIC)
    publishers.asked.clear()
    decision = await access.decide_pull("carol", app)
    assert (decision.outcome, decision.category) == (Outcome.DENIED, Category.COMMUNITY)
    assert publishers.asked == ["acme"]
    await world.publishers.set_override("acme", PublisherStatus.VERIFIED_PUBLISHER)
    decision = await access.decide_pull("carol", app)
    assert decision.allowed


# Hosted repositories: acme/app (private), acme/site (public); globex/api (private).
# bob is in acme's devs team, carol in acme's members only; dave is in no org.
@pytest.fixture
async def hosted(world: Services) -> Services:
    await world.orgs.add_team("acme", "devs")
    await world.orgs.add_member("acme", "bob", "devs")
    await world.repositories.ensure(parse_repository("acme/app"))
    await world.repositories.set_visibility(parse_repository("acme/site"), Visibility.PUBLIC)
    await world.repositories.ensure(parse_repository("globex/api"))
    return world


NONE, READ, WRITE, ADMIN = Permission.NONE, Permission.READ, Permission.WRITE, Permission.ADMIN


@pytest.mark.parametrize(
    ("user", "grant", "repository", "outcome", "permission"),
    [
        # private: owners, and members whose team may read
        ("alice", None, "acme/app", Outcome.ALLOWED, ADMIN),
        ("bob", ("app", READ), "acme/app", Outcome.ALLOWED, READ),
        ("bob", (None, WRITE), "acme/app", Outcome.ALLOWED, WRITE),
        ("bob", ("site", ADMIN), "acme/app", Outcome.FORBIDDEN, NONE),
        ("bob", None, "acme/app", Outcome.FORBIDDEN, NONE),
        ("carol", ("app", READ), "acme/app", Outcome.FORBIDDEN, NONE),  # another team's
        ("dave", (None, ADMIN), "acme/app", Outcome.NOT_MEMBER, NONE),
        ("gina", None, "acme/app", Outcome.NOT_MEMBER, NONE),
        (None, (None, READ), "acme/app", Outcome.UNAUTHENTICATED, NONE),
        # public: everyone, anonymous included
        ("alice", None, "acme/site", Outcome.ALLOWED, ADMIN),
        ("bob", ("site", WRITE), "acme/site", Outcome.ALLOWED, WRITE),
        ("bob", None, "acme/site", Outcome.ALLOWED, NONE),
        ("dave", None, "acme/site", Outcome.ALLOWED, NONE),
        ("gina", None, "acme/site", Outcome.ALLOWED, NONE),
        (None, None, "acme/site", Outcome.ALLOWED, NONE),
    ],
)
async def test_hosted_pull_matrix(
    hosted: Services,
    access: AccessService,
    user: str | None,
    grant: tuple[str | None, Permission] | None,
    repository: str,
    outcome: Outcome,
    permission: Permission,
) -> None:
    if grant is not None:
        await hosted.repositories.grant("acme", "devs", *grant)
    name = parse_repository(repository)
    decision = await access.decide_pull(user, name)
    assert decision.outcome is outcome, decision.reason
    visibility = Visibility.PUBLIC if repository == "acme/site" else Visibility.PRIVATE
    if decision.allowed:
        assert decision.hosted == HostedRepository(visibility, permission)
    if user is not None:  # the service and the decision agree on the permission
        assert await hosted.repositories.permission(user, name) is permission


async def test_refusals_of_a_private_repository_say_why(
    hosted: Services, access: AccessService
) -> None:
    app = parse_repository("acme/app")
    assert (await access.decide_pull("bob", app)).message == (
        "requested access to the resource is denied: acme/app is a private repository of "
        "organization acme, and no team of bob has read permission on it"
    )
    assert "dave is not a member" in (await access.decide_pull("dave", app)).message
    assert "sign in" in (await access.decide_pull(None, app)).message


async def test_a_name_not_hosted_in_an_org_namespace_stays_member_readable(
    hosted: Services, access: AccessService
) -> None:
    upstream = parse_repository("acme/from-upstream")
    decision = await access.decide_pull("carol", upstream)
    assert decision.allowed and decision.hosted is None
    assert (await access.decide_pull("dave", upstream)).outcome is Outcome.NOT_MEMBER
    assert (await access.decide_pull(None, upstream)).outcome is Outcome.UNAUTHENTICATED


async def test_a_public_repository_is_a_community_image_to_other_organizations(
    hosted: Services, access: AccessService, publishers: RecordingPublishers
) -> None:
    site = parse_repository("acme/site")
    await hosted.access.set_settings("globex", enabled=True)
    await hosted.orgs.add_member("globex", "dave")
    decision = await access.decide_pull("dave", site)
    assert (decision.outcome, decision.org, decision.category) == (
        Outcome.DENIED,
        "globex",
        Category.COMMUNITY,
    )
    assert publishers.asked == ["acme"]
    # Docker Hub's badge for "acme" is someone else's: it says nothing about what is
    # stored here; an admin's override does.
    publishers.statuses["acme"] = PublisherStatus.VERIFIED_PUBLISHER
    assert (await access.decide_pull("dave", site)).category is Category.COMMUNITY
    await hosted.publishers.set_override("acme", PublisherStatus.VERIFIED_PUBLISHER)
    decision = await access.decide_pull("dave", site)
    assert decision.allowed and decision.category is Category.VERIFIED_PUBLISHER
    # acme's own members: an organization image, whatever globex says
    await hosted.orgs.add_member("globex", "bob")
    assert (await access.decide_pull("bob", site)).category is Category.ORGANIZATION


async def test_hosted_access_changes_apply_to_the_very_next_decision(
    hosted: Services, access: AccessService
) -> None:
    app = parse_repository("acme/app")
    assert not (await access.decide_pull(None, app)).allowed
    await hosted.repositories.set_visibility(app, Visibility.PUBLIC)
    assert (await access.decide_pull(None, app)).allowed
    await hosted.repositories.set_visibility(app, Visibility.PRIVATE)
    assert not (await access.decide_pull("bob", app)).allowed
    await hosted.repositories.grant("acme", "devs", "app", READ)
    assert (await access.decide_pull("bob", app)).allowed
    await hosted.repositories.revoke("acme", "devs", "app")
    assert not (await access.decide_pull("bob", app)).allowed


@pytest.mark.parametrize(
    ("user", "grant", "repository", "needed", "outcome"),
    [
        ("alice", None, "acme/app", ADMIN, Outcome.ALLOWED),
        ("alice", None, "acme/new", WRITE, Outcome.ALLOWED),  # a first push
        ("bob", ("app", WRITE), "acme/app", WRITE, Outcome.ALLOWED),
        ("bob", (None, WRITE), "acme/new", WRITE, Outcome.ALLOWED),
        ("bob", ("app", WRITE), "acme/app", ADMIN, Outcome.FORBIDDEN),
        ("bob", ("app", ADMIN), "acme/app", ADMIN, Outcome.ALLOWED),
        ("bob", ("app", READ), "acme/app", WRITE, Outcome.FORBIDDEN),
        ("bob", ("app", WRITE), "acme/new", WRITE, Outcome.FORBIDDEN),
        ("carol", None, "acme/site", WRITE, Outcome.FORBIDDEN),  # public is not writable
        ("dave", None, "acme/app", WRITE, Outcome.NOT_MEMBER),
        ("gina", None, "acme/app", WRITE, Outcome.NOT_MEMBER),
        (None, None, "acme/app", WRITE, Outcome.UNAUTHENTICATED),
        ("alice", None, "library/nginx", WRITE, Outcome.READ_ONLY),
        ("alice", None, "alice/app", WRITE, Outcome.READ_ONLY),  # a user's namespace
        ("alice", None, "someone/app", WRITE, Outcome.READ_ONLY),
        (None, None, "someone/app", WRITE, Outcome.READ_ONLY),
    ],
)
async def test_decide_write(
    hosted: Services,
    access: AccessService,
    user: str | None,
    grant: tuple[str | None, Permission] | None,
    repository: str,
    needed: Permission,
    outcome: Outcome,
) -> None:
    if grant is not None:
        await hosted.repositories.grant("acme", "devs", *grant)
    action = "push to" if needed is WRITE else "delete from"
    decision = await access.decide_write(user, parse_repository(repository), needed, action)
    assert decision.outcome is outcome, decision.reason


async def test_write_refusals_say_why(hosted: Services, access: AccessService) -> None:
    app = parse_repository("acme/app")
    await hosted.repositories.grant("acme", "devs", "app", WRITE)
    decision = await access.decide_write("bob", app, ADMIN, "delete from")
    assert decision.message == (
        "requested access to the resource is denied: cannot delete from acme/app: bob has "
        "only write permission on it, and this needs admin; ask an owner of acme"
    )
    decision = await access.decide_write("carol", app, WRITE, "push to")
    assert "carol has no permission on it" in decision.message
    decision = await access.decide_write("dave", app, WRITE, "push to")
    assert "dave is not a member of organization acme" in decision.message
    decision = await access.decide_write("bob", parse_repository("nginx"), WRITE, "push to")
    assert "is served from the upstream registry and is read-only" in decision.message


async def test_each_decision_is_one_snapshot(
    hosted: Services,
    access: AccessService,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One round trip (one thread hop on SQLite) per decision, and no other reads."""
    snapshots: list[int] = []
    reads: list[None] = []
    real_snapshot, real_read = database.snapshot, database.read

    async def counting_snapshot(*queries: Any) -> Any:
        snapshots.append(len(queries))
        return await real_snapshot(*queries)

    def counting_read() -> Any:
        reads.append(None)
        return real_read()

    await hosted.repositories.grant("acme", "devs", None, WRITE)
    monkeypatch.setattr(database, "snapshot", counting_snapshot)
    monkeypatch.setattr(database, "read", counting_read)
    for user in ("alice", "bob", "dave", None):
        for name in ("acme/app", "acme/site", "acme/other", "someone/tool"):
            repository = parse_repository(name)
            await access.decide_pull(user, repository)
            await access.decide_write(user, repository, WRITE, "push to")
    assert len(snapshots) == 4 * 4 * 2
    # PostgreSQL snapshots are read transactions; SQLite ones bypass them.
    assert len(reads) == (len(snapshots) if database.backend == "postgresql" else 0)


async def test_the_facts_are_read_once_until_anything_changes(
    world: Services, access: AccessService, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision runs every time; what it reads comes from the database once, then
    again only after a change (here by another service object, as another process would)."""
    reads = 0
    snapshot = database.snapshot

    async def counted(*queries: Any) -> Any:
        nonlocal reads
        reads += 1
        return await snapshot(*queries)

    monkeypatch.setattr(database, "snapshot", counted)
    app = parse_repository("acme/app")
    assert (await access.decide_pull("bob", app)).orgs == ("acme",)
    assert (await access.decide_pull("bob", app)).orgs == ("acme",)
    assert reads == 1
    await world.orgs.remove_member("acme", "bob")
    assert (await access.decide_pull("bob", app)).orgs == ()
    assert reads == 2
