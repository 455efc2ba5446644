"""Fixtures: a real distribution registry upstream and ``ProxyContent`` in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from imagegate.proxy.service import DEFAULT_TAG_FRESHNESS, ProxyContent
from imagegate.proxy.tagmemory import TagFreshness
from imagegate.storage.filesystem import open_filesystem_store
from imagegate.upstream.client import UpstreamClient
from tests.support.upstream import UpstreamRegistry

ContentFactory = Callable[..., ProxyContent]


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[UpstreamRegistry]:
    with UpstreamRegistry(tmp_path / "upstream") as registry:
        yield registry


@pytest.fixture
async def make_content(tmp_path: Path) -> AsyncIterator[ContentFactory]:
    """Build ``ProxyContent`` for any upstream URL; each gets its own cache, all closed after."""
    made: list[ProxyContent] = []

    def make(
        url: str,
        credentials: tuple[str, str] | None = None,
        tags: TagFreshness = DEFAULT_TAG_FRESHNESS,
    ) -> ProxyContent:
        store = open_filesystem_store(tmp_path / f"cache-{len(made)}")
        content = ProxyContent(store, UpstreamClient(url, credentials, timeout=5), tags)
        made.append(content)
        return content

    yield make
    for content in made:
        await content.close()


@pytest.fixture
def content(upstream: UpstreamRegistry, make_content: ContentFactory) -> ProxyContent:
    return make_content(upstream.url)
