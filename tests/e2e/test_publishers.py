"""Publisher status end to end: Hub's badge, the admin override, and failing closed.

A member of an org with image access on defaults (verified allowed, community restricted)
pulls a namespace Hub calls a verified publisher. Overriding it to community restricts it
at once; a Hub that cannot be reached makes every badge unknown, which counts as
community; ``library`` stays official whatever an admin tries.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.world import (
    COMMUNITY_NOT_ALLOWED,
    OK,
    PASSWORDS,
    Seeded,
    blocked,
    check_pull,
    credentials,
)
from tests.support.clients import Skopeo
from tests.support.gateway import Gateway
from tests.support.hubstub import HubStub
from tests.support.process import free_port
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.e2e


def _configure(gateway: Gateway) -> None:
    """Just enough of the world: bob is a member of acme, which has image access on."""
    for user in ("alice", "bob"):
        gateway.add_user(user, PASSWORDS[user])
    gateway.add_org("acme", owner="alice")
    gateway.add_member("acme", "bob")
    gateway.set_image_access("acme", "--enable")


@pytest.fixture(scope="module")
def gateway(
    start_gateway: Callable[..., Gateway],
    upstream: UpstreamRegistry,
    hub: HubStub,
    images: dict[str, Seeded],
) -> Gateway:
    started = start_gateway(upstream_url=upstream.url, hub_api_url=hub.url)
    _configure(started)
    return started


def test_an_admin_override_beats_hubs_badge_on_the_next_pull(
    gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    verified = images["verified"]
    reference = verified.reference(gateway.host)
    check_pull(skopeo.pull(reference, credentials("bob")), OK, verified)

    gateway.set_publisher("verifiedco", "community")
    try:
        check_pull(
            skopeo.pull(reference, credentials("bob")),
            blocked("acme", COMMUNITY_NOT_ALLOWED),
            verified,
        )
    finally:
        gateway.set_publisher("verifiedco", "verified_publisher")
    check_pull(skopeo.pull(reference, credentials("bob")), OK, verified)


def test_library_is_always_official(
    gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    refused = gateway.cli("publisher", "set", "library", "community", check=False)
    assert refused.returncode != 0, refused.describe()
    assert "library" in refused.stderr, refused.describe()
    official = images["official"]
    check_pull(skopeo.pull(official.reference(gateway.host), credentials("bob")), OK, official)


def test_an_unreachable_hub_means_community(
    start_gateway: Callable[..., Gateway],
    upstream: UpstreamRegistry,
    images: dict[str, Seeded],
    skopeo: Skopeo,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    gateway = start_gateway(upstream_url=upstream.url, hub_api_url=nowhere)
    _configure(gateway)
    verified, admin_verified = images["verified"], images["admin_verified"]
    check_pull(
        skopeo.pull(verified.reference(gateway.host), credentials("bob")),
        blocked("acme", COMMUNITY_NOT_ALLOWED),
        verified,
    )
    # An override needs no Hub.
    gateway.set_publisher("adminpub", "verified_publisher")
    check_pull(
        skopeo.pull(admin_verified.reference(gateway.host), credentials("bob")),
        OK,
        admin_verified,
    )
    # Owners bypass the policy, outage or not.
    check_pull(skopeo.pull(verified.reference(gateway.host), credentials("alice")), OK, verified)
