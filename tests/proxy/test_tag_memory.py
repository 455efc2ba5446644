"""Tags answered from memory within their TTL, revalidated once after it, against a real
registry behind a counting proxy; manifests by digest from a bounded memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from imagegate.auth.cache import ENTRY_OVERHEAD_BYTES
from imagegate.config import Settings
from imagegate.core.errors import ManifestUnknown
from imagegate.proxy.service import ProxyContent
from imagegate.proxy.tagmemory import Age, TagFreshness
from imagegate.storage.filesystem import open_filesystem_store
from imagegate.upstream.client import UpstreamClient
from tests.proxy.faults import FaultyUpstream
from tests.proxy.helpers import ref, repo
from tests.support.images import Image, build_image, delete_manifest, push_image
from tests.support.polling import eventually
from tests.support.upstream import UpstreamRegistry

TTL, STALE = 30.0, 10.0


class Clock:
    """Monotonic time the test moves by hand: no test waits for a TTL to pass."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def past_ttl(self) -> None:
        self.now += TTL + 1  # stale: served while revalidated

    def past_stale(self) -> None:
        self.now += TTL + STALE + 1  # expired: requests wait for the revalidation


@pytest.fixture
async def counting(upstream: UpstreamRegistry) -> AsyncIterator[FaultyUpstream]:
    server = await FaultyUpstream(upstream.url).start()
    yield server
    await server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make(
    tmp_path: Path, counting: FaultyUpstream, clock: Clock
) -> AsyncIterator[Callable[..., ProxyContent]]:
    made: list[ProxyContent] = []

    def build(ttl: float = TTL, stale: float = STALE) -> ProxyContent:
        content = ProxyContent(
            open_filesystem_store(tmp_path / f"cache-{len(made)}"),
            UpstreamClient(counting.url, timeout=5),
            TagFreshness(ttl, stale),
            clock=clock,
        )
        made.append(content)
        return content

    yield build
    for content in made:
        await content.close()


def tag_heads(counting: FaultyUpstream, tag: str) -> int:
    return counting.count("HEAD", f"/manifests/{tag}")


async def pull(content: ProxyContent, name: str) -> str:
    return str((await content.get_manifest(repo("moving"), ref(name), [])).digest)


async def pulled_once(
    upstream: UpstreamRegistry, content: ProxyContent, name: str, tag: str = "latest"
) -> Image:
    """An image pushed upstream as ``tag`` and pulled once, so the tag is remembered."""
    image = build_image(name)
    push_image(upstream.url, "library/moving", tag, image)
    assert await pull(content, tag) == image.digest
    return image


def test_freshness_ages() -> None:
    freshness = TagFreshness(30, 10)
    assert [freshness.age(100, now) for now in (100, 129.9, 130, 139.9, 140)] == [
        Age.FRESH,
        Age.FRESH,
        Age.STALE,
        Age.STALE,
        Age.EXPIRED,
    ]
    assert not TagFreshness(0, 10).remembers


async def test_within_the_ttl_a_tag_does_not_reach_the_upstream(
    upstream: UpstreamRegistry, counting: FaultyUpstream, make: Callable[..., ProxyContent]
) -> None:
    content = make()
    image = await pulled_once(upstream, content, "memory")
    asked = len(counting.requests)
    for _ in range(5):
        assert await pull(content, "latest") == image.digest
    assert len(counting.requests) == asked  # no HEAD, no GET: tag and manifest from memory
    assert await pull(content, image.digest) == image.digest
    assert len(counting.requests) == asked


async def test_a_moved_tag_is_served_once_the_ttl_has_passed(
    upstream: UpstreamRegistry,
    counting: FaultyUpstream,
    make: Callable[..., ProxyContent],
    clock: Clock,
) -> None:
    first, second, third = build_image("t-1"), build_image("t-2"), build_image("t-3")
    push_image(upstream.url, "library/moving", "latest", first)
    content = make()
    assert await pull(content, "latest") == first.digest

    push_image(upstream.url, "library/moving", "latest", second)
    assert await pull(content, "latest") == first.digest  # within the TTL: as remembered
    clock.past_stale()
    assert await pull(content, "latest") == second.digest  # expired: waited for upstream

    # Stale: the old digest at once, while one revalidation runs; then the new one.
    push_image(upstream.url, "library/moving", "latest", third)
    clock.past_ttl()
    assert await pull(content, "latest") == second.digest
    await eventually(lambda: tag_heads(counting, "latest") == 3)

    async def moved() -> bool:
        return await pull(content, "latest") == third.digest

    await eventually(moved)
    assert tag_heads(counting, "latest") == 3  # the new digest is fresh again


