"""Blobs through ProxyContent: streaming, ranges, single-flight and the repository rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from imagegate.core.errors import BlobUnknown, RangeInvalid, Unavailable
from imagegate.proxy.interfaces import CHUNK_SIZE, ByteRange
from imagegate.proxy.service import ProxyContent
from tests.proxy.conftest import ContentFactory
from tests.proxy.faults import FaultyUpstream
from tests.proxy.helpers import collect, digest, ref, repo
from tests.support.images import Image, build_image, push_image
from tests.support.polling import eventually
from tests.support.upstream import UpstreamRegistry

BIG = 3 * CHUNK_SIZE + 12345  # several chunks, and a short last one


@pytest.fixture
def big(upstream: UpstreamRegistry) -> Image:
    image = build_image("big", padding=BIG)
    push_image(upstream.url, "library/big", "1", image)
    return image


@pytest.fixture
async def faulty(upstream: UpstreamRegistry) -> AsyncIterator[FaultyUpstream]:
    server = await FaultyUpstream(upstream.url).start()
    yield server
    await server.stop()


async def stored(content: ProxyContent, blob: str) -> None:
    """Wait for a streamed blob's commit, which may follow its last chunk."""

    async def committed() -> bool:
        return await content.store.blobs.size(digest(blob)) is not None

    await eventually(committed)


def layer_of(image: Image) -> tuple[str, bytes]:
    layer = image.layer_digests[0]
    return layer, image.blobs[layer]


async def test_whole_blob_streams_in_chunks(content: ProxyContent, big: Image) -> None:
    layer, data = layer_of(big)
    for _ in range(2):  # first from the upstream, then from the cache
        stream = await content.open_blob(repo("big"), digest(layer), None)
        assert (stream.size, stream.byte_range) == (len(data), None)
        sizes = []
        async for chunk in stream.chunks:
            sizes.append(len(chunk))
        assert max(sizes) == CHUNK_SIZE and sum(sizes) == len(data)
    assert await content.head_blob(repo("big"), digest(layer)) == len(data)


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "uncached"])
@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-2000000", 10, 2000000),
        ("bytes=500-", 500, None),
        ("bytes=-500", -500, None),
        ("bytes=5-99999999", 5, None),  # the end is clamped to the size
    ],
)
async def test_ranges(
    content: ProxyContent, big: Image, cached: bool, header: str, start: int, end: int | None
) -> None:
    layer, data = layer_of(big)
    if cached:
        await collect((await content.open_blob(repo("big"), digest(layer), None)).chunks)
    stream = await content.open_blob(repo("big"), digest(layer), header)
    expected = data[start : None if end is None else end + 1]
    first = start if start >= 0 else len(data) + start
    assert stream.byte_range == ByteRange(first, first + len(expected) - 1, len(data))
    assert await collect(stream.chunks) == expected


@pytest.mark.parametrize("header", ["bytes=99999999-", "bytes=500-0", "bytes=-0"])
async def test_unsatisfiable_ranges(content: ProxyContent, big: Image, header: str) -> None:
    layer, data = layer_of(big)
    with pytest.raises(RangeInvalid) as raised:
        await content.open_blob(repo("big"), digest(layer), header)
    assert raised.value.detail["size"] == len(data)


async def test_concurrent_requests_share_one_upstream_fetch(
    faulty: FaultyUpstream, make_content: ContentFactory, big: Image
) -> None:
    content = make_content(faulty.url)
    layer, data = layer_of(big)
    streams = await asyncio.gather(
        *(content.open_blob(repo("big"), digest(layer), None) for _ in range(8))
    )
    bodies = await asyncio.gather(*(collect(stream.chunks) for stream in streams))
    assert all(body == data for body in bodies)
    assert faulty.count("GET", f"/blobs/{layer}") == 1
    again = await content.open_blob(repo("big"), digest(layer), "bytes=0-9")
    assert await collect(again.chunks) == data[:10]
    assert faulty.count("GET", f"/blobs/{layer}") == 1


async def test_a_blob_is_served_only_under_repositories_that_hold_it(
    upstream: UpstreamRegistry, faulty: FaultyUpstream, make_content: ContentFactory
) -> None:
    content = make_content(faulty.url)
    image = build_image("door-blob")
    layer, data = layer_of(image)
    push_image(upstream.url, "library/a", "1", image)
    await collect((await content.open_blob(repo("a"), digest(layer), None)).chunks)

    for attempt in (content.head_blob, lambda r, d: content.open_blob(r, d, None)):
        with pytest.raises(BlobUnknown):
            await attempt(repo("acme/b"), digest(layer))

    push_image(upstream.url, "acme/b", "1", image)
    stream = await content.open_blob(repo("acme/b"), digest(layer), None)
    assert await collect(stream.chunks) == data
    assert faulty.count("GET", f"/blobs/{layer}") == 1  # confirmed by HEAD, served from cache

    upstream.stop()  # what acme/b was confirmed to hold stays served; acme/c is never
    assert await collect((await content.open_blob(repo("acme/b"), digest(layer), None)).chunks)
    with pytest.raises(Unavailable, match=f"blob {layer} is not known to belong to acme/c"):
        await content.open_blob(repo("acme/c"), digest(layer), None)


async def test_a_manifest_names_blobs_but_only_the_upstream_links_them(
    upstream: UpstreamRegistry, faulty: FaultyUpstream, make_content: ContentFactory
) -> None:
    """A cached manifest makes nothing it names servable; what the upstream served or
    confirmed for the repository is then served with no upstream request at all."""
    content = make_content(faulty.url)
    image = build_image("linked", layers=2)
    push_image(upstream.url, "library/linked", "1", image)
    push_image(upstream.url, "library/other", "1", image)
    first, second = image.layer_digests
    await collect((await content.open_blob(repo("other"), digest(first), None)).chunks)
    await stored(content, first)
    await content.get_manifest(repo("linked"), ref("1"), [])

    # Stored (for library/other) and named by linked's manifest: confirmed first.
    assert await content.head_blob(repo("linked"), digest(first)) == len(image.blobs[first])
    assert faulty.count("HEAD", f"/linked/blobs/{first}") == 1
    await collect((await content.open_blob(repo("linked"), digest(second), None)).chunks)
    assert faulty.count("GET", f"/linked/blobs/{second}") == 1
    await stored(content, second)

    before = len(faulty.requests)
    for layer in image.layer_digests:  # the cached-blob path asks the upstream nothing
        assert await content.head_blob(repo("linked"), digest(layer)) == len(image.blobs[layer])
        stream = await content.open_blob(repo("linked"), digest(layer), None)
        assert await collect(stream.chunks) == image.blobs[layer]
    assert len(faulty.requests) == before

    upstream.stop()
    config = digest(image.config_digest)
    with pytest.raises(Unavailable, match="is not cached"):  # named, but never fetched
        await content.open_blob(repo("linked"), config, None)


async def test_unknown_blob(upstream: UpstreamRegistry, content: ProxyContent) -> None:
    push_image(upstream.url, "library/known", "1", build_image("known-blob"))
    missing = digest("sha256:" + "2" * 64)
    with pytest.raises(BlobUnknown):
        await content.head_blob(repo("known"), missing)
    with pytest.raises(BlobUnknown):
        await content.open_blob(repo("known"), missing, None)
