"""Manifests through ProxyContent against a real distribution registry."""

from __future__ import annotations

import json

import pytest

from imagegate.core.errors import ManifestUnknown, Unavailable
from imagegate.proxy.service import ProxyContent
from imagegate.proxy.tagmemory import TagFreshness
from tests.proxy.conftest import ContentFactory
from tests.proxy.helpers import digest, ref, repo
from tests.support.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    build_image,
    build_index,
    push_image,
)
from tests.support.upstream import UpstreamRegistry


@pytest.mark.parametrize(
    ("flavor", "media_type"), [("oci", OCI_MANIFEST), ("docker", DOCKER_MANIFEST)]
)
async def test_image_manifest_by_tag_and_digest(
    upstream: UpstreamRegistry, content: ProxyContent, flavor: str, media_type: str
) -> None:
    image = build_image(f"m-{flavor}", flavor=flavor)  # type: ignore[arg-type]
    push_image(upstream.url, "library/m", "1", image)

    by_tag = await content.get_manifest(repo("m"), ref("1"), [])
    by_digest = await content.get_manifest(repo("library/m"), ref(image.digest), [media_type])

    for manifest in (by_tag, by_digest):
        assert manifest.body == image.manifest  # exact bytes, never re-encoded
        assert str(manifest.digest) == image.digest
        assert manifest.media_type == media_type


@pytest.mark.parametrize(("flavor", "media_type"), [("oci", OCI_INDEX), ("docker", DOCKER_LIST)])
async def test_index_and_its_children(
    upstream: UpstreamRegistry, content: ProxyContent, flavor: str, media_type: str
) -> None:
    index = build_index(f"i-{flavor}", flavor=flavor)  # type: ignore[arg-type]
    push_image(upstream.url, "acme/multi", "latest", index)

    manifest = await content.get_manifest(repo("acme/multi"), ref("latest"), [])
    assert (manifest.media_type, manifest.body) == (media_type, index.manifest)
    for child in index.children:
        fetched = await content.get_manifest(repo("acme/multi"), ref(child.digest), [])
        assert fetched.body == child.manifest


async def test_accept_is_forwarded(upstream: UpstreamRegistry, content: ProxyContent) -> None:
    # distribution answers a manifest list asked for with only the single-image type by
    # falling back to the default platform's manifest, and 404s an OCI manifest asked
    # for with Docker types only: both show the client's Accept went upstream.
    index = build_index("accept", flavor="docker")
    push_image(upstream.url, "library/accept", "1", index)
    oci = build_image("accept-oci")
    push_image(upstream.url, "library/accept", "oci", oci)

    single = await content.get_manifest(repo("accept"), ref("1"), [DOCKER_MANIFEST])
    assert str(single.digest) == index.children[0].digest
    assert single.media_type == DOCKER_MANIFEST
    whole = await content.get_manifest(repo("accept"), ref("1"), [DOCKER_MANIFEST, DOCKER_LIST])
    assert str(whole.digest) == index.digest
    with pytest.raises(ManifestUnknown):
        await content.get_manifest(repo("accept"), ref("oci"), [DOCKER_MANIFEST])
    assert (await content.get_manifest(repo("accept"), ref("oci"), [])).body == oci.manifest


async def test_a_tag_is_resolved_again_upstream_with_no_ttl(
    upstream: UpstreamRegistry, make_content: ContentFactory
) -> None:
    content = make_content(upstream.url, tags=TagFreshness(0, 0))  # see test_tag_memory
    first, second = build_image("tag-1"), build_image("tag-2")
    push_image(upstream.url, "library/moving", "latest", first)
    assert (
        str((await content.get_manifest(repo("moving"), ref("latest"), [])).digest) == first.digest
    )

    push_image(upstream.url, "library/moving", "latest", second)
    moved = await content.get_manifest(repo("moving"), ref("latest"), [])
    assert (str(moved.digest), moved.body) == (second.digest, second.manifest)


async def test_unknown_manifest(upstream: UpstreamRegistry, content: ProxyContent) -> None:
    push_image(upstream.url, "library/known", "1", build_image("known"))
    with pytest.raises(ManifestUnknown):
        await content.get_manifest(repo("known"), ref("2"), [])
    with pytest.raises(ManifestUnknown):
        await content.get_manifest(repo("known"), ref("sha256:" + "0" * 64), [])


async def test_cached_content_survives_the_upstream_going_down(
    upstream: UpstreamRegistry, content: ProxyContent
) -> None:
    image, other = build_image("down"), build_image("down-other")
    push_image(upstream.url, "library/down", "1", image)
    push_image(upstream.url, "library/down", "2", other)
    await content.get_manifest(repo("down"), ref("1"), [])

    upstream.stop()

    assert (await content.get_manifest(repo("down"), ref("1"), [])).body == image.manifest
    by_digest = await content.get_manifest(repo("down"), ref(image.digest), [])
    assert by_digest.body == image.manifest
    with pytest.raises(Unavailable) as raised:
        await content.get_manifest(repo("down"), ref("2"), [])
    assert "library/down:2 is not cached" in raised.value.message
    assert upstream.url in raised.value.message
    with pytest.raises(Unavailable, match=f"library/down@{other.digest} is not cached"):
        await content.get_manifest(repo("down"), ref(other.digest), [])


async def test_a_digest_never_opens_a_door(
    upstream: UpstreamRegistry, content: ProxyContent
) -> None:
    image = build_image("door")
    push_image(upstream.url, "library/a", "1", image)
    await content.get_manifest(repo("a"), ref("1"), [])

    with pytest.raises(ManifestUnknown):  # cached, but not served for acme/b upstream
        await content.get_manifest(repo("acme/b"), ref(image.digest), [])

    push_image(upstream.url, "acme/b", "1", image)
    assert (
        await content.get_manifest(repo("acme/b"), ref(image.digest), [])
    ).body == image.manifest


async def test_referrers_from_the_cache_when_upstream_has_no_api(
    upstream: UpstreamRegistry, content: ProxyContent
) -> None:
    from tests.support.images import build_referrer

    image = build_image("subject")
    signature = build_referrer(image, "application/vnd.example.sig", "sig", {"who": "ci"})
    sbom = build_referrer(image, "application/vnd.example.sbom", "sbom")
    push_image(upstream.url, "library/subject", "1", image)
    for artifact in (signature, sbom):
        push_image(upstream.url, "library/subject", None, artifact)
        await content.get_manifest(repo("subject"), ref(artifact.digest), [])

    body, filtered = await content.referrers(repo("subject"), digest(image.digest), None)
    index = json.loads(body)
    assert index["mediaType"] == OCI_INDEX and not filtered
    by_digest = {entry["digest"]: entry for entry in index["manifests"]}
    assert by_digest.keys() == {signature.digest, sbom.digest}
    assert by_digest[signature.digest] == {
        "mediaType": OCI_MANIFEST,
        "digest": signature.digest,
        "size": len(signature.manifest),
        "artifactType": "application/vnd.example.sig",
        "annotations": {"who": "ci"},
    }

    body, filtered = await content.referrers(
        repo("subject"), digest(image.digest), "application/vnd.example.sbom"
    )
    assert filtered
    assert [entry["digest"] for entry in json.loads(body)["manifests"]] == [sbom.digest]

    # Never a 404: another repository, or an unknown digest, has an empty index.
    for name in ("library/subject", "acme/other"):
        body, _ = await content.referrers(repo(name), digest("sha256:" + "1" * 64), None)
        assert json.loads(body)["manifests"] == []
