"""Content discovery (spec section 4): tags list and its pagination, the referrers API
(subjects pushed after their referrers, artifactType derivation and filtering), and the
catalog, which lists only what the caller may read."""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

import pytest

from tests.conformance.checks import random_bytes
from tests.conformance.conftest import Registry
from tests.support.images import (
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    build_image,
    build_referrer,
)
from tests.support.oci import (
    Answer,
    OciClient,
    digest_of,
    expect,
    push_blob,
    push_image,
    put_manifest,
)

pytestmark = pytest.mark.e2e

REPO = "conf/discovery"
TAGS = sorted(["1.0", "1.1", "2.0", "alpha", "beta", "latest", "sha256-abc", "v1", "v2"])
LINK = re.compile(r'<(?P<url>[^>]+)>;\s*rel="next"')
TYPE_A = "application/vnd.example.sbom.v1"
TYPE_B = "application/vnd.example.signature.v1"


def tags_of(answer: Answer) -> list[str]:
    expect(answer, 200)
    body = answer.json()
    assert body["name"] == REPO, answer.describe()
    return list(body["tags"] or [])


def next_link(answer: Answer) -> str | None:
    header = answer.header("Link")
    if header is None:
        return None
    match = LINK.search(header)
    assert match, f'Link must read <url>; rel="next"\n{answer.describe()}'
    return match["url"]


@pytest.fixture(scope="module")
def tagged(registry: Registry) -> Image:
    image = build_image("conformance-tags")
    push_image(registry.pusher, REPO, TAGS[0], image)
    for tag in TAGS[1:]:
        expect(put_manifest(registry.pusher, REPO, tag, image.manifest, image.media_type), 201)
    return image


# -- tags ------------------------------------------------------------------------------------


def test_tags_list_is_every_tag_in_order(registry: Registry, tagged: Image) -> None:
    answer = registry.pusher.get(f"/v2/{REPO}/tags/list")
    assert tags_of(answer) == TAGS
    assert answer.header("Link") is None


@pytest.mark.parametrize("n", [1, 2, 4, len(TAGS), len(TAGS) + 5])
def test_n_gives_exactly_n_and_links_the_rest(registry: Registry, tagged: Image, n: int) -> None:
    collected: list[str] = []
    url: str | None = f"/v2/{REPO}/tags/list?n={n}"
    pages = 0
    while url is not None:
        answer = registry.pusher.get(url)
        page = tags_of(answer)
        url = next_link(answer)
        assert len(page) == n or (url is None and len(page) <= n), answer.describe()
        collected += page
        pages += 1
        assert pages <= len(TAGS) + 1, "the Link chain does not end"
    assert collected == TAGS


def test_n_zero_is_an_empty_list_without_link(registry: Registry, tagged: Image) -> None:
    answer = registry.pusher.get(f"/v2/{REPO}/tags/list?n=0")
    assert tags_of(answer) == []
    assert answer.header("Link") is None


