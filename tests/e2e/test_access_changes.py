"""Changes on a running gateway, tokens, names, and refusals that must not leak content.

- A policy or membership change applies to the very next pull (no restart).
- Personal access tokens work where passwords do; wrong secrets do not.
- A bare name means ``library/NAME``, for pulls and for the policy.
- After a denial, the image's blobs and manifest are refused too, under that repository,
  and its layer cannot be read through another repository the user may pull.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message

import pytest

from tests.e2e.world import (
    COMMUNITY_NOT_ALLOWED,
    NOT_MEMBER,
    OFFICIAL_NOT_ALLOWED,
    OK,
    Seeded,
    blocked,
    check_pull,
    credentials,
    denial_text,
)
from tests.support.clients import Skopeo
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


@pytest.fixture
def gateway(world_gateway: Gateway) -> Gateway:
    """The world gateway with image access off, and the toggles back to their defaults."""
    for org in ("acme", "globex"):
        world_gateway.set_image_access(
            org,
            "--disable",
            "--official=allowed",
            "--verified-publishers=allowed",
            "--community=restricted",
        )
    return world_gateway


def test_a_policy_change_applies_to_the_next_pull(
    gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    community = images["community"]
    reference = community.reference(gateway.host)
    check_pull(skopeo.pull(reference, credentials("bob")), OK, community)

    gateway.set_image_access("acme", "--enable")
    check_pull(
        skopeo.pull(reference, credentials("bob")),
        blocked("acme", COMMUNITY_NOT_ALLOWED),
        community,
    )

    gateway.set_image_access("acme", "--community=allowed")
    check_pull(skopeo.pull(reference, credentials("bob")), OK, community)

    gateway.set_image_access("acme", "--community=restricted")
    check_pull(
        skopeo.pull(reference, credentials("bob")),
        blocked("acme", COMMUNITY_NOT_ALLOWED),
        community,
    )
    gateway.set_image_access("acme", "--disable")
    check_pull(skopeo.pull(reference, credentials("bob")), OK, community)


def test_a_membership_change_applies_to_the_next_pull(
    gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    acme_app, community = images["acme"], images["community"]
    gateway.set_image_access("acme", "--enable")
    check_pull(
        skopeo.pull(acme_app.reference(gateway.host), credentials("dave")), NOT_MEMBER, acme_app
    )
    check_pull(skopeo.pull(community.reference(gateway.host), credentials("dave")), OK, community)

    gateway.add_member("acme", "dave")
    try:
        check_pull(skopeo.pull(acme_app.reference(gateway.host), credentials("dave")), OK, acme_app)
        # Now a member, dave is bound by acme's policy.
        check_pull(
            skopeo.pull(community.reference(gateway.host), credentials("dave")),
            blocked("acme", COMMUNITY_NOT_ALLOWED),
            community,
        )
    finally:
        gateway.remove_member("acme", "dave")

    check_pull(
        skopeo.pull(acme_app.reference(gateway.host), credentials("dave")), NOT_MEMBER, acme_app
    )
    check_pull(skopeo.pull(community.reference(gateway.host), credentials("dave")), OK, community)


def test_an_owner_made_with_team_owners_bypasses_the_policy(
    gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    community = images["community"]
    gateway.set_image_access("acme", "--enable")
    gateway.add_user("olga", "olga-Pa55word")
    gateway.add_member("acme", "olga")
    reference = community.reference(gateway.host)
    check_pull(
        skopeo.pull(reference, ("olga", "olga-Pa55word")),
        blocked("acme", COMMUNITY_NOT_ALLOWED),
        community,
    )
    gateway.remove_member("acme", "olga")
    gateway.add_member("acme", "olga", team="owners")
    check_pull(skopeo.pull(reference, ("olga", "olga-Pa55word")), OK, community)


def test_personal_access_tokens_work_as_passwords(
    gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    official, community = images["official"], images["community"]
    token = gateway.create_token("carol", description="skopeo e2e")
    assert token not in (gateway.log_tail(limit=10**9)), "the token must not be logged"

    check_pull(skopeo.pull(official.reference(gateway.host), ("carol", token)), OK, official)
    check_pull(
        skopeo.pull(images["globex"].reference(gateway.host), ("carol", token)),
        OK,
        images["globex"],
    )

    gateway.set_image_access("globex", "--enable")
    check_pull(
        skopeo.pull(community.reference(gateway.host), ("carol", token)),
        blocked("globex", COMMUNITY_NOT_ALLOWED),
        community,
    )


@pytest.mark.parametrize(
    "secret",
    ["wrong-password", "not-a-real-token-0123456789abcdef"],
    ids=["wrong-password", "unknown-token"],
)
def test_wrong_secrets_are_refused(
    secret: str, gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    result = skopeo.pull(images["official"].reference(gateway.host), ("bob", secret))
    assert not result.ok, result.describe()
    assert "unauthorized" in result.stderr.lower(), result.describe()


def test_a_bare_name_means_library(
    gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    official = images["official"]
    bare = f"{gateway.host}/alpine:{official.tag}"
    check_pull(skopeo.pull(bare, credentials("bob")), OK, official)
    check_pull(skopeo.pull(bare), OK, official)
    raw = skopeo.inspect_raw(bare)
    assert raw.ok, raw.describe()
    assert raw.digest == official.digest, raw.describe()

    # The policy sees the canonical name, whatever the client typed.
    gateway.set_image_access("acme", "--enable", "--official=restricted")
    refused = skopeo.pull(bare, credentials("bob"))
    assert not refused.ok, refused.describe()
    assert denial_text("library/alpine", "acme", OFFICIAL_NOT_ALLOWED) in refused.stderr, (
        refused.describe()
    )


# -- refusals leak nothing: plain HTTP with a token from /token ---------------------------


def _token(gateway: Gateway, repository: str, user: str | None) -> str:
    query = urllib.parse.urlencode(
        {"service": "imagegate", "scope": f"repository:{repository}:pull"}
    )
    request = urllib.request.Request(f"{gateway.url}/token?{query}")
    creds = credentials(user)
    if creds is not None:
        basic = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    return str(body.get("token") or body["access_token"])


def _get(url: str, token: str, method: str = "GET") -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header(
        "Accept",
        "application/vnd.oci.image.manifest.v1+json, "
        "application/vnd.docker.distribution.manifest.v2+json",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _assert_denied(answer: tuple[int, Message, bytes], message: str, what: str) -> None:
    status, headers, body = answer
    assert status == 403, f"{what}: HTTP {status} {body[:300]!r}"
    if body:
        errors = json.loads(body)["errors"]
        assert errors[0]["code"] == "DENIED", f"{what}: {errors}"
        assert errors[0]["message"] == message, f"{what}: {errors}"
    challenge = headers.get("WWW-Authenticate", "")
    assert message in challenge, f"{what}: WWW-Authenticate is {challenge!r}"


def test_a_denied_image_leaks_no_blob_or_manifest(
    gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    community, official = images["community"], images["official"]
    # Someone allowed pulls it first, so every blob of it is in the gateway's cache.
    check_pull(skopeo.pull(community.reference(gateway.host), credentials("dave")), OK, community)
    gateway.set_image_access("acme", "--enable")
    check_pull(
        skopeo.pull(community.reference(gateway.host), credentials("bob")),
        blocked("acme", COMMUNITY_NOT_ALLOWED),
        community,
    )

    message = denial_text(community.repository, "acme", COMMUNITY_NOT_ALLOWED).removeprefix(
        "denied: "
    )
    token = _token(gateway, community.repository, "bob")
    base = f"{gateway.url}/v2/{community.repository}"
    layer = community.layer_digests[0]
    _assert_denied(_get(f"{base}/blobs/{layer}", token), message, "blob GET")
    _assert_denied(_get(f"{base}/blobs/{layer}", token, "HEAD"), message, "blob HEAD")
    _assert_denied(_get(f"{base}/manifests/{community.digest}", token), message, "manifest GET")
    _assert_denied(
        _get(f"{base}/manifests/{community.tag}", token, "HEAD"), message, "manifest HEAD"
    )
    _assert_denied(_get(f"{base}/tags/list", token), message, "tags list")

    # The digest opens no other door: not through a repository bob may pull.
    other_token = _token(gateway, official.repository, "bob")
    own_layer = f"{gateway.url}/v2/{official.repository}/blobs/{official.layer_digests[0]}"
    assert _get(own_layer, other_token)[0] == 200, "bob may read library/alpine's own layer"
    status, _, body = _get(f"{gateway.url}/v2/{official.repository}/blobs/{layer}", other_token)
    assert status == 404, f"the layer of {community.repository} through library/alpine: {status}"
    assert json.loads(body)["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_an_organization_blob_needs_membership(
    gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    acme_app = images["acme"]
    check_pull(skopeo.pull(acme_app.reference(gateway.host), credentials("bob")), OK, acme_app)
    layer_url = f"{gateway.url}/v2/{acme_app.repository}/blobs/{acme_app.layer_digests[0]}"

    status, headers, _ = _get(layer_url, _token(gateway, acme_app.repository, None))
    assert status == 401, f"anonymous blob GET of an organization image: {status}"
    assert headers.get("WWW-Authenticate", "").startswith("Bearer "), headers

    status, _, body = _get(layer_url, _token(gateway, acme_app.repository, "dave"))
    assert status == 403, f"non-member blob GET of an organization image: {status}"
    assert json.loads(body)["errors"][0]["code"] == "DENIED"

    status, headers, body = _get(layer_url, _token(gateway, acme_app.repository, "bob"))
    assert status == 200, f"member blob GET: {status} {body[:200]!r}"
    assert headers["Docker-Content-Digest"] == acme_app.layer_digests[0]
