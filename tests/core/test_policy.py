"""The image access decision, for every category x role x setting combination."""

import itertools

import pytest

from imagegate.core.categories import Category, PublisherStatus
from imagegate.core.names import parse_repository
from imagegate.core.permissions import (
    HostedRepository,
    Permission,
    Visibility,
    effective_permission,
)
from imagegate.core.policy import (
    ImageAccessSettings,
    Location,
    Membership,
    Outcome,
    Requester,
    decide_pull,
    decide_write,
    judged_name,
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


# -- hosted repositories (issue 3) -------------------------------------------------------

MEMBER_ON = Membership("acme", False, ImageAccessSettings(enabled=True))
GLOBEX_STRICT = Membership("globex", False, ImageAccessSettings(enabled=True))


@pytest.mark.parametrize("visibility", list(Visibility))
@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("who", ["anonymous", "outsider", "member", "owner"])
def test_hosted_repository_reads(visibility: Visibility, permission: Permission, who: str) -> None:
    memberships = {
        "anonymous": [],
        "outsider": [],
        "member": [MEMBER_ON],
        "owner": [Membership("acme", True, ImageAccessSettings(enabled=True))],
    }[who]
    requester = Requester(None if who == "anonymous" else who, memberships)
    hosted = HostedRepository(visibility, permission)
    decision = decide_pull(
        requester, parse_repository("acme/app"), PublisherStatus.COMMUNITY, "acme", hosted
    )
    readable = visibility is Visibility.PUBLIC or permission >= Permission.READ
    if readable:
        assert decision.allowed, decision
        return
    expected = {
        "anonymous": Outcome.UNAUTHENTICATED,
        "outsider": Outcome.NOT_MEMBER,
        "member": Outcome.FORBIDDEN,
        "owner": Outcome.FORBIDDEN,
    }[who]
    assert decision.outcome is expected
    if who in ("anonymous", "outsider"):  # the same as for a name that does not exist
        assert (
            decision.message
            == decide_pull(
                requester, parse_repository("acme/app"), PublisherStatus.COMMUNITY, "acme"
            ).message
        )
        assert "acme/app does not exist or is private to organization acme" in decision.message
    else:  # members may know what their organization holds
        assert "acme/app is a private repository of organization acme" in decision.message


@pytest.mark.parametrize("who", ["anonymous", "outsider", "globex-owner"])
@pytest.mark.parametrize("path", ["secret", "absent"])
def test_outsiders_cannot_tell_a_private_repository_from_nothing(who: str, path: str) -> None:
    requester = {
        "anonymous": Requester(None),
        "outsider": Requester("mallory"),
        "globex-owner": Requester("mallory", [Membership("globex", True, ImageAccessSettings())]),
    }[who]
    repository = parse_repository(f"acme/{path}")
    private = HostedRepository(Visibility.PRIVATE, Permission.NONE)
    answers = {
        decide_pull(requester, repository, PublisherStatus.COMMUNITY, "acme", hosted, mirror=m)
        for hosted in (private, None)
        for m in (None, "acme-inc")
    }
    assert len(answers) == 1
    [decision] = answers
    assert decision.outcome in (Outcome.UNAUTHENTICATED, Outcome.NOT_MEMBER)
    assert decision.location is None  # nothing to mount from either
    assert decision.message.endswith(
        f"acme/{path} does not exist or is private to organization acme; "
        "sign in as a member who may read it"
        if who == "anonymous"
        else f"acme/{path} does not exist or is private to organization acme, "
        "and mallory is not a member of acme"
    )


# -- where a name is pulled from (issue 9) ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "owner", "mirror", "hosted", "expected"),
    [
        ("nginx", None, None, None, "library/nginx"),
        ("someone/tool", None, "elsewhere", None, "someone/tool"),
        ("acme/app", "acme", None, None, None),  # not the upstream's acme/app
        ("acme/app", "acme", "acme-inc", None, "acme-inc/app"),
        ("acme/team/app", "acme", "acme-inc", None, "acme-inc/team/app"),
        (
            "acme/app",
            "acme",
            "acme-inc",
            HostedRepository(Visibility.PRIVATE, Permission.READ),
            None,
        ),
    ],
)
def test_a_name_is_pulled_from_its_upstream_name(
    name: str,
    owner: str | None,
    mirror: str | None,
    hosted: HostedRepository | None,
    expected: str | None,
) -> None:
    member = Requester("bob", [Membership("acme", False, ImageAccessSettings())])
    decision = decide_pull(
        member, parse_repository(name), PublisherStatus.COMMUNITY, owner, hosted, mirror=mirror
    )
    assert decision.allowed
    assert decision.upstream == (parse_repository(expected) if expected else None)
    if owner is not None:
        assert decision.category is Category.ORGANIZATION
    # Where its content lives (a mount from it looks there): hosted, cached, or nowhere.
    location = (
        Location(decision.repository, hosted=True)
        if hosted is not None
        else Location(parse_repository(expected), hosted=False)
        if expected
        else None
    )
    assert decision.location == location


