"""A real gateway served in-process by uvicorn, for the management API.

The world: organization ``acme`` (owner ``alice``; members ``bob`` in ``members`` and
``devs``), organization ``globex`` (owner ``gina``), ``dave`` in no organization, and
``root`` a gateway admin. Each user's password is ``<name>-password``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import argon2
import pytest
import uvicorn

from imagegate.auth import passwords
from imagegate.bootstrap import running_gateway, server_config
from imagegate.config import Settings, load_settings
from imagegate.services import Services, close_services, open_services
from tests.db.fixtures import database_url, empty_tables
from tests.support.process import free_port

__all__ = ["database_url"]

USERS = ("alice", "bob", "dave", "gina", "root")


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Api:
    url: str
    settings: Settings
    services: Services
    session: aiohttp.ClientSession
    jwts: dict[str, str]

    async def call(
        self,
        method: str,
        path: str,
        as_user: str | None = None,
        json: Any = None,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        headers = {"Accept": "application/json"}
        if as_user is not None:
            headers["Authorization"] = f"Bearer {await self.jwt(as_user)}"
        async with self.session.request(
            method,
            f"{self.url}{path}",
            json=json,
            data=data,
            headers=headers,
            params=params,
            allow_redirects=False,
        ) as response:
            text = await response.text()
            body = await response.json(content_type=None) if text else None
            return Reply(response.status, body, dict(response.headers))

    async def jwt(self, user: str) -> str:
        if user not in self.jwts:
            reply = await self.call(
                "POST", "/v2/users/login", json={"username": user, "password": f"{user}-password"}
            )
            assert reply.status == 200, reply.body
            self.jwts[user] = reply.body["token"]
        return self.jwts[user]


@pytest.fixture
async def api(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    cheap = functools.partial(argon2.PasswordHasher, time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords.argon2, "PasswordHasher", cheap)
    port = free_port()
    settings = load_settings(
        {
            "IMAGEGATE_DATA_DIR": str(tmp_path / "data"),
            "IMAGEGATE_DATABASE_URL": database_url,
            "IMAGEGATE_UPSTREAM_URL": "http://127.0.0.1:9",
            "IMAGEGATE_HUB_API_URL": "",
        },
        port=port,
    )
    services = await open_services(settings)
    await empty_tables(services.database)
    for name in USERS:
        await services.accounts.create_user(
            name, f"{name}@example.com", f"{name}-password", admin=name == "root"
        )
    await services.orgs.add_org("acme", "alice")
    await services.orgs.add_member("acme", "bob")
    await services.orgs.add_member("acme", "bob", "devs")
    await services.orgs.add_org("globex", "gina")
    async with running_gateway(settings) as app:
        server = uvicorn.Server(server_config(app, settings))  # as `imagegate serve` does
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.02)
        async with aiohttp.ClientSession() as session:
            yield Api(f"http://127.0.0.1:{port}", settings, services, session, {})
        server.should_exit = True
        await task
    await close_services(services)
