"""A representative part of the IAM matrix, pulled with real podman (root, vfs storage).

podman pulls differently from skopeo (it stores layers, asks for the config, and has its
own error wording around the registry's message), so the cases that matter most are
repeated here: owners bypass, members get Hub's message, a member of two orgs answers to
both, outsiders and anonymous clients meet an organization's namespace, personal access
tokens, and a bare name.
"""

from __future__ import annotations

import pytest

from tests.e2e.world import (
    COMMUNITY_NOT_ALLOWED,
    NOT_MEMBER,
    OFFICIAL_NOT_ALLOWED,
    OK,
    SIGN_IN,
    SPONSORED_NOT_ALLOWED,
    Expect,
    Seeded,
    blocked,
    check_pull,
    credentials,
    denial_text,
)
from tests.support.clients import Podman
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gateway(world_gateway: Gateway) -> Gateway:
    """The world with acme's image access enabled on defaults; globex has it off."""
    world_gateway.set_image_access("acme", "--enable")
    world_gateway.set_image_access("globex", "--disable")
    return world_gateway


CASES: list[tuple[str | None, str, Expect]] = [
    ("alice", "community", OK),  # an owner bypasses the policy
    ("alice", "acme", OK),
    ("bob", "official", OK),
    ("bob", "verified", OK),
    ("bob", "admin_verified", OK),
    ("bob", "acme", OK),
    ("bob", "community", blocked("acme", COMMUNITY_NOT_ALLOWED)),
    ("bob", "sponsored", blocked("acme", SPONSORED_NOT_ALLOWED)),
    ("carol", "globex", blocked("acme", COMMUNITY_NOT_ALLOWED)),
    ("dave", "community", OK),  # in no organization: no policy binds them
    ("dave", "acme", NOT_MEMBER),
    ("gina", "globex", OK),
    (None, "community", OK),  # anonymous: bound by no organization's policy
    (None, "acme", SIGN_IN),
]


@pytest.mark.parametrize(
    ("user", "image_key", "expect"),
    CASES,
    ids=[f"{user or 'anonymous'}-{key}-{expect}" for user, key, expect in CASES],
)
def test_podman_pull(
    user: str | None,
    image_key: str,
    expect: Expect,
    gateway: Gateway,
    images: dict[str, Seeded],
    podman: Podman,
) -> None:
    image = images[image_key]
    result = podman.pull(image.reference(gateway.host), credentials(user))
    check_pull(result, expect, image)


def test_podman_pull_with_a_personal_access_token(
    gateway: Gateway, images: dict[str, Seeded], podman: Podman
) -> None:
    token = gateway.create_token("bob", description="podman e2e")
    allowed = podman.pull(images["official"].reference(gateway.host), ("bob", token))
    check_pull(allowed, OK, images["official"])
    # The token is bob: his organization's policy still applies to it.
    refused = podman.pull(images["community"].reference(gateway.host), ("bob", token))
    check_pull(refused, blocked("acme", COMMUNITY_NOT_ALLOWED), images["community"])


def test_podman_bare_name_means_library(
    gateway: Gateway, images: dict[str, Seeded], podman: Podman
) -> None:
    official = images["official"]
    result = podman.pull(f"{gateway.host}/alpine:{official.tag}", credentials("bob"))
    check_pull(result, OK, official)


def test_podman_sees_a_toggle_flipped_on_the_running_gateway(
    gateway: Gateway, images: dict[str, Seeded], podman: Podman
) -> None:
    official = images["official"]
    gateway.set_image_access("acme", "--official=restricted")
    try:
        refused = podman.pull(f"{gateway.host}/alpine:{official.tag}", credentials("bob"))
        # The bare name is checked as the canonical library/alpine.
        assert not refused.ok, refused.describe()
        text = denial_text(official.repository, "acme", OFFICIAL_NOT_ALLOWED)
        assert text in refused.stderr, refused.describe()
    finally:
        gateway.set_image_access("acme", "--official=allowed")
    allowed = podman.pull(official.reference(gateway.host), credentials("bob"))
    check_pull(allowed, OK, official)
