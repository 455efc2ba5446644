"""The image access decision, for every category x role x setting combination."""

import itertools

import pytest

from imagegate.core.categories import Category, PublisherStatus
from imagegate.core.names import parse_repository
from imagegate.core.policy import (
    ImageAccessSettings,
    Membership,
    Outcome,
    Requester,
    decide_pull,
)

ALL_SETTINGS = [
    ImageAccessSettings(enabled, official, verified, community)
    for enabled, official, verified, community in itertools.product([False, True], repeat=4)
]

# (repository, publisher status of its namespace, local org owning the namespace)
IMAGES = {
    "official": ("library/nginx", PublisherStatus.COMMUNITY, None),
    "verified": ("bitnami/redis", PublisherStatus.VERIFIED_PUBLISHER, None),
    "sponsored": ("curlimages/curl", PublisherStatus.SPONSORED_OSS, None),
    "community": ("someone/tool", PublisherStatus.COMMUNITY, None),
    "acme": ("acme/app", PublisherStatus.COMMUNITY, "acme"),
    "globex": ("globex/tool", PublisherStatus.COMMUNITY, "globex"),
    "globex-verified": ("globex/sdk", PublisherStatus.VERIFIED_PUBLISHER, "globex"),
}

# The toggle each category depends on, restated from Docker Hub's documentation.
TOGGLE = {
    "official": "allow_official",
    "verified": "allow_verified_publishers",
    "sponsored": "allow_community",
    "community": "allow_community",
}
REASONS = {
    "official": "Docker Official Images are not allowed",
    "verified": "Verified Publisher images are not allowed",
    "sponsored": "Sponsored OSS images count as community images, which are not allowed",
    "community": "community images are not allowed",
}


def kind_for(org: str, image: str) -> str:
    """How org ``org``'s policy sees ``image``: its own namespace, or the public category."""
    repository, publisher, owner = IMAGES[image]
    if owner == org:
        return "organization"
    if repository.startswith("library/"):
        return "official"
    return {
        PublisherStatus.VERIFIED_PUBLISHER: "verified",
        PublisherStatus.SPONSORED_OSS: "sponsored",
        PublisherStatus.COMMUNITY: "community",
    }[publisher]


def expected_refusal(memberships: list[Membership], image: str) -> tuple[str, str] | None:
    """(org, reason) of the first policy in name order that refuses, if any."""
    for m in sorted(memberships, key=lambda m: m.org):
        if m.is_owner or not m.settings.enabled:
            continue
        kind = kind_for(m.org, image)
        if kind == "organization":
            continue
        if not getattr(m.settings, TOGGLE[kind]):
            return m.org, REASONS[kind]
    return None


def decide(requester: Requester, image: str):  # type: ignore[no-untyped-def]
    name, publisher, owner = IMAGES[image]
    return decide_pull(requester, parse_repository(name), publisher, owner)


@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("settings", ALL_SETTINGS, ids=str)
@pytest.mark.parametrize("role", ["member", "owner"])
def test_one_org(image: str, settings: ImageAccessSettings, role: str) -> None:
    membership = Membership("acme", role == "owner", settings)
    requester = Requester("alice", [membership])
    decision = decide(requester, image)
    if IMAGES[image][2] == "globex":
        assert decision.outcome is Outcome.NOT_MEMBER
        assert "globex/" in decision.message and "alice is not a member" in decision.message
        return
    refusal = expected_refusal([membership], image)
    if refusal is None:
        assert decision.allowed, decision
    else:
        org, reason = refusal
        repository = IMAGES[image][0]
        assert decision.outcome is Outcome.DENIED
        assert decision.message == (
            f"image access restricted: {repository} blocked for organization {org}: {reason}"
        )


@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize(
    ("acme", "globex"), list(itertools.product(ALL_SETTINGS[8:], repeat=2))[::3], ids=str
)
@pytest.mark.parametrize("roles", [(False, False), (True, False), (False, True), (True, True)])
def test_two_orgs_must_both_pass(
    image: str, acme: ImageAccessSettings, globex: ImageAccessSettings, roles: tuple[bool, bool]
) -> None:
    memberships = [Membership("globex", roles[1], globex), Membership("acme", roles[0], acme)]
    decision = decide(Requester("bob", memberships), image)
    refusal = expected_refusal(memberships, image)
    if refusal is None:
        assert decision.allowed, decision
    else:
        assert decision.outcome is Outcome.DENIED
        assert (decision.org, decision.reason) == refusal


@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("anonymous", [True, False])
def test_no_org_policy_binds_outsiders(image: str, anonymous: bool) -> None:
    requester = Requester(None if anonymous else "carol", [])
    decision = decide(requester, image)
    owner = IMAGES[image][2]
    if owner is None:
        assert decision.allowed
    elif anonymous:
        assert decision.outcome is Outcome.UNAUTHENTICATED
        assert decision.message.startswith("authentication required: ")
    else:
        assert decision.outcome is Outcome.NOT_MEMBER


def test_org_image_is_organization_only_for_its_own_org() -> None:
    strict = ImageAccessSettings(enabled=True, allow_community=False)
    # dave belongs to both orgs: globex/tool is his own org's image for globex, but for
    # acme's policy it is a community image.
    dave = Requester(
        "dave", [Membership("acme", False, strict), Membership("globex", False, strict)]
    )
    decision = decide(dave, "globex")
    assert decision.outcome is Outcome.DENIED
    assert decision.org == "acme"
    assert decision.category is Category.COMMUNITY
    # With a verified publisher badge, acme's policy treats it as verified: allowed.
    assert decide(dave, "globex-verified").allowed


def test_allowed_decisions_say_why() -> None:
    enabled = ImageAccessSettings(enabled=True)
    assert (
        "owners" in decide(Requester("o", [Membership("acme", True, enabled)]), "community").reason
    )
    member = decide(Requester("m", [Membership("acme", False, enabled)]), "official")
    assert member.reason == "Docker Official Images are allowed by acme"
    assert member.category is Category.OFFICIAL
    assert decide(Requester("m", [Membership("acme", False, enabled)]), "acme").category is (
        Category.ORGANIZATION
    )


def test_enabling_starts_from_hub_defaults() -> None:
    settings = ImageAccessSettings(enabled=True)
    assert settings.allows(Category.OFFICIAL)
    assert settings.allows(Category.VERIFIED_PUBLISHER)
    assert settings.allows(Category.ORGANIZATION)
    assert not settings.allows(Category.COMMUNITY)
    assert not settings.allows(Category.SPONSORED_OSS)
    assert ImageAccessSettings().allows(Category.COMMUNITY)  # off by default
