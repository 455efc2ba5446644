"""The Docker token flow as clients drive it (REFERENCE.md section 3)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import jwt
import pytest

from tests.http.conftest import Gateway, basic


async def test_base_challenge_has_absolute_realm_and_no_scope(gateway: Gateway) -> None:
    async with gateway.session.get(f"{gateway.url}/v2/") as response:
        assert response.status == 401
        challenge = response.headers["WWW-Authenticate"]
        assert challenge == f'Bearer realm="{gateway.url}/token",service="imagegate"'
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        body = await response.json()
        assert body["errors"][0]["code"] == "UNAUTHORIZED"


async def test_login_check_without_scope(gateway: Gateway) -> None:
    url = f"{gateway.url}/token?service=imagegate&account=alice&client_id=docker"
    headers = {"Authorization": basic("alice", "alice-password")}
    async with gateway.session.get(url, headers=headers) as response:
        assert response.status == 200
        body = await response.json()
        assert body["token"] == body["access_token"]
        assert body["expires_in"] >= 60
        assert body["issued_at"].endswith("Z")
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        assert claims["sub"] == "alice"
        assert claims["access"] == []
    async with gateway.session.get(
        f"{gateway.url}/v2/", headers={"Authorization": f"Bearer {body['token']}"}
    ) as response:
        assert response.status == 200


async def test_wrong_password_is_401_with_a_message(gateway: Gateway) -> None:
    headers = {"Authorization": basic("alice", "nope")}
    async with gateway.session.get(f"{gateway.url}/token", headers=headers) as response:
        assert response.status == 401
        error = (await response.json())["errors"][0]
        assert error == {
            "code": "UNAUTHORIZED",
            "message": "incorrect username or password",
            "detail": {},
        }


async def test_personal_access_token_works_as_a_password(gateway: Gateway) -> None:
    _, secret = await gateway.services.accounts.create_token("bob", "ci", None)
    token = await gateway.token("repository:acme/app:pull", ("bob", secret))
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "bob"
    assert claims["access"] == [{"type": "repository", "name": "acme/app", "actions": ["pull"]}]


async def _push_blob(gateway: Gateway, token: str, data: bytes) -> tuple[int, list[Any]]:
    """A monolithic blob upload to acme/app: the status and the registry's errors."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    async with gateway.session.post(
        f"{gateway.url}/v2/acme/app/blobs/uploads/?digest={digest}",
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
    ) as response:
        body = await response.json() if response.status >= 400 else {}
        return response.status, body.get("errors", [])