@pytest.mark.parametrize(
    ("mirror", "hosted", "publisher", "globex", "outcome", "category"),
    [
        # acme/app mirrored from library/app: an official image to globex
        ("library", False, PublisherStatus.COMMUNITY, {}, Outcome.ALLOWED, None),
        ("library", False, PublisherStatus.COMMUNITY, {"allow_official": False}, Outcome.DENIED,
         Category.OFFICIAL),
        # from acme-inc/app: as acme-inc's badge says (``publisher`` is acme-inc's status)
        ("acme-inc", False, PublisherStatus.VERIFIED_PUBLISHER, {}, Outcome.ALLOWED, None),
        ("acme-inc", False, PublisherStatus.COMMUNITY, {}, Outcome.DENIED, Category.COMMUNITY),
        ("acme-inc", False, PublisherStatus.SPONSORED_OSS, {}, Outcome.DENIED,
         Category.SPONSORED_OSS),
        # hosted here: acme/app itself, by acme's status, whatever acme mirrors
        ("library", True, PublisherStatus.COMMUNITY, {}, Outcome.DENIED, Category.COMMUNITY),
        ("library", True, PublisherStatus.VERIFIED_PUBLISHER, {}, Outcome.ALLOWED, None),
    ],
)  # fmt: skip
def test_other_organizations_judge_a_mirrored_name_as_its_upstream_name(
    mirror: str,
    hosted: bool,
    publisher: PublisherStatus,
    globex: dict[str, bool],
    outcome: Outcome,
    category: Category | None,
) -> None:
    """carol is in acme (which mirrors ``mirror``) and in globex, whose policy binds her:
    for globex, acme/app that is not hosted is the upstream's ``mirror``/app."""
    strict = Membership("globex", False, ImageAccessSettings(enabled=True, **globex))
    carol = Requester("carol", [Membership("acme", False, ImageAccessSettings()), strict])
    stored = HostedRepository(Visibility.PRIVATE, Permission.READ) if hosted else None
    app = parse_repository("acme/app")
    decision = decide_pull(carol, app, publisher, "acme", stored, mirror=mirror)
    assert decision.outcome is outcome, decision
    if outcome is Outcome.ALLOWED:
        assert decision.category is Category.ORGANIZATION  # acme's own image, to carol
        return
    assert (decision.org, decision.category) == ("globex", category)
    if not hosted:
        assert decision.reason.startswith(
            f"acme/app is mirrored from the upstream's {mirror}/app; "
        )
    judged = judged_name(app, "acme", stored, mirror)
    assert judged == (app if hosted else parse_repository(f"{mirror}/app"))


