"""Upstream authentication against real registries: Basic (htpasswd) and Bearer tokens."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from imagegate.auth.tokens import SigningKey, TokenIssuer
from imagegate.core.digests import Digest
from imagegate.core.errors import NameUnknown, UpstreamError
from imagegate.core.names import parse_repository
from imagegate.core.scopes import parse_scopes
from imagegate.upstream.auth import parse_challenge
from imagegate.upstream.client import UpstreamClient
from tests.support.images import build_image, push_image
from tests.support.upstream import UpstreamRegistry, htpasswd_auth, token_auth

ACCOUNT = ("svc", "s3cret")
SERVICE = "upstream-registry"


def test_parse_challenge() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry",'
        'scope="repository:library/a:pull,push",error="insufficient_scope"'
    )
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "registry",
        "scope": "repository:library/a:pull,push",
        "error": "insufficient_scope",
    }
    basic = parse_challenge('Basic realm="upstream"')
    assert basic is not None and basic.scheme == "basic"
    assert parse_challenge("") is None


class TokenServer:
    """A Docker token endpoint granting ``ACCOUNT`` what it asks; others get nothing."""

    def __init__(self, directory: Path) -> None:
        key = SigningKey.generate()
        self.issuer = TokenIssuer(key, "test-issuer", ttl_seconds=300)
        self.certificate = directory / "token.pem"
        self.certificate.write_bytes(key.certificate_pem())
        self.requests: list[tuple[bool, list[str]]] = []  # (authenticated, scopes)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _token(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        good = auth is not None and auth == _basic(*ACCOUNT)
        if auth is not None and not good:
            return web.json_response({"details": "bad credentials"}, status=401)
        scopes = request.query.getall("scope", [])
        self.requests.append((good, scopes))
        granted = parse_scopes(scopes) if good else []
        token = self.issuer.issue(ACCOUNT[0] if good else "", request.query["service"], granted)
        return web.json_response({"token": token.token, "expires_in": token.expires_in})

    async def start(self) -> TokenServer:
        app = web.Application()
        app.router.add_get("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}/token"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def basic_upstream(tmp_path: Path) -> Iterator[UpstreamRegistry]:
    with UpstreamRegistry(tmp_path, auth=htpasswd_auth(tmp_path, dict([ACCOUNT]))) as registry:
        yield registry


@pytest.fixture
async def token_server(tmp_path: Path) -> AsyncIterator[TokenServer]:
    server = await TokenServer(tmp_path).start()
    yield server
    await server.stop()


@pytest.fixture
def bearer_upstream(tmp_path: Path, token_server: TokenServer) -> Iterator[UpstreamRegistry]:
    auth = token_auth(token_server.url, SERVICE, "test-issuer", token_server.certificate)
    with UpstreamRegistry(tmp_path / "registry", auth=auth) as registry:
        yield registry


async def test_basic_auth_upstream(basic_upstream: UpstreamRegistry) -> None:
    image = build_image("basic")
    push_image(basic_upstream.url, "acme/private", "1", image, ACCOUNT)
    client = UpstreamClient(basic_upstream.url, ACCOUNT)
    try:
        manifest = await client.get_manifest(
            parse_repository("acme/private"), "1", [image.media_type]
        )
        assert manifest.body == image.manifest
    finally:
        await client.close()

    anonymous = UpstreamClient(basic_upstream.url)
    try:
        with pytest.raises(NameUnknown, match="refused access to repository acme/private"):
            await anonymous.get_manifest(parse_repository("acme/private"), "1", [image.media_type])
    finally:
        await anonymous.close()


async def test_bearer_token_upstream_caches_tokens_per_scope(
    bearer_upstream: UpstreamRegistry, token_server: TokenServer
) -> None:
    image = build_image("bearer")
    # In a thread: the token server answering the push runs on this event loop.
    await asyncio.to_thread(push_image, bearer_upstream.url, "acme/private", "1", image, ACCOUNT)
    token_server.requests.clear()
    repository = parse_repository("acme/private")
    client = UpstreamClient(bearer_upstream.url, ACCOUNT)
    try:
        for _ in range(3):
            manifest = await client.get_manifest(repository, "1", [image.media_type])
            assert manifest.body == image.manifest
            layer = image.layer_digests[0]
            assert await client.head_blob(repository, Digest.parse(layer)) == len(
                image.blobs[layer]
            )
        assert token_server.requests == [(True, ["repository:acme/private:pull"])]
    finally:
        await client.close()


async def test_bearer_upstream_refuses_anonymous_and_wrong_accounts(
    bearer_upstream: UpstreamRegistry, token_server: TokenServer
) -> None:
    image = build_image("bearer-refused")
    # In a thread: the token server answering the push runs on this event loop.
    await asyncio.to_thread(push_image, bearer_upstream.url, "acme/private", "1", image, ACCOUNT)
    repository = parse_repository("acme/private")
    anonymous = UpstreamClient(bearer_upstream.url)
    wrong = UpstreamClient(bearer_upstream.url, ("svc", "wrong"))
    try:
        with pytest.raises(NameUnknown, match="refused access to repository acme/private"):
            await anonymous.head_manifest(repository, "1", [image.media_type])
        with pytest.raises(UpstreamError, match="refused the configured account 'svc'"):
            await wrong.head_manifest(repository, "1", [image.media_type])
    finally:
        await anonymous.close()
        await wrong.close()