async def test_a_revoked_access_tokens_registry_token_pushes_no_more(gateway: Gateway) -> None:
    """A registry token lives IMAGEGATE_TOKEN_TTL_SECONDS. Revoking the access token it
    was issued for stops its pushes at once; only its pulls last until it expires."""
    info, secret = await gateway.services.accounts.create_token(
        "alice", "ci", scopes=["repo:write"]
    )
    scope = "repository:acme/app:pull,push"
    token = await gateway.token(scope, ("alice", secret))
    assert await _push_blob(gateway, token, b"before") == (201, [])
    await gateway.services.accounts.update_token("alice", info.uuid, active=False)
    status, errors = await _push_blob(gateway, token, b"after")
    assert status == 401
    assert [e["code"] for e in errors] == ["UNAUTHORIZED"]
    assert "was deactivated, deleted or has expired; log in again" in errors[0]["message"]
    before = "sha256:" + hashlib.sha256(b"before").hexdigest()
    async with gateway.session.get(  # reads go on until the registry token expires
        f"{gateway.url}/v2/acme/app/blobs/{before}", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 200 and await response.read() == b"before"
    password_token = await gateway.token(scope, ("alice", "alice-password"))
    assert await _push_blob(gateway, password_token, b"after") == (201, [])


async def test_grants_registry_actions_on_valid_names_only(gateway: Gateway) -> None:
    url = (
        f"{gateway.url}/token?service=imagegate&scope=repository:acme/app:pull,push,fly"
        "&scope=repository:Bad/Name:pull&scope=registry:catalog:*"
    )
    async with gateway.session.get(url) as response:
        body = await response.json()
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == ""
    assert claims["access"] == [
        {"type": "repository", "name": "acme/app", "actions": ["pull", "push"]}
    ]
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "ES256"
    assert len(header["kid"].split(":")) == 12


async def test_oauth2_password_grant(gateway: Gateway) -> None:
    form = {
        "grant_type": "password",
        "username": "alice",
        "password": "alice-password",
        "service": "imagegate",
        "client_id": "containerd",
        "scope": "repository:library/alpine:pull",
    }
    async with gateway.session.post(f"{gateway.url}/token", data=form) as response:
        assert response.status == 200
        body = await response.json()
        assert body["token_type"] == "Bearer"
        assert body["scope"] == "repository:library/alpine:pull"
    form["password"] = "wrong"
    async with gateway.session.post(f"{gateway.url}/token", data=form) as response:
        assert response.status == 401
    async with gateway.session.post(
        f"{gateway.url}/token", data={"grant_type": "refresh_token", "refresh_token": "x"}
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "unsupported_grant_type"


async def test_repository_request_challenges_with_its_scope(gateway: Gateway) -> None:
    async with gateway.session.get(f"{gateway.url}/v2/alpine/manifests/3") as response:
        assert response.status == 401
        assert 'scope="repository:alpine:pull"' in response.headers["WWW-Authenticate"]


async def test_token_for_another_repository_is_insufficient(gateway: Gateway) -> None:
    token = await gateway.token("repository:someone/tool:pull")
    headers = {"Authorization": f"Bearer {token}"}
    async with gateway.session.get(
        f"{gateway.url}/v2/library/alpine/manifests/3", headers=headers
    ) as response:
        assert response.status == 401
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_forged_token_is_refused(gateway: Gateway) -> None:
    headers = {"Authorization": "Bearer not-a-jwt"}
    async with gateway.session.get(f"{gateway.url}/v2/", headers=headers) as response:
        assert response.status == 401
        assert "invalid or expired token" in (await response.json())["errors"][0]["message"]


async def test_too_many_scopes_are_refused_with_a_clear_error(gateway: Gateway) -> None:
    scopes = [("scope", f"repository:someone/repo{i}:pull") for i in range(200)]
    async with gateway.session.get(
        f"{gateway.url}/token", params=[("service", "imagegate"), *scopes[:30]]
    ) as response:
        assert response.status == 200  # a few dozen scopes are fine
    async with gateway.session.get(
        f"{gateway.url}/token", params=[("service", "imagegate"), *scopes]
    ) as response:
        assert response.status == 400
        error = (await response.json())["errors"][0]
        assert error["code"] == "UNSUPPORTED"
        assert error["message"].startswith("a token request may name at most 50 scopes")
        assert error["detail"] == {"scopes": 200, "limit": 50}
    form = {
        "grant_type": "password",
        "username": "alice",
        "password": "alice-password",
        "scope": " ".join(scope for _, scope in scopes),
    }
    async with gateway.session.post(f"{gateway.url}/token", data=form) as response:
        assert response.status == 400
        body = await response.json()
        assert body["error"] == "invalid_scope"
        assert "at most 50 scopes" in body["error_description"]


async def _lines(caplog: pytest.LogCaptureFixture, count: int) -> list[logging.LogRecord]:
    """The gateway's log records once ``count`` request lines are in (a request's line is
    written as it ends, which may be just after the client has its answer)."""
    for _ in range(100):
        if sum(r.name == "imagegate.request" for r in caplog.records) >= count:
            break
        await asyncio.sleep(0.02)
    return [r for r in caplog.records if r.name in ("imagegate.request", *DECISION_LOGGERS)]


DECISION_LOGGERS = ("imagegate.auth", "imagegate.access")


async def test_each_request_logs_one_line_with_what_it_decided(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        token = await gateway.token("repository:library/alpine:pull", ("bob", "bob-password"))
        [line] = await _lines(caplog, 1)
        assert line.getMessage().startswith("GET /token 200")
        assert line.login == {"user": "bob", "outcome": "success", "reason": ""}  # type: ignore[attr-defined]
        caplog.clear()

        async with gateway.session.get(
            f"{gateway.url}/v2/library/alpine/manifests/3",
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            assert response.status == 200
        [line] = await _lines(caplog, 1)
        access = line.access  # type: ignore[attr-defined]
        assert (access["user"], access["repository"], access["decision"]) == (
            "bob",
            "library/alpine",
            "allowed",
        )
