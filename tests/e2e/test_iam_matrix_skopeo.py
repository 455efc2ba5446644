"""The Image Access Management matrix, pulled with real skopeo through ``imagegate serve``.

Every user (owner, member, member of two orgs, user in no org, anonymous) pulls every
category (official, verified publisher from Hub and from an admin override, sponsored
OSS, community, two organizations' own images) under each policy scenario. Scenarios are
applied with ``imagegate image-access set`` on the running gateway, never restarted.

Every cell of the tables is written out by hand: what a person would expect to happen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tests.e2e.world import (
    COMMUNITY_NOT_ALLOWED,
    IMAGE_KEYS,
    NOT_MEMBER,
    OFFICIAL_NOT_ALLOWED,
    OK,
    SIGN_IN,
    SPONSORED_NOT_ALLOWED,
    VERIFIED_NOT_ALLOWED,
    Expect,
    Seeded,
    blocked,
    check_pull,
    credentials,
)
from tests.support.clients import Skopeo
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e

ALL_ORGS = ("acme", "globex")
USERS: tuple[str | None, ...] = ("alice", "bob", "carol", "dave", "gina", None)

# Columns, in IMAGE_KEYS order:
#   official, verified, admin_verified, sponsored, community, acme/app, globex/tool
Row = tuple[Expect, Expect, Expect, Expect, Expect, Expect, Expect]

PUBLIC_OK = (OK, OK, OK, OK, OK)
# Whom IAM never binds here: acme's owner, globex's owner (while globex is off), the
# user in no org, and anonymous clients.
UNBOUND: dict[str | None, Row] = {
    "alice": (*PUBLIC_OK, OK, NOT_MEMBER),
    "dave": (*PUBLIC_OK, NOT_MEMBER, NOT_MEMBER),
    "gina": (*PUBLIC_OK, NOT_MEMBER, OK),
    None: (*PUBLIC_OK, SIGN_IN, SIGN_IN),
}


def _acme(reason: str) -> Expect:
    return blocked("acme", reason)


def _globex(reason: str) -> Expect:
    return blocked("globex", reason)


@dataclass(frozen=True)
class Scenario:
    name: str
    settings: dict[str, tuple[str, ...]]  # org -> `imagegate image-access set ORG` flags
    expected: dict[str | None, Row]
    # acme's settings as `image-access show --json` reports them, in Docker Hub's shape:
    # (enabled, allow_official_images, allow_verified_publishers), and community allowed
    acme_shown: tuple[bool, bool, bool, bool]

    def __str__(self) -> str:
        return self.name


SCENARIOS = (
    Scenario(
        "iam-disabled",
        {"acme": ("--disable",), "globex": ("--disable",)},
        {
            **UNBOUND,
            "bob": (*PUBLIC_OK, OK, NOT_MEMBER),
            "carol": (*PUBLIC_OK, OK, OK),
        },
        (False, True, True, False),
    ),
    # Enabling with no toggles: official and verified allowed, community restricted.
    # This must stay the first scenario that enables acme, so it sees the defaults.
    Scenario(
        "acme-enabled-defaults",
        {"acme": ("--enable",), "globex": ("--disable",)},
        {
            **UNBOUND,
            "bob": (
                OK,
                OK,
                OK,
                _acme(SPONSORED_NOT_ALLOWED),
                _acme(COMMUNITY_NOT_ALLOWED),
                OK,
                NOT_MEMBER,
            ),
            # globex/tool is an organization image for globex only; for acme it is community.
            "carol": (
                OK,
                OK,
                OK,
                _acme(SPONSORED_NOT_ALLOWED),
                _acme(COMMUNITY_NOT_ALLOWED),
                OK,
                _acme(COMMUNITY_NOT_ALLOWED),
            ),
        },
        (True, True, True, False),
    ),
    Scenario(
        "acme-official-restricted",
        {
            "acme": (
                "--enable",
                "--official=restricted",
                "--verified-publishers=allowed",
                "--community=restricted",
            ),
            "globex": ("--disable",),
        },
        {
            **UNBOUND,
            "bob": (
                _acme(OFFICIAL_NOT_ALLOWED),
                OK,
                OK,
                _acme(SPONSORED_NOT_ALLOWED),
                _acme(COMMUNITY_NOT_ALLOWED),
                OK,
                NOT_MEMBER,
            ),
            "carol": (
                _acme(OFFICIAL_NOT_ALLOWED),
                OK,
                OK,
                _acme(SPONSORED_NOT_ALLOWED),
                _acme(COMMUNITY_NOT_ALLOWED),
                OK,
                _acme(COMMUNITY_NOT_ALLOWED),
            ),
        },
        (True, False, True, False),
    ),
    Scenario(
        "acme-verified-restricted",
        {
            "acme": (
                "--enable",
                "--official=allowed",
                "--verified-publishers=restricted",
                "--community=restricted",
            ),
            "globex": ("--disable",),
        },
        {
            **UNBOUND,
            "bob": (
                OK,
                _acme(VERIFIED_NOT_ALLOWED),
                _acme(VERIFIED_NOT_ALLOWED),
                _acme(SPONSORED_NOT_ALLOWED),
                _acme(COMMUNITY_NOT_ALLOWED),
                OK,
                NOT_MEMBER,
            ),
            "carol": (
                OK,
                _acme(VERIFIED_NOT_ALLOWED),
                _acme(VERIFIED_NOT_ALLOWED),
                _acme(SPONSORED_NOT_ALLOWED),
                _acme(COMMUNITY_NOT_ALLOWED),
                OK,
                _acme(COMMUNITY_NOT_ALLOWED),
            ),
        },
        (True, True, False, False),
    ),
    Scenario(
        "acme-community-allowed",
        {
            "acme": (
                "--enable",
                "--official=allowed",
                "--verified-publishers=allowed",
                "--community=allowed",
            ),
            "globex": ("--disable",),
        },
        {
            **UNBOUND,
            "bob": (*PUBLIC_OK, OK, NOT_MEMBER),
            "carol": (*PUBLIC_OK, OK, OK),
        },
        (True, True, True, True),
    ),
    # Organization images stay allowed whatever the toggles say.
    Scenario(
        "acme-all-restricted",
        {
            "acme": (
                "--enable",
                "--official=restricted",
                "--verified-publishers=restricted",
                "--community=restricted",
            ),
            "globex": ("--disable",),
        },
        {
            **UNBOUND,
            "bob": (
                _acme(OFFICIAL_NOT_ALLOWED),
                _acme(VERIFIED_NOT_ALLOWED),
                _acme(VERIFIED_NOT_ALLOWED),
                _acme(SPONSORED_NOT_ALLOWED),
                _acme(COMMUNITY_NOT_ALLOWED),
                OK,
                NOT_MEMBER,
            ),
            "carol": (
                _acme(OFFICIAL_NOT_ALLOWED),
                _acme(VERIFIED_NOT_ALLOWED),
                _acme(VERIFIED_NOT_ALLOWED),
                _acme(SPONSORED_NOT_ALLOWED),
                _acme(COMMUNITY_NOT_ALLOWED),
                OK,
                _acme(COMMUNITY_NOT_ALLOWED),
            ),
        },
        (True, False, False, False),
    ),
    # Both orgs on, each refusing something the other allows: carol must pass both, and
    # each org's namespace is an organization image for that org only.
    Scenario(
        "both-orgs-enabled",
        {
            "acme": (
                "--enable",
                "--official=restricted",
                "--verified-publishers=allowed",
                "--community=allowed",
            ),
            "globex": (
                "--enable",
                "--official=allowed",
                "--verified-publishers=allowed",
                "--community=restricted",
            ),
        },
        {
            **UNBOUND,
            "bob": (_acme(OFFICIAL_NOT_ALLOWED), OK, OK, OK, OK, OK, NOT_MEMBER),
            "carol": (
                _acme(OFFICIAL_NOT_ALLOWED),
                OK,
                OK,
                _globex(SPONSORED_NOT_ALLOWED),
                _globex(COMMUNITY_NOT_ALLOWED),
                _globex(COMMUNITY_NOT_ALLOWED),
                OK,
            ),
        },
        (True, False, True, True),
    ),
)


@pytest.fixture(scope="module", params=SCENARIOS, ids=str)
def scenario(request: pytest.FixtureRequest, world_gateway: Gateway) -> Scenario:
    """Apply one scenario's settings to the running gateway (tests are grouped by it)."""
    chosen: Scenario = request.param
    for org in ALL_ORGS:
        world_gateway.set_image_access(org, *chosen.settings[org])
    return chosen


