"""Cross-repository mounts, and hosted metadata kept apart from the cache's."""

from __future__ import annotations

import json
import os

import pytest

from imagegate.core.digests import Digest
from imagegate.core.errors import BlobUnknown, NameUnknown
from imagegate.core.names import Reference, RepositoryName, parse_repository
from imagegate.hosted.registry import HostedContent
from imagegate.proxy.descriptors import OCI_MANIFEST
from imagegate.storage.interfaces import ContentStore, ManifestLink
from tests.hosted.helpers import (
    APP,
    OTHER,
    cached_for,
    hosted_in,
    image_manifest,
    push_blob,
    push_image,
)

LAYER = os.urandom(5000)
CACHED = parse_repository("library/alpine")


async def cache(store: ContentStore, repository: RepositoryName, data: bytes) -> Digest:
    """Store ``data`` as the pull-through cache would, linked to ``repository``."""
    digest = Digest.of(data)
    writer = await store.blobs.create()
    await writer.write(data)
    await writer.commit(digest, len(data))
    await store.repositories.link_blob(repository, digest)
    return digest


async def test_mount_from_a_hosted_repository(hosted: HostedContent) -> None:
    digest = await push_blob(hosted, OTHER, LAYER)
    assert await hosted.mount(APP, digest, hosted_in(OTHER))
    assert await hosted.head_blob(APP, digest) == len(LAYER)
    third = parse_repository("acme/third")
    with pytest.raises(BlobUnknown):  # a mount links one repository, nothing more
        await hosted.head_blob(third, digest)


async def test_mount_from_the_cache(hosted: HostedContent, store: ContentStore) -> None:
    digest = await cache(store, CACHED, LAYER)
    assert await hosted.mount(APP, digest, cached_for(CACHED))
    assert await hosted.head_blob(APP, digest) == len(LAYER)
    # Now usable in a manifest of APP.
    config = await push_blob(hosted, APP, b"{}")
    assert config
    body = image_manifest(b"{}", LAYER)
    assert await hosted.put_manifest(APP, Reference(tag="1"), OCI_MANIFEST, body)


async def test_mount_is_refused_when_the_source_lacks_the_blob(
    hosted: HostedContent, store: ContentStore
) -> None:
    digest = await push_blob(hosted, OTHER, LAYER)
    third = parse_repository("acme/third")
    assert not await hosted.mount(APP, digest, hosted_in(third))  # stored, but not third's
    assert not await hosted.mount(APP, Digest.of(b"never pushed"), hosted_in(OTHER))
    with pytest.raises(BlobUnknown):
        await hosted.head_blob(APP, digest)
    # Linked in the source but the bytes are gone: a normal upload must follow.
    store.blobs.layout.blob(digest).unlink()  # type: ignore[attr-defined]
    assert not await hosted.mount(APP, digest, hosted_in(OTHER))


async def test_mount_looks_only_where_the_source_keeps_its_content(
    hosted: HostedContent, store: ContentStore
) -> None:
    """The cache's links under a name are not its hosted repository's, nor the other way
    round: a name hosted now (or an organization's, over a namespace proxied before)
    does not lend what the upstream once confirmed under it."""
    target = parse_repository("acme/target")
    cached = await cache(store, OTHER, LAYER)  # the upstream's acme/other, proxied before
    assert not await hosted.mount(target, cached, hosted_in(OTHER))
    pushed = await push_blob(hosted, APP, b"pushed to acme/app")
    assert not await hosted.mount(target, pushed, cached_for(APP))
    assert await hosted.mount(target, pushed, hosted_in(APP))
    assert await hosted.mount(target, cached, cached_for(OTHER))


async def test_hosted_reads_never_see_cached_content(
    hosted: HostedContent, store: ContentStore
) -> None:
    """``acme/app`` cached from upstream and pushed here are two different things."""
    cached_layer = await cache(store, APP, LAYER)
    manifest = image_manifest(b"{}", LAYER)
    digest = await cache(store, APP, manifest)
    await store.repositories.link_manifest(APP, ManifestLink(digest, OCI_MANIFEST))
    await store.repositories.set_tag(APP, "latest", digest)

    with pytest.raises(NameUnknown):
        await hosted.get_manifest(APP, Reference(tag="latest"), [])
    with pytest.raises(NameUnknown):
        await hosted.list_tags(APP, None, None)
    with pytest.raises(BlobUnknown):
        await hosted.head_blob(APP, cached_layer)

    _, pushed = await push_image(hosted, APP, "1.0", b'{"hosted":1}')
    assert (await hosted.list_tags(APP, None, None)).tags == ["1.0"]
    assert await store.repositories.tags(APP) == ["latest"]  # the cache's own, untouched
    assert not await store.repositories.is_linked(APP, pushed.digest)
    listed = json.loads((await hosted.referrers(APP, digest, None))[0])
    assert listed["manifests"] == []