def test_last_without_n_is_everything_after(registry: Registry, tagged: Image) -> None:
    middle = TAGS[len(TAGS) // 2]
    answer = registry.pusher.get(f"/v2/{REPO}/tags/list?last={urllib.parse.quote(middle)}")
    assert tags_of(answer) == TAGS[len(TAGS) // 2 + 1 :]


def test_n_and_last(registry: Registry, tagged: Image) -> None:
    answer = registry.pusher.get(f"/v2/{REPO}/tags/list?n=2&last={TAGS[2]}")
    assert tags_of(answer) == TAGS[3:5]
    last_page = registry.pusher.get(f"/v2/{REPO}/tags/list?n=5&last={TAGS[-1]}")
    assert tags_of(last_page) == []
    assert last_page.header("Link") is None


def test_tags_of_an_unknown_repository(registry: Registry) -> None:
    answer = registry.pusher.get("/v2/conf/no-such-repository/tags/list")
    assert answer.status in (200, 404), answer.describe()
    if answer.status == 200:
        assert not answer.json()["tags"]


# -- referrers ---------------------------------------------------------------------------------


def _artifact(subject: dict[str, Any], config_type: str, **extra: Any) -> Image:
    payload = random_bytes(64)
    config = EMPTY_JSON if config_type == OCI_EMPTY else random_bytes(16)
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": digest_of(config), "size": len(config)},
        "layers": [
            {
                "mediaType": "application/octet-stream",
                "digest": digest_of(payload),
                "size": len(payload),
            }
        ],
        "subject": subject,
        **extra,
    }
    blobs = {digest_of(config): config, digest_of(payload): payload}
    return Image(json.dumps(body).encode(), OCI_MANIFEST, blobs)


class Referrers:
    def __init__(self, subject: Image, expected: list[tuple[Image, str | None]]) -> None:
        self.subject = subject
        self.expected = expected  # (manifest, artifactType the listing must show)


@pytest.fixture(scope="module")
def referrers(registry: Registry) -> Referrers:
    """Referrers pushed BEFORE their subject (each PUT must answer OCI-Subject), an index
    referrer, then the subject, then one more referrer after it."""
    client = registry.pusher
    subject = build_image("conformance-subject")
    descriptor = subject.descriptor()
    sbom = build_referrer(subject, TYPE_A, "sbom", {"org.example.kind": "sbom"})
    signature = build_referrer(subject, TYPE_B, "signature", {"org.example.kind": "signature"})
    plain = _artifact(descriptor, OCI_CONFIG, annotations={"org.example.kind": "plain"})
    expected: list[tuple[Image, str | None]] = [
        (sbom, TYPE_A),
        (signature, TYPE_B),
        (plain, OCI_CONFIG),  # no artifactType: an image manifest uses config.mediaType
    ]
    for referrer, _ in expected:
        answer = _push_referrer(client, referrer)
        assert answer.header("OCI-Subject") == subject.digest, answer.describe()
    index = Image(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "artifactType": TYPE_A,
                "manifests": [sbom.descriptor()],
                "subject": descriptor,
                "annotations": {"org.example.kind": "index"},
            }
        ).encode(),
        OCI_INDEX,
    )
    answer = _push_referrer(client, index)
    assert answer.header("OCI-Subject") == subject.digest, answer.describe()
    expected.append((index, TYPE_A))
    untyped_index = Image(
        json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "subject": descriptor}
        ).encode(),
        OCI_INDEX,
    )
    answer = _push_referrer(client, untyped_index)
    assert answer.header("OCI-Subject") == subject.digest, answer.describe()
    expected.append((untyped_index, None))  # an index without artifactType: no field
    push_image(client, REPO, "subject", subject)
    late = build_referrer(subject, TYPE_B, "late-signature")
    _push_referrer(client, late)
    expected.append((late, TYPE_B))
    return Referrers(subject, expected)


def _push_referrer(client: OciClient, referrer: Image) -> Answer:
    for data in referrer.blobs.values():
        if client.head(f"/v2/{REPO}/blobs/{digest_of(data)}").status != 200:
            push_blob(client, REPO, data)
    answer = put_manifest(client, REPO, referrer.digest, referrer.manifest, referrer.media_type)
    return expect(answer, 201)


def _listing(answer: Answer) -> list[dict[str, Any]]:
    expect(answer, 200)
    assert answer.header("Content-Type") == OCI_INDEX, answer.describe()
    body = answer.json()
    assert body["schemaVersion"] == 2 and body["mediaType"] == OCI_INDEX, answer.describe()
    return list(body["manifests"])


def test_referrers_list_every_referrer_with_its_descriptor(
    registry: Registry, referrers: Referrers
) -> None:
    answer = registry.pusher.get(f"/v2/{REPO}/referrers/{referrers.subject.digest}")
    entries = {entry["digest"]: entry for entry in _listing(answer)}
    assert set(entries) == {image.digest for image, _ in referrers.expected}, answer.describe()
    for image, artifact_type in referrers.expected:
        entry = entries[image.digest]
        assert entry["mediaType"] == image.media_type
        assert entry["size"] == len(image.manifest)
        assert entry.get("artifactType") == artifact_type, entry
        # Annotations are copied as they are (an absent set may show as absent or empty).
        assert (entry.get("annotations") or None) == image.parsed.get("annotations"), entry


