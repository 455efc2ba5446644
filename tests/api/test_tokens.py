"""``/v2/access-tokens``: Hub's ``accessToken``, the secret once, scopes enforced at /token."""

from __future__ import annotations

import base64
import re
import uuid

import aiohttp
import jwt
import pytest

from tests.api.conftest import Api

TOKEN_FIELDS = {
    "uuid",
    "client_id",
    "creator_ip",
    "creator_ua",
    "created_at",
    "last_used",
    "generated_by",
    "is_active",
    "token",
    "token_label",
    "scopes",
    "expires_at",
}


async def _create(api: Api, user: str, **body: object) -> dict:  # type: ignore[type-arg]
    payload = {"token_label": "ci", "scopes": ["repo:read"], **body}
    reply = await api.call("POST", "/v2/access-tokens", user, json=payload)
    assert reply.status == 201, reply.body
    return reply.body  # type: ignore[no-any-return]


async def test_create_list_get_patch_delete(api: Api) -> None:
    created = await _create(
        api, "bob", scopes=["repo:read", "repo:write"], expires_at="2029-12-31T23:59:59Z"
    )
    assert set(created) == TOKEN_FIELDS
    uuid.UUID(created["uuid"])
    assert created["scopes"] == ["repo:read", "repo:write"]  # as sent, in order
    assert created["expires_at"] == "2029-12-31T23:59:59Z"  # as sent
    assert created["is_active"] is True and created["last_used"] is None
    assert (created["client_id"], created["generated_by"]) == ("HUB", "manual")
    assert created["creator_ip"] == "127.0.0.1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", created["created_at"])
    secret = created["token"]
    assert len(secret) > 20

    listed = await api.call("GET", "/v2/access-tokens/", "bob")
    assert set(listed.body) == {"count", "next", "previous", "active_count", "results"}
    assert (listed.body["count"], listed.body["active_count"]) == (1, 1)
    [item] = listed.body["results"]
    assert item == {**created, "token": "***"}
    one = await api.call("GET", f"/v2/access-tokens/{created['uuid']}/", "bob")
    assert one.body == item
    assert secret not in str(listed.body) + str(one.body)

    # other users see nothing of it
    assert (await api.call("GET", f"/v2/access-tokens/{created['uuid']}", "alice")).status == 404
    assert (await api.call("GET", "/v2/access-tokens", "alice")).body["count"] == 0
    assert (await api.call("GET", "/v2/access-tokens", None)).status == 401

    patch = {"token_label": "laptop", "is_active": False}  # Terraform sends both
    reply = await api.call("PATCH", f"/v2/access-tokens/{created['uuid']}", "bob", json=patch)
    assert reply.status == 200
    assert (reply.body["token_label"], reply.body["is_active"]) == ("laptop", False)
    assert await api.services.accounts.authenticate("bob", secret) is None  # revoked
    reply = await api.call(
        "PATCH", f"/v2/access-tokens/{created['uuid']}", "bob", json={"is_active": True}
    )
    assert await api.services.accounts.authenticate("bob", secret) == "bob"
    assert (await api.call("DELETE", f"/v2/access-tokens/{created['uuid']}", "alice")).status == 404
    assert (await api.call("DELETE", f"/v2/access-tokens/{created['uuid']}/", "bob")).status == 204
    reply = await api.call("GET", f"/v2/access-tokens/{created['uuid']}", "bob")
    assert reply.status == 404 and "not found" in reply.body["message"]
    assert await api.services.accounts.authenticate("bob", secret) is None


async def test_hub_tool_alias(api: Api) -> None:
    created = await _create(api, "bob")
    reply = await api.call("GET", f"/v2/api_tokens/{created['uuid']}", "bob")
    assert reply.status == 200 and reply.body["uuid"] == created["uuid"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token_label": "", "scopes": ["repo:read"]}, "token_label"),
        ({"token_label": "x" * 101, "scopes": ["repo:read"]}, "token_label"),
        ({"token_label": "a", "scopes": ["repo:everything"]}, "scopes[0]"),
        ({"token_label": "a"}, "scopes"),
        ({"token_label": "a", "scopes": "repo:read"}, "scopes"),
        ({"token_label": "a", "scopes": ["repo:read"], "expires_at": "tomorrow"}, None),
        ({"token_label": "a", "scopes": ["repo:read"], "expires_at": "2001-01-01T00:00:00Z"}, None),
        ({"token_label": "a", "scopes": ["repo:read"], "owner": "alice"}, "owner"),
    ],
)
async def test_create_bad_input(api: Api, body: object, field: str | None) -> None:
    reply = await api.call("POST", "/v2/access-tokens", "bob", json=body)
    assert reply.status == 400 and reply.body["message"]
    if field is not None:
        assert reply.body["fields"] == {field: [reply.body["message"]]}


