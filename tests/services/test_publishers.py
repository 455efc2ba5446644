"""Publisher status: admin overrides, and Docker Hub's badge from a stand-in Hub API."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from imagegate.core.categories import PublisherStatus
from imagegate.services import InvalidInput, NotFound, Services
from tests.services.conftest import MakeServices

BADGES = {"verifiedco": "verified_publisher", "ossproject": "open_source", "plainorg": ""}


class FakeHub:
    """``GET /v2/orgs/{namespace}/`` answered from ``BADGES``; a few namespaces misbehave."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.url = ""
        self.release = asyncio.Event()

    async def org(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        self.asked.append(namespace)
        if namespace == "slowpoke":  # answers only when the test ends
            await self.release.wait()
        if namespace == "gated":
            await self.release.wait()
            return web.json_response({"badge": "verified_publisher"})
        if namespace == "broken":
            return web.Response(status=503, text="maintenance")
        if namespace == "garbled":
            return web.Response(text="<html>not json</html>")
        if namespace == "oddbadge":
            return web.json_response({"badge": "platinum_partner"})
        if namespace not in BADGES:
            return web.json_response({"message": "not found"}, status=404)
        return web.json_response({"orgname": namespace, "badge": BADGES[namespace]})


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    fake = FakeHub()
    app = web.Application()
    app.router.add_get("/v2/orgs/{namespace}/", fake.org)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        fake.release.set()
        await runner.cleanup()


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [
        ("verifiedco", PublisherStatus.VERIFIED_PUBLISHER),
        ("ossproject", PublisherStatus.SPONSORED_OSS),
        ("plainorg", PublisherStatus.COMMUNITY),  # empty badge
        ("oddbadge", PublisherStatus.COMMUNITY),  # a badge we do not know
        ("someuser", PublisherStatus.COMMUNITY),  # 404
        ("broken", PublisherStatus.COMMUNITY),  # 503
        ("garbled", PublisherStatus.COMMUNITY),  # not JSON
    ],
)
async def test_hub_badges(
    make_services: MakeServices, hub: FakeHub, namespace: str, expected: PublisherStatus
) -> None:
    services = make_services(hub.url)
    assert await services.publishers.status(namespace) == expected
    assert hub.asked == [namespace]


async def test_a_slow_hub_times_out_to_community(
    make_services: MakeServices, hub: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    services = make_services(hub.url, timeout=0.2)
    with caplog.at_level(logging.WARNING):
        assert await services.publishers.status("slowpoke") == PublisherStatus.COMMUNITY
    assert "treating it as community" in caplog.text


async def test_an_unreachable_hub_means_community(make_services: MakeServices) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    services = make_services(f"http://127.0.0.1:{port}")
    assert await services.publishers.status("verifiedco") == PublisherStatus.COMMUNITY


async def test_answers_are_cached_for_an_hour_failures_for_a_minute(
    make_services: MakeServices, hub: FakeHub
) -> None:
    ticker = Ticker()
    publishers = make_services(hub.url, monotonic=ticker).publishers
    for _ in range(3):
        assert await publishers.status("verifiedco") == PublisherStatus.VERIFIED_PUBLISHER
        assert await publishers.status("broken") == PublisherStatus.COMMUNITY
    assert hub.asked == ["verifiedco", "broken"]
    ticker.now += 61
    await publishers.status("verifiedco")
    await publishers.status("broken")
    assert hub.asked == ["verifiedco", "broken", "broken"]
    ticker.now += 3600
    await publishers.status("verifiedco")
    assert hub.asked.count("verifiedco") == 2


async def test_concurrent_lookups_of_one_namespace_share_one_request(
    make_services: MakeServices, hub: FakeHub
) -> None:
    publishers = make_services(hub.url).publishers
    waiting = [asyncio.create_task(publishers.status("gated")) for _ in range(10)]
    await asyncio.sleep(0.05)
    hub.release.set()
    assert set(await asyncio.gather(*waiting)) == {PublisherStatus.VERIFIED_PUBLISHER}
    assert hub.asked == ["gated"]


async def test_an_override_beats_hub_and_applies_at_once(
    make_services: MakeServices, hub: FakeHub
) -> None:
    gateway = make_services(hub.url).publishers
    admin = make_services().publishers
    assert await gateway.status("verifiedco") == PublisherStatus.VERIFIED_PUBLISHER
    await admin.set_override("verifiedco", PublisherStatus.COMMUNITY)
    assert await gateway.status("verifiedco") == PublisherStatus.COMMUNITY
    await admin.set_override("adminpub", PublisherStatus.SPONSORED_OSS)
    assert await gateway.status("adminpub") == PublisherStatus.SPONSORED_OSS
    await admin.remove_override("verifiedco")
    assert await gateway.status("verifiedco") == PublisherStatus.VERIFIED_PUBLISHER
    assert hub.asked == ["verifiedco"]  # the cached answer came back; adminpub never asked


async def test_library_and_an_unset_hub_are_never_asked(
    make_services: MakeServices, hub: FakeHub
) -> None:
    assert await make_services(hub.url).publishers.status("library") == PublisherStatus.COMMUNITY
    assert await make_services("").publishers.status("verifiedco") == PublisherStatus.COMMUNITY
    assert hub.asked == []


async def test_overrides_are_listed_replaced_and_removed(services: Services) -> None:
    await services.publishers.set_override("beta", PublisherStatus.COMMUNITY)
    await services.publishers.set_override("alpha", PublisherStatus.VERIFIED_PUBLISHER)
    await services.publishers.set_override("beta", PublisherStatus.SPONSORED_OSS)
    listed = await services.publishers.list_overrides()
    assert [(o.namespace, o.status) for o in listed] == [
        ("alpha", PublisherStatus.VERIFIED_PUBLISHER),
        ("beta", PublisherStatus.SPONSORED_OSS),
    ]
    await services.publishers.remove_override("alpha")
    with pytest.raises(NotFound, match="no publisher override"):
        await services.publishers.remove_override("alpha")
    assert [o.namespace for o in await services.publishers.list_overrides()] == ["beta"]


@pytest.mark.parametrize(
    ("namespace", "message"),
    [
        ("library", "Docker Official Images"),
        ("Upper", "invalid namespace"),
        ("a/b", "invalid namespace"),
        ("", "invalid namespace"),
        ("-dash", "invalid namespace"),
    ],
)
async def test_override_namespaces_are_checked(
    services: Services, namespace: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        await services.publishers.set_override(namespace, PublisherStatus.VERIFIED_PUBLISHER)
    assert await services.publishers.list_overrides() == []
