"""A real gateway served in-process by uvicorn, in front of a real distribution registry."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import uvicorn

from imagegate.bootstrap import running_gateway, server_config
from imagegate.config import Settings, load_settings
from imagegate.services import Services, close_services, open_services
from tests.support.images import Image, build_image, push_image
from tests.support.process import free_port
from tests.support.upstream import UpstreamRegistry


@dataclass
class Seeded:
    community: Image
    official: Image
    acme: Image


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamRegistry]:
    with UpstreamRegistry(tmp_path_factory.mktemp("upstream")) as registry:
        yield registry


@pytest.fixture(scope="module")
def seeded(upstream: UpstreamRegistry) -> Seeded:
    images = Seeded(
        community=build_image("http-community", padding=3 * 1024 * 1024),
        official=build_image("http-official", flavor="docker"),
        acme=build_image("http-acme"),
    )
    push_image(upstream.url, "someone/tool", "1", images.community)
    push_image(upstream.url, "library/alpine", "3", images.official)
    push_image(upstream.url, "acme/app", "1", images.acme)
    for tag in ("a", "b", "c", "d", "e"):
        push_image(upstream.url, "someone/tool", tag, images.community)
    return images


@dataclass
class Gateway:
    url: str
    settings: Settings
    services: Services
    session: aiohttp.ClientSession

    async def token(self, scope: str | None, user: tuple[str, str] | None = None) -> str:
        params = {"service": "imagegate"}
        if scope:
            params["scope"] = scope
        headers = {"Authorization": basic(*user)} if user else {}
        async with self.session.get(
            f"{self.url}/token", params=params, headers=headers
        ) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["token"])


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
async def gateway(
    tmp_path: Path, upstream: UpstreamRegistry, seeded: Seeded
) -> AsyncIterator[Gateway]:
    port = free_port()
    settings = load_settings(
        {
            "IMAGEGATE_DATA_DIR": str(tmp_path / "data"),
            "IMAGEGATE_UPSTREAM_URL": upstream.url,
            "IMAGEGATE_HUB_API_URL": "",
        },
        port=port,
    )
    services = await open_services(settings)
    await services.accounts.create_user("alice", "alice@example.com", "alice-password")
    await services.accounts.create_user("bob", None, "bob-password")
    await services.orgs.add_org("acme", "alice")
    await services.orgs.add_member("acme", "bob")
    async with running_gateway(settings) as app:
        server = uvicorn.Server(server_config(app, settings))  # as `imagegate serve` does
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.02)
        async with aiohttp.ClientSession() as session:
            yield Gateway(f"http://127.0.0.1:{port}", settings, services, session)
        server.should_exit = True
        await task
    await close_services(services)