# -- repo:public_read tokens (issue 9, hole 3) ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "owner", "visibility", "outcome"),
    [
        ("nginx", None, None, Outcome.ALLOWED),
        ("someone/tool", None, None, Outcome.ALLOWED),
        ("acme/site", "acme", Visibility.PUBLIC, Outcome.ALLOWED),
        ("acme/app", "acme", Visibility.PRIVATE, Outcome.PUBLIC_ONLY),
        ("acme/upstream", "acme", None, Outcome.PUBLIC_ONLY),
        ("globex/secret", "globex", Visibility.PRIVATE, Outcome.NOT_MEMBER),
    ],
)
def test_a_public_read_token_reaches_public_repositories_only(
    name: str, owner: str | None, visibility: Visibility | None, outcome: Outcome
) -> None:
    member = Requester("bob", [Membership("acme", False, ImageAccessSettings())], public_only=True)
    hosted = None if visibility is None else HostedRepository(visibility, Permission.READ)
    if owner == "globex":
        hosted = HostedRepository(Visibility.PRIVATE, Permission.NONE)
    decision = decide_pull(
        member, parse_repository(name), PublisherStatus.COMMUNITY, owner, hosted, mirror="acme"
    )
    assert decision.outcome is outcome, decision
    if outcome is Outcome.PUBLIC_ONLY:
        assert decision.message.startswith(
            "requested access to the resource is denied: the access token can pull public "
            f"repositories only (scope repo:public_read), and {name} is "
        )


def test_a_public_read_token_is_still_bound_by_image_access() -> None:
    strict = Membership("acme", False, ImageAccessSettings(enabled=True, allow_official=False))
    decision = decide_pull(
        Requester("bob", [strict], public_only=True),
        parse_repository("nginx"),
        PublisherStatus.COMMUNITY,
        None,
    )
    assert decision.outcome is Outcome.DENIED


def test_public_org_repository_is_community_for_other_orgs() -> None:
    public = HostedRepository(Visibility.PUBLIC, Permission.NONE)
    carol = Requester("carol", [GLOBEX_STRICT])
    decision = decide_pull(
        carol, parse_repository("acme/app"), PublisherStatus.COMMUNITY, "acme", public
    )
    assert decision.outcome is Outcome.DENIED
    assert decision.message == (
        "image access restricted: acme/app blocked for organization globex: "
        "community images are not allowed"
    )
    verified = decide_pull(
        carol, parse_repository("acme/app"), PublisherStatus.VERIFIED_PUBLISHER, "acme", public
    )
    assert verified.allowed
    anonymous = decide_pull(
        Requester(None), parse_repository("acme/app"), PublisherStatus.COMMUNITY, "acme", public
    )
    assert anonymous.allowed


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("needed", [Permission.WRITE, Permission.ADMIN])
def test_writes_need_the_permission(permission: Permission, needed: Permission) -> None:
    bob = Requester("bob", [MEMBER_ON])
    decision = decide_write(
        bob, parse_repository("acme/app"), "acme", permission, needed, "push to"
    )
    if permission >= needed:
        assert decision.allowed
    else:
        assert decision.outcome is Outcome.FORBIDDEN
        assert decision.message.startswith(
            "requested access to the resource is denied: cannot push to acme/app: bob has "
        )
        assert f"this needs {needed.label}; ask an owner of acme" in decision.message


def test_writes_outside_org_namespaces() -> None:
    bob = Requester("bob", [MEMBER_ON])
    read_only = decide_write(
        bob, parse_repository("nginx"), None, Permission.NONE, Permission.WRITE, "push to"
    )
    assert read_only.outcome is Outcome.READ_ONLY
    assert "namespace library is served from the upstream registry and is read-only" in (
        read_only.message
    )
    outsider = decide_write(
        Requester("mallory"),
        parse_repository("acme/app"),
        "acme",
        Permission.NONE,
        Permission.WRITE,
        "push to",
    )
    assert outsider.outcome is Outcome.NOT_MEMBER
    assert "mallory is not a member of organization acme" in outsider.message
    anonymous = decide_write(
        Requester(None),
        parse_repository("acme/app"),
        "acme",
        Permission.NONE,
        Permission.WRITE,
        "push to",
    )
    assert anonymous.outcome is Outcome.UNAUTHENTICATED


