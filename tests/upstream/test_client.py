"""How the upstream client reads answers and translates failures."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from imagegate.core.digests import Digest
from imagegate.core.errors import ManifestUnknown, NameUnknown
from imagegate.core.names import parse_repository
from imagegate.upstream.client import UpstreamClient
from imagegate.upstream.errors import UpstreamUnreachable
from tests.proxy.faults import FaultyUpstream
from tests.support.images import OCI_MANIFEST, build_image, push_image
from tests.support.process import free_port
from tests.support.upstream import UpstreamRegistry

REPOSITORY = parse_repository("library/client")


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[UpstreamRegistry]:
    with UpstreamRegistry(tmp_path) as registry:
        yield registry


@pytest.fixture
async def faulty() -> AsyncIterator[FaultyUpstream]:
    server = await FaultyUpstream("http://127.0.0.1:9").start()
    yield server
    await server.stop()


async def test_link_header_gives_the_next_last(faulty: FaultyUpstream) -> None:
    async def tags(request: web.Request, _: FaultyUpstream) -> web.StreamResponse:
        assert request.query["n"] == "2" and request.query["last"] == "a"
        link = '</v2/library/client/tags/list?n=2&last=c>; rel="next"'
        return web.json_response(
            {"name": "library/client", "tags": ["b", "c"]}, headers={"Link": link}
        )

    faulty.fault = tags
    client = UpstreamClient(faulty.url)
    try:
        page = await client.list_tags(REPOSITORY, 2, "a")
    finally:
        await client.close()
    assert (page.tags, page.next_last) == (["b", "c"], "c")


async def test_server_errors_and_refused_connections_are_unreachable(
    faulty: FaultyUpstream,
) -> None:
    async def broken(request: web.Request, _: FaultyUpstream) -> web.StreamResponse:
        return web.Response(status=503, text="maintenance")

    faulty.fault = broken
    for url in (faulty.url, f"http://127.0.0.1:{free_port()}"):
        client = UpstreamClient(url, timeout=2)
        try:
            with pytest.raises(UpstreamUnreachable, match=re.escape(f"upstream {url}")):
                await client.head_manifest(REPOSITORY, "1", ["application/json"])
        finally:
            await client.close()


async def test_not_found(upstream: UpstreamRegistry) -> None:
    push_image(upstream.url, "library/client", "1", build_image("client"))
    client = UpstreamClient(upstream.url)
    try:
        with pytest.raises(ManifestUnknown, match="manifest library/client:2 not found"):
            await client.get_manifest(REPOSITORY, "2", ["application/json"])
        with pytest.raises(NameUnknown):
            await client.list_tags(parse_repository("acme/none"), None, None)
    finally:
        await client.close()


async def test_a_conditional_head_is_answered_unchanged(upstream: UpstreamRegistry) -> None:
    image, other = build_image("conditional"), build_image("conditional-other")
    push_image(upstream.url, "library/client", "1", image)
    client = UpstreamClient(upstream.url)
    accept = [OCI_MANIFEST]
    try:
        unchanged = await client.head_manifest(REPOSITORY, "1", accept, Digest.parse(image.digest))
        assert (unchanged.unchanged, str(unchanged.digest)) == (True, image.digest)

        push_image(upstream.url, "library/client", "1", other)
        moved = await client.head_manifest(REPOSITORY, "1", accept, Digest.parse(image.digest))
        assert (moved.unchanged, str(moved.digest)) == (False, other.digest)
    finally:
        await client.close()