async def test_ttl_zero_asks_the_upstream_every_time(
    upstream: UpstreamRegistry, counting: FaultyUpstream, make: Callable[..., ProxyContent]
) -> None:
    first, second = build_image("zero-1"), build_image("zero-2")
    push_image(upstream.url, "library/moving", "latest", first)
    content = make(ttl=0)
    for _ in range(3):
        assert await pull(content, "latest") == first.digest
    assert tag_heads(counting, "latest") == 3
    push_image(upstream.url, "library/moving", "latest", second)
    assert await pull(content, "latest") == second.digest


async def test_concurrent_requests_after_expiry_revalidate_once_and_conditionally(
    upstream: UpstreamRegistry,
    counting: FaultyUpstream,
    make: Callable[..., ProxyContent],
    clock: Clock,
) -> None:
    content = make()
    image = await pulled_once(upstream, content, "crowd")

    statuses: list[tuple[str | None, int]] = []

    async def record(request: web.Request, upstream: FaultyUpstream) -> web.StreamResponse | None:
        if request.method != "HEAD":
            return None
        status, headers, _ = await upstream.fetch(request)
        statuses.append((request.headers.get("If-None-Match"), status))
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = int(headers.get("Content-Length") or 0) or None
        await response.prepare(request)
        return response

    counting.fault = record
    clock.past_stale()
    digests = await asyncio.gather(*(pull(content, "latest") for _ in range(20)))
    assert set(digests) == {image.digest}
    assert tag_heads(counting, "latest") == 2  # the first pull's, and one for all twenty
    assert statuses == [(f'"{image.digest}"', 304)]  # the upstream said "unchanged"


async def test_an_unreachable_upstream_serves_the_last_digest(
    upstream: UpstreamRegistry, make: Callable[..., ProxyContent], clock: Clock
) -> None:
    content = make()
    image = await pulled_once(upstream, content, "fallback")

    upstream.stop()
    clock.past_ttl()
    assert await pull(content, "latest") == image.digest  # stale, revalidation failing
    clock.past_stale()
    assert await pull(content, "latest") == image.digest  # expired: the fallback, as before


async def test_a_tag_deleted_upstream_is_unknown_once_expired(
    upstream: UpstreamRegistry,
    counting: FaultyUpstream,
    make: Callable[..., ProxyContent],
    clock: Clock,
) -> None:
    content = make()
    image = await pulled_once(upstream, content, "deleted", "gone")

    delete_manifest(upstream.url, "library/moving", image.digest)
    clock.past_stale()
    answers = await asyncio.gather(
        *(pull(content, "gone") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(answer, ManifestUnknown) for answer in answers)
    assert len({id(answer) for answer in answers}) == 5  # each its own error to raise
    assert tag_heads(counting, "gone") == 2  # one for the five
    with pytest.raises(ManifestUnknown):  # forgotten: asked again, still gone
        await pull(content, "gone")
    assert tag_heads(counting, "gone") == 3


async def test_manifest_memory_is_bounded_by_bytes(
    upstream: UpstreamRegistry, counting: FaultyUpstream, tmp_path: Path
) -> None:
    images = [build_image(f"bound-{n}") for n in range(8)]
    for n, image in enumerate(images):
        push_image(upstream.url, "library/moving", str(n), image)
    budget = 3 * (len(images[0].manifest) + ENTRY_OVERHEAD_BYTES) + 100  # three manifests
    content = ProxyContent(
        open_filesystem_store(tmp_path / "bounded"),
        UpstreamClient(counting.url, timeout=5),
        TagFreshness(TTL, STALE),
        manifest_cache_bytes=budget,
    )
    try:
        for image in images:
            assert await pull(content, image.digest) == image.digest
        assert 0 < content.manifest_memory_bytes <= budget
        # Without the bytes on disk, only what memory kept is served without the upstream:
        # the three most recent manifests, not the first.
        for path in (tmp_path / "bounded" / "blobs").rglob("*"):
            if path.is_file():
                path.unlink()
        asked = len(counting.requests)
        for image in reversed(images[-3:]):
            assert await pull(content, image.digest) == image.digest
        assert len(counting.requests) == asked
        assert await pull(content, images[0].digest) == images[0].digest
        assert counting.count("GET", f"/manifests/{images[0].digest}") == 2
    finally:
        await content.close()


@pytest.mark.parametrize(("ttl", "heads"), [(30, 1), (0, 3)])
async def test_the_settings_choose_the_ttl(
    upstream: UpstreamRegistry, counting: FaultyUpstream, tmp_path: Path, ttl: int, heads: int
) -> None:
    push_image(upstream.url, "library/moving", "latest", build_image("settings"))
    settings = Settings(data_dir=tmp_path / "data", upstream_url=counting.url, tag_ttl_seconds=ttl)
    content = ProxyContent.from_settings(settings)
    try:
        for _ in range(3):
            await pull(content, "latest")
    finally:
        await content.close()
    assert tag_heads(counting, "latest") == heads
