"""A real gateway served in-process by uvicorn, for the management API and, over plain
HTTP, the console's sessions and routes (the browser tests are in tests/console).

The world: organization ``acme`` (owner ``alice``; members ``bob`` in ``members`` and
``devs``), organization ``globex`` (owner ``gina``), ``dave`` in no organization, and
``root`` a gateway admin. Each user's password is ``<name>-password``.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import argon2
import pytest
import uvicorn
from starlette.applications import Starlette

from imagegate.auth import passwords
from imagegate.bootstrap import running_gateway, server_config
from imagegate.config import Settings, load_settings
from imagegate.services import Services, close_services, open_services
from tests.db.fixtures import database_url, empty_tables
from tests.support.process import free_port

__all__ = ["database_url"]

USERS = ("alice", "bob", "dave", "gina", "root")
COOKIE = "imagegate_console"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


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
    session: aiohttp.ClientSession  # keeps no cookies: each ``Visitor`` holds its own
    jwts: dict[str, str]
    app: Starlette

    async def call(
        self,
        method: str,
        path: str,
        as_user: str | None = None,
        json: Any = None,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
        *,
        bearer: str | None = None,
    ) -> Reply:
        headers = {"Accept": "application/json"}
        if as_user is not None:
            bearer = await self.jwt(as_user)
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
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

    async def login(self, user: str, secret: str) -> str:
        """A bearer token for ``user`` signed in with ``secret`` (a password or token)."""
        reply = await self.call(
            "POST", "/v2/users/login", json={"username": user, "password": secret}
        )
        assert reply.status == 200, reply.body
        token: str = reply.body["token"]
        return token

    async def visitor(self, user: str | None = None, secret: str | None = None) -> Visitor:
        """A console visitor with a cookie of its own, signed in as ``user`` if given."""
        visitor = Visitor(self)
        reply = await visitor.get("/console/sign-in")
        assert reply.status == 200, reply.body
        if user is not None:
            reply = await visitor.sign_in(user, secret or f"{user}-password")
            assert reply.status == 303, reply.body
        return visitor


@dataclass
class Visitor:
    """The console over plain HTTP, as a browser would use it: its own session cookie,
    and the CSRF token of the last page, sent with every form."""

    api: Api
    cookie: str = ""
    csrf: str = ""

    async def get(self, path: str, *, keep_cookie: bool = False) -> Reply:
        return await self.request("GET", path, keep_cookie=keep_cookie)

    async def post(
        self, path: str, form: dict[str, str] | None = None, *, keep_cookie: bool = False
    ) -> Reply:
        return await self.request("POST", path, form or {}, keep_cookie=keep_cookie)

    async def request(
        self, method: str, path: str, form: dict[str, str] | None = None, *, keep_cookie: bool
    ) -> Reply:
        """``keep_cookie``: ignore a new cookie, so the visitor stays who it was."""
        headers = {"Cookie": f"{COOKIE}={self.cookie}"} if self.cookie else {}
        data = {"csrf_token": self.csrf, **form} if form is not None else None
        async with self.api.session.request(
            method, f"{self.api.url}{path}", data=data, headers=headers, allow_redirects=False
        ) as response:
            text = await response.text()
            if COOKIE in response.cookies and not keep_cookie:
                self.cookie = response.cookies[COOKIE].value
            found = _CSRF.search(text)
            if found is not None and not keep_cookie:
                self.csrf = found.group(1)
            return Reply(response.status, text, dict(response.headers))

    async def sign_in(self, user: str, secret: str) -> Reply:
        """Sign in through the form; on success, load a page for its CSRF token."""
        reply = await self.post("/console/sign-in", {"username": user, "secret": secret})
        if reply.status == 303:
            await self.get("/console/tokens")
        return reply


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
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            yield Api(f"http://127.0.0.1:{port}", settings, services, session, {}, app)
        server.should_exit = True
        await task
    await close_services(services)