@pytest.mark.parametrize("artifact_type", [TYPE_A, TYPE_B, "application/vnd.example.none"])
def test_artifact_type_filter(registry: Registry, referrers: Referrers, artifact_type: str) -> None:
    url = f"/v2/{REPO}/referrers/{referrers.subject.digest}?artifactType={artifact_type}"
    answer = registry.pusher.get(url)
    entries = _listing(answer)
    assert answer.header("OCI-Filters-Applied") == "artifactType", answer.describe()
    expected = {image.digest for image, kind in referrers.expected if kind == artifact_type}
    assert {entry["digest"] for entry in entries} == expected


def test_referrers_of_an_unknown_digest_is_an_empty_index(registry: Registry) -> None:
    unknown = digest_of(random_bytes(32))
    assert _listing(registry.pusher.get(f"/v2/{REPO}/referrers/{unknown}")) == []
    never = registry.pusher.get(f"/v2/conf/never-pushed-here/referrers/{unknown}")
    assert _listing(never) == []


def test_referrers_with_an_invalid_digest_is_400(registry: Registry) -> None:
    answer = registry.pusher.get(f"/v2/{REPO}/referrers/sha256:nothex")
    assert answer.status == 400, answer.describe()


def test_a_subject_never_pushed_lists_its_referrer(registry: Registry) -> None:
    ghost = {"mediaType": OCI_MANIFEST, "digest": digest_of(random_bytes(40)), "size": 123}
    artifact = _artifact(ghost, OCI_EMPTY, artifactType=TYPE_A)
    answer = _push_referrer(registry.pusher, artifact)
    assert answer.header("OCI-Subject") == ghost["digest"], answer.describe()
    entries = _listing(registry.pusher.get(f"/v2/{REPO}/referrers/{ghost['digest']}"))
    assert [entry["digest"] for entry in entries] == [artifact.digest]
    assert entries[0]["artifactType"] == TYPE_A
    assert "annotations" not in entries[0] or entries[0]["annotations"] in ({}, None)


# -- catalog ---------------------------------------------------------------------------------


def _catalog(client: OciClient, query: str = "") -> Answer:
    return client.get(f"/v2/_catalog{query}")


def test_catalog_lists_what_the_caller_may_read(registry: Registry, tagged: Image) -> None:
    mine = expect(_catalog(registry.pusher), 200).json()["repositories"]
    assert REPO in mine
    assert mine == sorted(mine)
    for outsider in (registry.stranger, registry.anonymous):
        answer = _catalog(outsider)
        assert answer.status in (200, 401), answer.describe()
        if answer.status == 200:
            assert not [name for name in answer.json()["repositories"] if name.startswith("conf/")]


def test_catalog_pagination(registry: Registry, tagged: Image) -> None:
    push_image(registry.pusher, "conf/catalog-a", "1", build_image("conformance-catalog-a"))
    push_image(registry.pusher, "conf/catalog-b", "1", build_image("conformance-catalog-b"))
    everything = expect(_catalog(registry.pusher), 200).json()["repositories"]
    assert {"conf/catalog-a", "conf/catalog-b", REPO} <= set(everything)
    collected: list[str] = []
    url: str | None = "/v2/_catalog?n=1"
    while url is not None:
        answer = expect(registry.pusher.get(url), 200)
        page = answer.json()["repositories"]
        url = next_link(answer)
        assert len(page) == 1 or url is None, answer.describe()
        collected += page
        assert len(collected) <= len(everything)
    assert collected == everything
    after = expect(_catalog(registry.pusher, "?last=conf/catalog-a"), 200).json()
    assert after["repositories"] == [name for name in everything if name > "conf/catalog-a"]


def test_catalog_shows_public_repositories_to_everyone(registry: Registry, tagged: Image) -> None:
    push_image(registry.pusher, "conf/catalog-public", "1", build_image("conformance-public"))
    registry.gateway.cli("repo", "set", "conf/catalog-public", "--visibility", "public")
    seen = expect(_catalog(registry.stranger), 200).json()["repositories"]
    assert "conf/catalog-public" in seen
    assert REPO not in seen
    anonymous = _catalog(registry.anonymous)
    assert anonymous.status in (200, 401), anonymous.describe()
    if anonymous.status == 200:
        names = anonymous.json()["repositories"]
        assert "conf/catalog-public" in names and REPO not in names
