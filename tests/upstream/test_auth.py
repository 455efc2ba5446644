"""Upstream authentication against real registries: Basic (htpasswd) and Bearer tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imagegate.core.digests import Digest
from imagegate.core.errors import NameUnknown, UpstreamError
from imagegate.core.names import parse_repository
from imagegate.upstream.auth import parse_challenge
from imagegate.upstream.client import UpstreamClient
from tests.support.images import build_image, push_image
from tests.support.tokenserver import TokenServer
from tests.support.upstream import UpstreamRegistry, htpasswd_auth

ACCOUNT = ("svc", "s3cret")


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


def test_quoted_values_lose_every_escape() -> None:
    # RFC 9110 quoted-pair: '\\' is one backslash, as '\"' is one quote (found by fuzzing).
    challenge = parse_challenge(
        r'Bearer realm="https://auth.example/token",error_description="C:\\temp is \"bad\""'
    )
    assert challenge is not None
    assert challenge.params["error_description"] == 'C:\\temp is "bad"'


@pytest.fixture
def basic_upstream(tmp_path: Path) -> Iterator[UpstreamRegistry]:
    with UpstreamRegistry(tmp_path, auth=htpasswd_auth(tmp_path, dict([ACCOUNT]))) as registry:
        yield registry


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[TokenServer]:
    with TokenServer(tmp_path, *ACCOUNT) as server:
        yield server


@pytest.fixture
def bearer_upstream(tmp_path: Path, token_server: TokenServer) -> Iterator[UpstreamRegistry]:
    auth = token_server.registry_auth()
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
    push_image(bearer_upstream.url, "acme/private", "1", image, ACCOUNT)
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
        assert token_server.requests == [(ACCOUNT[0], ["repository:acme/private:pull"])]
    finally:
        await client.close()


async def test_bearer_upstream_refuses_anonymous_and_wrong_accounts(
    bearer_upstream: UpstreamRegistry, token_server: TokenServer
) -> None:
    image = build_image("bearer-refused")
    push_image(bearer_upstream.url, "acme/private", "1", image, ACCOUNT)
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
