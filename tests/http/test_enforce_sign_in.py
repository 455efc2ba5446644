"""Enforce sign-in through a real gateway: the data directory's registry.json, written
while the gateway runs, and what each kind of client is told.

The gateway looks at the file at most once a second, so each change is followed by
``settle()`` before the next request is expected to see it: no restart in between.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.http.conftest import Gateway, basic

MANIFESTS = (
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)
DOCKER_TEXT = (
    "You must be a member of the [acme] organization. Log in with a different account, "
    "or contact your organization owner to add your account."
)
SIGN_IN_TEXT = (
    "sign-in required: this registry only serves members of the [acme] organization; "
    "log in with your account (docker login / podman login)"
)
MISCONFIGURED_TEXT = (
    "sign-in enforcement is misconfigured on this registry (its registry.json is "
    "invalid), so every request is refused; ask your administrator to run "
    "'imagegate enforce-sign-in check'"
)
ALPINE = "/v2/library/alpine/manifests/3"
ALPINE_SCOPE = "repository:library/alpine:pull"
PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "dave": "dave-password"}


@pytest.fixture
async def gateway_with_dave(gateway: Gateway) -> AsyncIterator[Gateway]:
    """alice owns acme, bob is a member; dave belongs to initech only."""
    await gateway.services.accounts.create_user("dave", None, PASSWORDS["dave"])
    await gateway.services.orgs.add_org("initech", "dave")
    yield gateway


def registry_json(gateway: Gateway) -> Path:
    return gateway.settings.data_dir / "registry.json"


async def settle() -> None:
    await asyncio.sleep(1.1)  # the gateway's recheck interval, plus a margin


async def allow(gateway: Gateway, *orgs: str) -> None:
    staging = registry_json(gateway).with_suffix(".tmp")
    staging.write_text(json.dumps({"allowedOrgs": list(orgs)}))
    staging.replace(registry_json(gateway))
    await settle()


async def get_token(
    gateway: Gateway, user: str | None, scope: str | None = ALPINE_SCOPE
) -> aiohttp.ClientResponse:
    params = {"service": "imagegate", **({"scope": scope} if scope else {})}
    headers = {"Authorization": basic(user, PASSWORDS[user])} if user else {}
    response = await gateway.session.get(f"{gateway.url}/token", params=params, headers=headers)
    await response.read()
    return response


async def token(gateway: Gateway, user: str | None, scope: str = ALPINE_SCOPE) -> str:
    response = await get_token(gateway, user, scope)
    assert response.status == 200, await response.text()
    return str((await response.json())["token"])


async def request(
    gateway: Gateway, path: str, bearer: str, method: str = "GET"
) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"Bearer {bearer}", "Accept": MANIFESTS}
    response = await gateway.session.request(method, f"{gateway.url}{path}", headers=headers)
    await response.read()
    return response


async def error_of(response: aiohttp.ClientResponse) -> tuple[int, str, str]:
    error = (await response.json())["errors"][0]
    return response.status, error["code"], error["message"]


async def test_anonymous_is_told_to_sign_in_on_get_and_head(gateway_with_dave: Gateway) -> None:
    gateway = gateway_with_dave
    await allow(gateway, "acme")
    anonymous = await token(gateway, None)  # anonymous clients still get tokens
    response = await request(gateway, ALPINE, anonymous)
    assert await error_of(response) == (401, "UNAUTHORIZED", SIGN_IN_TEXT)
    challenge = response.headers["WWW-Authenticate"]
    assert f'scope="{ALPINE_SCOPE}"' in challenge
    head = await request(gateway, ALPINE, anonymous, "HEAD")
    assert head.status == 401
    assert f'error_description="{SIGN_IN_TEXT}"' in head.headers["WWW-Authenticate"]


async def test_a_non_member_cannot_log_in_and_is_refused_everywhere(
    gateway_with_dave: Gateway,
) -> None:
    gateway = gateway_with_dave
    paths = {
        ALPINE: ALPINE_SCOPE,
        "/v2/someone/tool/manifests/1": "repository:someone/tool:pull",
        "/v2/library/alpine/tags/list": ALPINE_SCOPE,
    }
    # Tokens issued before sign-in was enforced.
    earlier = {path: await token(gateway, "dave", scope) for path, scope in paths.items()}
    await allow(gateway, "acme")
    for scope in (None, ALPINE_SCOPE):  # docker login's check, and a pull's token
        response = await get_token(gateway, "dave", scope)
        assert await error_of(response) == (401, "UNAUTHORIZED", DOCKER_TEXT)
    # A token from before does not outlive the change.
    for path, bearer in earlier.items():
        response = await request(gateway, path, bearer)
        assert await error_of(response) == (403, "DENIED", DOCKER_TEXT)


async def test_members_and_owners_pull_under_their_policy_as_before(
    gateway_with_dave: Gateway,
) -> None:
    gateway = gateway_with_dave
    await allow(gateway, "acme")
    for user in ("alice", "bob"):
        response = await request(gateway, ALPINE, await token(gateway, user))
        assert response.status == 200, await response.text()
    await gateway.services.access.set_settings("acme", enabled=True, allow_official=False)
    refused = await request(gateway, ALPINE, await token(gateway, "bob"))
    assert (await error_of(refused))[:2] == (403, "DENIED")
    assert (
        "image access restricted: library/alpine blocked for organization acme"
        in (await error_of(refused))[2]
    )
    owner = await request(gateway, ALPINE, await token(gateway, "alice"))
    assert owner.status == 200  # owners bypass the policy, as before


async def test_a_change_to_the_file_applies_without_a_restart(
    gateway_with_dave: Gateway,
) -> None:
    gateway = gateway_with_dave
    await allow(gateway, "acme")
    assert (await get_token(gateway, "dave", None)).status == 401
    await allow(gateway, "acme", "initech")
    dave = await token(gateway, "dave")
    assert (await request(gateway, ALPINE, dave)).status == 200
    registry_json(gateway).unlink()  # the data directory's file: gone means not enforced
    await settle()
    assert (await request(gateway, ALPINE, await token(gateway, None))).status == 200


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'\xef\xbb\xbf{"allowedOrgs": ["acme"]}', "the file starts with a UTF-8 byte order mark"),
        (b'{"allowedOrgs": ["nosuchorg"]}', "organization 'nosuchorg' not found"),
        # Found by fuzzing: these escaped the parser and answered every request with a 500.
        (b'{"allowedOrgs": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested more than 64 levels"),
        (b'{"allowedOrgs": [' + b"7" * 5000 + b"]}", "a number too long"),
    ],
    ids=["bom", "unknown-org", "nested-too-deep", "huge-number"],
)
async def test_an_invalid_file_refuses_every_pull_and_logs_why(
    gateway_with_dave: Gateway, caplog: pytest.LogCaptureFixture, content: bytes, problem: str
) -> None:
    gateway = gateway_with_dave
    tokens = {user: await token(gateway, user) for user in (None, "alice", "bob", "dave")}
    registry_json(gateway).write_bytes(content)
    await settle()
    with caplog.at_level(logging.WARNING, logger="imagegate.signin"):
        for user, bearer in tokens.items():
            response = await request(gateway, ALPINE, bearer)
            assert await error_of(response) == (403, "DENIED", MISCONFIGURED_TEXT), user
        login = await get_token(gateway, "alice", None)
        assert await error_of(login) == (401, "UNAUTHORIZED", MISCONFIGURED_TEXT)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "imagegate.signin"]
    assert str(registry_json(gateway)) in warning
    assert problem in warning


async def test_the_catalog_answers_members_only(gateway_with_dave: Gateway) -> None:
    gateway = gateway_with_dave
    scope = "registry:catalog:*"
    earlier = {user: await token(gateway, user, scope) for user in (None, "bob", "dave")}
    await allow(gateway, "acme")
    member = await request(gateway, "/v2/_catalog", earlier["bob"])
    assert member.status == 200
    assert await member.json() == {"repositories": []}
    anonymous = await request(gateway, "/v2/_catalog", earlier[None])
    assert await error_of(anonymous) == (401, "UNAUTHORIZED", SIGN_IN_TEXT)
    outsider = await request(gateway, "/v2/_catalog", earlier["dave"])
    assert await error_of(outsider) == (403, "DENIED", DOCKER_TEXT)


async def test_the_base_endpoint_still_starts_a_login(gateway_with_dave: Gateway) -> None:
    gateway = gateway_with_dave
    await allow(gateway, "acme")
    async with gateway.session.get(f"{gateway.url}/v2/") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")
    member = await token(gateway, "bob", "")
    assert (await request(gateway, "/v2/", member)).status == 200
