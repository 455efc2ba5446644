"""Signing in: ``/v2/users/login`` and ``/v2/auth/token`` give a Hub-shaped bearer JWT."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.api.conftest import Api


async def test_login_returns_a_jwt_in_hubs_claim_layout(api: Api) -> None:
    reply = await api.call(
        "POST", "/v2/users/login/", json={"username": "bob", "password": "bob-password"}
    )
    assert reply.status == 200 and set(reply.body) == {"token"}
    token = reply.body["token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"  # docker/cli rejects ES256
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"sub", "iss", "aud", "exp", "iat", "jti", "scope"} <= set(claims)
    assert isinstance(claims["exp"], int) and claims["exp"] > time.time()
    hub = claims["https://hub.docker.com"]
    assert (hub["username"], hub["email"]) == ("bob", "bob@example.com")
    assert hub["uuid"] == claims["sub"] and hub["session_id"]


async def test_auth_token(api: Api) -> None:
    body = {"identifier": "alice", "secret": "alice-password"}
    reply = await api.call("POST", "/v2/auth/token", json=body)
    assert reply.status == 200 and set(reply.body) == {"access_token"}
    headers_ok = await api.call("GET", "/v2/orgs/acme/settings", None)
    assert headers_ok.status == 401 and headers_ok.headers["WWW-Authenticate"] == "Bearer"


async def test_bad_credentials(api: Api) -> None:
    reply = await api.call("POST", "/v2/users/login", json={"username": "bob", "password": "no"})
    assert reply.status == 401
    assert reply.body == {
        "detail": "Incorrect authentication credentials",
        "login_2fa_token": None,
    }
    reply = await api.call("POST", "/v2/auth/token", json={"identifier": "x", "secret": "y"})
    assert reply.status == 401 and reply.body["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "bob"},
        {"username": 1, "password": "x"},
        {"username": "a", "password": "b", "c": 1},
    ],
)
async def test_login_bad_input(api: Api, body: object) -> None:
    assert (await api.call("POST", "/v2/users/login", json=body)).status == 400


@pytest.mark.parametrize(
    "header", ["Bearer nonsense", "Bearer ", "Basic Ym9iOmJvYi1wYXNzd29yZA==", "Bearer a.b.c"]
)
async def test_bad_bearer_tokens_are_401(api: Api, header: str) -> None:
    async with api.session.get(
        f"{api.url}/v2/orgs/acme/settings", headers={"Authorization": header}
    ) as response:
        assert response.status == 401
        assert (await response.json())["message"]


async def test_a_token_signed_with_another_key_is_refused(api: Api) -> None:
    good = jwt.decode(await api.jwt("alice"), options={"verify_signature": False})
    forged = jwt.encode(good, "another-key-of-32-bytes-or-more!!", "HS256")
    async with api.session.get(
        f"{api.url}/v2/orgs/acme/settings", headers={"Authorization": f"Bearer {forged}"}
    ) as response:
        assert response.status == 401
