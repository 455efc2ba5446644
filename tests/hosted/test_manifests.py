"""Manifest put, reads, referrers, tags and deletes of hosted repositories."""

from __future__ import annotations

import json
import os

import pytest

from imagegate.core.digests import Digest
from imagegate.core.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    RangeInvalid,
    SizeInvalid,
)
from imagegate.core.names import Reference
from imagegate.hosted.interfaces import MAX_MANIFEST_BYTES
from imagegate.hosted.registry import HostedContent
from imagegate.proxy.descriptors import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
)
from tests.hosted.helpers import (
    APP,
    OTHER,
    descriptor,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    read_all,
)

CONFIG, LAYER = b'{"architecture":"amd64"}', os.urandom(3000)
TAG = Reference(tag="1.0")


async def test_put_by_tag_stores_the_exact_bytes(hosted: HostedContent) -> None:
    manifest, pushed = await push_image(hosted, APP, "1.0", CONFIG, LAYER)
    assert pushed.digest == Digest.of(manifest) and pushed.subject is None
    assert pushed.tags == ["1.0"]
    for reference in (TAG, Reference(digest=pushed.digest)):
        got = await hosted.get_manifest(APP, reference, [])
        assert (got.body, got.media_type, got.digest) == (manifest, OCI_MANIFEST, pushed.digest)
    # The manifest is a blob of the repository too.
    assert await hosted.head_blob(APP, pushed.digest) == len(manifest)


async def test_put_by_digest_with_extra_tags(hosted: HostedContent) -> None:
    await push_blob(hosted, APP, CONFIG)
    manifest = image_manifest(CONFIG)
    digest = Digest.of(manifest)
    pushed = await hosted.put_manifest(
        APP, Reference(digest=digest), OCI_MANIFEST, manifest, ["a", "b"]
    )
    assert pushed.tags == ["a", "b"]
    assert (await hosted.list_tags(APP, None, None)).tags == ["a", "b"]


async def test_put_by_a_digest_the_bytes_do_not_have(hosted: HostedContent) -> None:
    await push_blob(hosted, APP, CONFIG)
    manifest = image_manifest(CONFIG)
    wrong = Digest.of(manifest + b"  ")
    with pytest.raises(DigestInvalid):
        await hosted.put_manifest(APP, Reference(digest=wrong), OCI_MANIFEST, manifest)
    with pytest.raises(ManifestUnknown):
        await hosted.get_manifest(APP, Reference(digest=wrong), [])


async def test_media_type_parameters_are_ignored(hosted: HostedContent) -> None:
    await push_blob(hosted, APP, CONFIG)
    pushed = await hosted.put_manifest(
        APP, TAG, OCI_MANIFEST + "; charset=utf-8", image_manifest(CONFIG)
    )
    assert (await hosted.get_manifest(APP, Reference(digest=pushed.digest), [])).media_type == (
        OCI_MANIFEST
    )


async def test_without_a_media_type_field_the_content_type_says(hosted: HostedContent) -> None:
    await push_blob(hosted, APP, CONFIG)
    document = json.loads(image_manifest(CONFIG))
    del document["mediaType"]
    body = json.dumps(document).encode()
    await hosted.put_manifest(APP, Reference(tag="emptylayer"), OCI_MANIFEST, body)
    got = await hosted.get_manifest(APP, Reference(tag="emptylayer"), [])
    assert got.media_type == OCI_MANIFEST and got.body == body


def _edit(manifest: bytes, **changes: object) -> bytes:
    document = json.loads(manifest)
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