async def test_unknown_uuid_is_not_found(api: Api) -> None:
    for path in ("/v2/access-tokens/not-a-uuid", f"/v2/access-tokens/{uuid.uuid4()}"):
        reply = await api.call("GET", path, "bob")
        assert reply.status == 404 and "not found" in reply.body["message"]


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


async def _registry_grants(api: Api, user: str, secret: str) -> list[str]:
    async with api.session.get(
        f"{api.url}/token",
        params={"service": "imagegate", "scope": "repository:acme/app:pull,push,delete"},
        headers={"Authorization": _basic(user, secret)},
    ) as response:
        assert response.status == 200
        token = (await response.json())["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    return sorted(a for entry in claims["access"] for a in entry["actions"])


async def test_a_read_only_token_gets_no_push_or_delete_grants(api: Api) -> None:
    read_only = (await _create(api, "bob", scopes=["repo:read"]))["token"]
    writer = (await _create(api, "bob", scopes=["repo:read", "repo:write"]))["token"]
    admin = (await _create(api, "bob", scopes=["repo:admin"]))["token"]
    assert await _registry_grants(api, "bob", read_only) == ["pull"]
    assert await _registry_grants(api, "bob", writer) == ["delete", "pull", "push"]
    assert await _registry_grants(api, "bob", admin) == ["delete", "pull", "push"]
    assert await _registry_grants(api, "bob", "bob-password") == ["delete", "pull", "push"]


async def test_a_read_only_token_reads_the_api_but_changes_nothing(api: Api) -> None:
    secret = (await _create(api, "alice", scopes=["repo:read"]))["token"]
    reply = await api.call("POST", "/v2/auth/token", json={"identifier": "alice", "secret": secret})
    bearer = {"Authorization": f"Bearer {reply.body['access_token']}"}
    claims = jwt.decode(reply.body["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "repo:read"
    assert claims["https://hub.docker.com"]["source"].startswith("docker_pat|")
    async with aiohttp.ClientSession(headers=bearer) as session:
        async with session.get(f"{api.url}/v2/orgs/acme/settings") as response:
            assert response.status == 200
        body = {
            "restricted_images": {
                "enabled": True,
                "allow_official_images": True,
                "allow_verified_publishers": True,
            }
        }
        async with session.put(f"{api.url}/v2/orgs/acme/settings", json=body) as response:
            assert response.status == 403
            assert "read-only access token" in (await response.json())["message"]


PASSWORD_NEEDED = "an access token cannot create, change or delete access tokens"


async def test_tokens_are_managed_with_a_password_never_with_a_token(api: Api) -> None:
    """Issue 9: a leaked repo:write token minted itself a successor that never expires
    (and reactivated revoked tokens), so it outlived its own revocation. As on Docker
    Hub, a session signed in with an access token manages no tokens; it still reads them."""
    writer = await _create(api, "bob", scopes=["repo:write"])
    revoked = await _create(api, "bob", scopes=["repo:write"])
    patch = {"is_active": False}
    assert (
        await api.call("PATCH", f"/v2/access-tokens/{revoked['uuid']}", "bob", json=patch)
    ).status == 200
    bearer = await api.login("bob", writer["token"])
    before = await api.services.accounts.list_tokens("bob")
    for method, path, body in [
        ("POST", "/v2/access-tokens", {"token_label": "successor", "scopes": ["repo:write"]}),
        ("PATCH", f"/v2/access-tokens/{revoked['uuid']}", {"is_active": True}),
        ("PATCH", f"/v2/api_tokens/{writer['uuid']}", {"token_label": "renamed"}),
        ("DELETE", f"/v2/access-tokens/{revoked['uuid']}", None),
    ]:
        reply = await api.call(method, path, json=body, bearer=bearer)
        assert reply.status == 403, (method, path, reply.body)
        assert PASSWORD_NEEDED in reply.body["message"]
        assert "sign in with your password" in reply.body["message"]
    assert await api.services.accounts.list_tokens("bob") == before
    listed = await api.call("GET", "/v2/access-tokens", bearer=bearer)
    assert listed.status == 200 and listed.body["count"] == 2
    # With the password, bob manages them.
    made = {"token_label": "laptop", "scopes": ["repo:read"]}
    assert (await api.call("POST", "/v2/access-tokens", "bob", json=made)).status == 201