def test_permissions() -> None:
    assert effective_permission(True, []) is Permission.ADMIN
    assert effective_permission(False, []) is Permission.NONE
    assert effective_permission(False, [Permission.READ, Permission.WRITE]) is Permission.WRITE
    assert Permission.parse("Admin") is Permission.ADMIN
    with pytest.raises(ValueError, match="use read, write or admin"):
        Permission.parse("none")


# --- the repository allowlist ------------------------------------------------------


def _listing(settings: ImageAccessSettings, repository: str) -> ImageAccessSettings:
    return ImageAccessSettings(
        settings.enabled,
        settings.allow_official,
        settings.allow_verified_publishers,
        settings.allow_community,
        frozenset({repository}),
    )


@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("settings", ALL_SETTINGS, ids=str)
@pytest.mark.parametrize("role", ["member", "owner"])
@pytest.mark.parametrize("listed", [True, False])
def test_an_allowlisted_repository_passes_its_orgs_policy_whatever_its_category(
    image: str, settings: ImageAccessSettings, role: str, listed: bool
) -> None:
    repository = IMAGES[image][0]
    other = "someone/else"  # an entry that must not match anything else
    acme = _listing(settings, repository if listed else other)
    decision = decide(Requester("alice", [Membership("acme", role == "owner", acme)]), image)
    if IMAGES[image][2] == "globex":  # the allowlist never opens another org's namespace
        assert decision.outcome is Outcome.NOT_MEMBER
        return
    refusal = expected_refusal([Membership("acme", role == "owner", settings)], image)
    if listed or refusal is None:
        assert decision.allowed, decision
    else:
        assert decision.outcome is Outcome.DENIED
        assert (decision.org, decision.reason) == refusal
    if listed and refusal is not None:
        assert decision.reason == f"{repository} is on the allowlist of acme"


@pytest.mark.parametrize("image", ["official", "verified", "sponsored", "community"])
@pytest.mark.parametrize("listed_by", [(), ("acme",), ("globex",), ("acme", "globex")])
def test_every_binding_policy_must_allow_or_allowlist(
    image: str, listed_by: tuple[str, ...]
) -> None:
    repository = IMAGES[image][0]
    strict = ImageAccessSettings(True, False, False, False)
    memberships = [
        Membership(org, False, _listing(strict, repository) if org in listed_by else strict)
        for org in ("acme", "globex")
    ]
    decision = decide(Requester("erin", memberships), image)
    missing = [org for org in ("acme", "globex") if org not in listed_by]
    if missing:
        assert decision.outcome is Outcome.DENIED
        assert decision.org == missing[0]
    else:
        assert decision.allowed
        assert decision.reason == f"{repository} is on the allowlist of acme, globex"


def test_the_allowlist_matches_the_canonical_name_only() -> None:
    strict = ImageAccessSettings(True, False, False, False, frozenset({"library/nginx"}))
    requester = Requester("frank", [Membership("acme", False, strict)])
    allowed = decide_pull(requester, parse_repository("nginx"), PublisherStatus.COMMUNITY, None)
    assert allowed.allowed
    other = decide_pull(
        requester, parse_repository("library/nginx-extra"), PublisherStatus.COMMUNITY, None
    )
    assert other.outcome is Outcome.DENIED


def test_anonymous_and_private_rules_ignore_the_allowlist() -> None:
    listed = ImageAccessSettings(True, False, False, False, frozenset({"acme/secret"}))
    private = HostedRepository(Visibility.PRIVATE, Permission.NONE)
    member = Requester("gail", [Membership("acme", False, listed)])
    decision = decide_pull(
        member, parse_repository("acme/secret"), PublisherStatus.COMMUNITY, "acme", private
    )
    assert decision.outcome is Outcome.FORBIDDEN