INVALID = {
    "not json": (OCI_MANIFEST, b"{not json"),
    "not an object": (OCI_MANIFEST, b"[1, 2]"),
    "content type differs": (DOCKER_MANIFEST, image_manifest(CONFIG)),
    "unsupported type": (
        "application/vnd.oci.artifact.manifest.v1+json",
        _edit(image_manifest(CONFIG), mediaType=None),
    ),
    "no media type at all": ("", _edit(image_manifest(CONFIG), mediaType=None)),
    "schema version 1": (OCI_MANIFEST, _edit(image_manifest(CONFIG), schemaVersion=1)),
    "no config": (OCI_MANIFEST, _edit(image_manifest(CONFIG), config=None)),
    "bad layer digest": (
        OCI_MANIFEST,
        _edit(image_manifest(CONFIG), layers=[{"mediaType": "x", "digest": "sha256:x", "size": 1}]),
    ),
    "layer without size": (
        OCI_MANIFEST,
        _edit(image_manifest(CONFIG), layers=[{"mediaType": "x", "digest": str(Digest.of(b""))}]),
    ),
    "layers not a list": (OCI_MANIFEST, _edit(image_manifest(CONFIG), layers={})),
    "bad subject": (OCI_MANIFEST, _edit(image_manifest(CONFIG), subject="sha256:1")),
    "index without manifests": (OCI_INDEX, _edit(index_manifest(), manifests=None)),
    "artifactType not a string": (OCI_MANIFEST, _edit(image_manifest(CONFIG), artifactType=1)),
}


@pytest.mark.parametrize(("media_type", "body"), INVALID.values(), ids=INVALID.keys())
async def test_invalid_manifests(hosted: HostedContent, media_type: str, body: bytes) -> None:
    await push_blob(hosted, APP, CONFIG)
    with pytest.raises(ManifestInvalid):
        await hosted.put_manifest(APP, TAG, media_type, body)
    with pytest.raises(ManifestUnknown):
        await hosted.get_manifest(APP, TAG, [])


async def test_descriptor_size_must_match_the_blob(hosted: HostedContent) -> None:
    await push_blob(hosted, APP, CONFIG)
    body = _edit(image_manifest(CONFIG), config={**descriptor("x", CONFIG), "size": 1})
    with pytest.raises(ManifestInvalid, match="says 1 bytes"):
        await hosted.put_manifest(APP, TAG, OCI_MANIFEST, body)


async def test_over_4_mib_is_size_invalid_413(hosted: HostedContent) -> None:
    body = image_manifest(CONFIG, annotations={"x": "y" * MAX_MANIFEST_BYTES})
    with pytest.raises(SizeInvalid) as caught:
        await hosted.put_manifest(APP, TAG, OCI_MANIFEST, body)
    assert caught.value.status == 413


async def test_close_to_4_mib_is_accepted(hosted: HostedContent) -> None:
    await push_blob(hosted, APP, CONFIG)
    body = image_manifest(CONFIG, annotations={"x": "y" * (MAX_MANIFEST_BYTES - 1000)})
    pushed = await hosted.put_manifest(APP, TAG, OCI_MANIFEST, body)
    assert (await hosted.get_manifest(APP, TAG, [])).body == body and pushed.digest


async def test_missing_blobs_are_listed(hosted: HostedContent) -> None:
    await push_blob(hosted, APP, CONFIG)
    await push_blob(hosted, OTHER, LAYER)  # in another repository: not this one's
    with pytest.raises(ManifestBlobUnknown) as caught:
        await hosted.put_manifest(APP, TAG, OCI_MANIFEST, image_manifest(CONFIG, LAYER, b"x"))
    assert caught.value.detail == {"missing": [str(Digest.of(LAYER)), str(Digest.of(b"x"))]}


async def test_foreign_layers_may_be_absent(hosted: HostedContent) -> None:
    await push_blob(hosted, APP, CONFIG)
    foreign = {**descriptor("application/vnd.oci.image.layer.nondistributable.v1.tar", b"f")}
    body = _edit(image_manifest(CONFIG), layers=[{**foreign, "urls": ["https://x/f"]}])
    assert await hosted.put_manifest(APP, TAG, OCI_MANIFEST, body)


