"""Tags lists and rate limits: from the upstream, and from the cache when it cannot answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from imagegate.core.errors import NameUnknown, TooManyRequests, Unavailable
from imagegate.proxy.service import ProxyContent, tag_page
from tests.proxy.conftest import ContentFactory
from tests.proxy.faults import FaultyUpstream
from tests.proxy.helpers import ref, repo
from tests.support.images import build_image, push_image
from tests.support.upstream import UpstreamRegistry

TAGS = ["1.0", "1.1", "2.0", "edge", "latest"]


@pytest.fixture
def tagged(upstream: UpstreamRegistry) -> None:
    image = build_image("tags")
    for tag in TAGS:
        push_image(upstream.url, "library/tagged", tag, image)


@pytest.mark.usefixtures("tagged")
async def test_tags_pass_n_and_last_through(content: ProxyContent) -> None:
    page = await content.list_tags(repo("tagged"), 2, None)
    assert (page.tags, page.next_last) == (["1.0", "1.1"], "1.1")
    page = await content.list_tags(repo("tagged"), 2, page.next_last)
    assert (page.tags, page.next_last) == (["2.0", "edge"], "edge")
    page = await content.list_tags(repo("tagged"), None, "edge")
    assert (page.tags, page.next_last) == (["latest"], None)
    assert (await content.list_tags(repo("tagged"), 0, None)).tags == []


async def test_unknown_repository_tags(upstream: UpstreamRegistry, content: ProxyContent) -> None:
    with pytest.raises(NameUnknown):
        await content.list_tags(repo("acme/nothing"), None, None)


@pytest.mark.usefixtures("tagged")
async def test_tags_from_the_cache_when_the_upstream_is_down(
    upstream: UpstreamRegistry, content: ProxyContent
) -> None:
    for tag in ("1.0", "edge", "latest"):
        await content.get_manifest(repo("tagged"), ref(tag), [])
    upstream.stop()
    page = await content.list_tags(repo("tagged"), 2, None)
    assert (page.tags, page.next_last) == (["1.0", "edge"], "edge")
    assert (await content.list_tags(repo("tagged"), None, "1.0")).tags == ["edge", "latest"]
    with pytest.raises(Unavailable, match="the tags of library/other is not cached"):
        await content.list_tags(repo("other"), None, None)


def test_tag_page() -> None:
    name = repo("x")
    assert tag_page(name, ["b", "a", "c"], None, None).tags == ["a", "b", "c"]
    assert tag_page(name, ["a", "b", "c"], 1, "a").next_last == "b"
    assert tag_page(name, ["a", "b", "c"], 5, "b").next_last is None
    assert tag_page(name, ["a", "c"], None, "b").tags == ["c"]  # last need not be a tag


@pytest.fixture
async def limited(upstream: UpstreamRegistry) -> AsyncIterator[FaultyUpstream]:
    server = await FaultyUpstream(upstream.url).start()
    yield server
    await server.stop()


async def test_rate_limited_upstream(
    upstream: UpstreamRegistry, limited: FaultyUpstream, make_content: ContentFactory
) -> None:
    image, other = build_image("limited"), build_image("limited-other")
    push_image(upstream.url, "library/limited", "1", image)
    push_image(upstream.url, "library/limited", "2", other)
    content = make_content(limited.url)
    await content.get_manifest(repo("limited"), ref("1"), [])

    async def too_many(request: web.Request, _: FaultyUpstream) -> web.StreamResponse:
        body = {"errors": [{"code": "TOOMANYREQUESTS", "message": "pull rate limit reached"}]}
        return web.json_response(body, status=429)

    limited.fault = too_many
    cached = await content.get_manifest(repo("limited"), ref("1"), [])
    assert cached.body == image.manifest  # a cached tag beats no pull at all
    with pytest.raises(TooManyRequests, match="is rate limiting"):  # a HEAD: no message
        await content.get_manifest(repo("limited"), ref("2"), [])
    with pytest.raises(TooManyRequests, match="is rate limiting requests: pull rate limit"):
        await content.get_manifest(repo("limited"), ref(other.digest), [])