def test_every_scenario_covers_every_user_and_image() -> None:
    for chosen in SCENARIOS:
        assert set(chosen.expected) == set(USERS), chosen.name
        assert set(chosen.settings) == set(ALL_ORGS), chosen.name
        for row in chosen.expected.values():
            assert len(row) == len(IMAGE_KEYS), chosen.name


@pytest.mark.parametrize("image_key", IMAGE_KEYS)
@pytest.mark.parametrize("user", USERS, ids=lambda user: user or "anonymous")
def test_skopeo_pull(
    scenario: Scenario,
    user: str | None,
    image_key: str,
    world_gateway: Gateway,
    images: dict[str, Seeded],
    skopeo: Skopeo,
) -> None:
    image = images[image_key]
    expect = scenario.expected[user][IMAGE_KEYS.index(image_key)]
    result = skopeo.pull(image.reference(world_gateway.host), credentials(user))
    check_pull(result, expect, image)


def test_image_access_show_reports_the_scenario(scenario: Scenario, world_gateway: Gateway) -> None:
    shown = json.loads(world_gateway.cli("image-access", "show", "acme", "--json").stdout)
    enabled, official, verified, community = scenario.acme_shown
    assert shown["restricted_images"] == {
        "enabled": enabled,
        "allow_official_images": official,
        "allow_verified_publishers": verified,
    }, shown
    assert shown["allow_community_images"] is community, shown