async def test_index_needs_its_children_in_this_repository(hosted: HostedContent) -> None:
    amd64, _ = await push_image(hosted, APP, None, CONFIG, LAYER)
    arm64 = image_manifest(b'{"architecture":"arm64"}', LAYER)
    index = index_manifest(amd64, arm64)
    with pytest.raises(ManifestBlobUnknown) as caught:
        await hosted.put_manifest(APP, Reference(tag="multi"), OCI_INDEX, index)
    assert caught.value.detail == {"missing": [str(Digest.of(arm64))]}
    await push_image(hosted, APP, None, b'{"architecture":"arm64"}', LAYER)
    pushed = await hosted.put_manifest(APP, Reference(tag="multi"), OCI_INDEX, index)
    assert (await hosted.get_manifest(APP, Reference(tag="multi"), [])).body == index
    # A Docker manifest list works the same way.
    docker = _edit(index, mediaType=DOCKER_MANIFEST_LIST)
    assert await hosted.put_manifest(APP, Reference(tag="d"), DOCKER_MANIFEST_LIST, docker)
    assert pushed.digest == Digest.of(index)
    with pytest.raises(ManifestBlobUnknown):  # children of another repository do not count
        await hosted.put_manifest(OTHER, Reference(tag="multi"), OCI_INDEX, index)


async def test_referrers_pushed_before_their_subject(hosted: HostedContent) -> None:
    subject = image_manifest(CONFIG, LAYER)  # not pushed yet
    empty = b"{}"
    await push_blob(hosted, APP, empty)
    await push_blob(hosted, APP, CONFIG)
    signature = image_manifest(
        empty,
        subject=subject,
        artifactType="application/vnd.example.sig",
        annotations={"k": "sig"},
    )
    sbom = _edit(
        image_manifest(CONFIG, subject=subject),
        config={**descriptor("application/vnd.example.sbom", CONFIG)},
        annotations={"k": "sbom"},
    )
    index = index_manifest(subject=descriptor(OCI_MANIFEST, subject))
    subject_digest = Digest.of(subject)
    for body, media_type in ((signature, OCI_MANIFEST), (sbom, OCI_MANIFEST), (index, OCI_INDEX)):
        pushed = await hosted.put_manifest(APP, Reference(digest=Digest.of(body)), media_type, body)
        assert pushed.subject == subject_digest  # for OCI-Subject
    await push_image(hosted, APP, "1.0", CONFIG, LAYER)

    answer, filtered = await hosted.referrers(APP, subject_digest, None)
    listed = json.loads(answer)
    assert not filtered and listed["mediaType"] == OCI_INDEX
    by_digest = {entry["digest"]: entry for entry in listed["manifests"]}
    assert by_digest[str(Digest.of(signature))] == {
        "mediaType": OCI_MANIFEST,
        "digest": str(Digest.of(signature)),
        "size": len(signature),
        "artifactType": "application/vnd.example.sig",
        "annotations": {"k": "sig"},
    }
    assert by_digest[str(Digest.of(sbom))]["artifactType"] == "application/vnd.example.sbom"
    assert "artifactType" not in by_digest[str(Digest.of(index))]  # an index: none derived

    answer, filtered = await hosted.referrers(APP, subject_digest, "application/vnd.example.sig")
    assert filtered
    assert [e["digest"] for e in json.loads(answer)["manifests"]] == [str(Digest.of(signature))]
    # Never a 404: another repository or digest has simply none.
    for repository, digest in ((OTHER, subject_digest), (APP, Digest.of(b"?"))):
        assert json.loads((await hosted.referrers(repository, digest, None))[0])["manifests"] == []

    await hosted.delete_manifest(APP, Digest.of(signature))
    answer, _ = await hosted.referrers(APP, subject_digest, None)
    assert str(Digest.of(signature)) not in answer.decode()


async def test_tags_in_byte_order_with_pagination(hosted: HostedContent) -> None:
    await push_image(hosted, APP, "b", CONFIG)
    for tag in ("a", "C", "c", "a1", "B"):
        await hosted.put_manifest(APP, Reference(tag=tag), OCI_MANIFEST, image_manifest(CONFIG))
    assert (await hosted.list_tags(APP, None, None)).tags == ["B", "C", "a", "a1", "b", "c"]
    page = await hosted.list_tags(APP, 2, None)
    assert (page.tags, page.next_last) == (["B", "C"], "C")
    page = await hosted.list_tags(APP, 2, "C")
    assert (page.tags, page.next_last) == (["a", "a1"], "a1")
    page = await hosted.list_tags(APP, 5, "a1")
    assert (page.tags, page.next_last) == (["b", "c"], None)
    assert (await hosted.list_tags(APP, None, "a")).tags == ["a1", "b", "c"]
    page = await hosted.list_tags(APP, 0, None)
    assert (page.tags, page.next_last) == ([], None)
    with pytest.raises(NameUnknown):
        await hosted.list_tags(OTHER, None, None)


async def test_reads_of_absent_content(hosted: HostedContent) -> None:
    with pytest.raises(NameUnknown):
        await hosted.get_manifest(APP, TAG, [])
    await push_image(hosted, APP, "1.0", CONFIG, LAYER)
    with pytest.raises(ManifestUnknown):
        await hosted.get_manifest(APP, Reference(tag="2.0"), [])
    with pytest.raises(ManifestUnknown):
        await hosted.get_manifest(APP, Reference(digest=Digest.of(b"?")), [])
    with pytest.raises(BlobUnknown):
        await hosted.head_blob(APP, Digest.of(b"?"))
    with pytest.raises(BlobUnknown):
        await hosted.open_blob(OTHER, Digest.of(LAYER), None)


async def test_blob_ranges(hosted: HostedContent) -> None:
    data = os.urandom(2048)
    digest = await push_blob(hosted, APP, data)
    whole = await hosted.open_blob(APP, digest, None)
    assert whole.byte_range is None and await read_all(whole.chunks) == data
    for header, expected in (
        ("bytes=500-", data[500:]),
        ("bytes=-500", data[-500:]),
        ("bytes=2000-5000", data[2000:]),
    ):
        stream = await hosted.open_blob(APP, digest, header)
        assert stream.byte_range is not None and await read_all(stream.chunks) == expected
    for header in ("bytes=5000-10000", "bytes=500-0"):
        with pytest.raises(RangeInvalid):
            await hosted.open_blob(APP, digest, header)


async def test_delete_manifest_removes_its_tags(hosted: HostedContent) -> None:
    _, pushed = await push_image(hosted, APP, "1.0", CONFIG, LAYER)
    again = image_manifest(CONFIG, LAYER)
    await hosted.put_manifest(APP, Reference(tag="latest"), OCI_MANIFEST, again)
    _, other = await push_image(hosted, APP, "keep", b'{"other":1}')
    await hosted.delete_manifest(APP, pushed.digest)
    for reference in (Reference(digest=pushed.digest), TAG, Reference(tag="latest")):
        with pytest.raises(ManifestUnknown):
            await hosted.get_manifest(APP, reference, [])
    assert (await hosted.list_tags(APP, None, None)).tags == ["keep"]
    with pytest.raises(ManifestUnknown):
        await hosted.delete_manifest(APP, pushed.digest)
    assert (await hosted.get_manifest(APP, Reference(tag="keep"), [])).digest == other.digest
    # The layers stay linked until garbage collection decides.
    assert await hosted.head_blob(APP, Digest.of(LAYER)) == len(LAYER)


async def test_delete_tag_keeps_the_manifest(hosted: HostedContent) -> None:
    _, pushed = await push_image(hosted, APP, "1.0", CONFIG)
    await hosted.delete_tag(APP, "1.0")
    with pytest.raises(ManifestUnknown):
        await hosted.get_manifest(APP, TAG, [])
    assert await hosted.get_manifest(APP, Reference(digest=pushed.digest), [])
    with pytest.raises(ManifestUnknown):
        await hosted.delete_tag(APP, "1.0")
    with pytest.raises(NameUnknown):
        await hosted.delete_tag(OTHER, "1.0")


async def test_delete_blob_unlinks_it_at_once(hosted: HostedContent) -> None:
    digest = await push_blob(hosted, APP, LAYER)
    await push_blob(hosted, OTHER, LAYER)
    await hosted.delete_blob(APP, digest)
    with pytest.raises(BlobUnknown):
        await hosted.head_blob(APP, digest)
    assert await hosted.head_blob(OTHER, digest) == len(LAYER)  # shared bytes stay
    with pytest.raises(BlobUnknown):
        await hosted.delete_blob(APP, digest)
