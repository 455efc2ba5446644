"""``/v2/orgs/{org}/settings`` and the allowlist: Hub's shapes, who may do what, bad input."""

from __future__ import annotations

import pytest

from imagegate.core.names import parse_repository
from tests.api.conftest import Api

HUB_DEFAULT = {
    "restricted_images": {
        "enabled": False,
        "allow_official_images": True,
        "allow_verified_publishers": True,
    },
    "allow_community_images": False,
}
STRICT = {
    "restricted_images": {
        "enabled": True,
        "allow_official_images": False,
        "allow_verified_publishers": True,
    }
}


@pytest.mark.parametrize("path", ["/v2/orgs/acme/settings", "/v2/orgs/acme/settings/"])
async def test_get_is_hubs_org_settings_for_members(api: Api, path: str) -> None:
    for user in ("alice", "bob"):
        reply = await api.call("GET", path, user)
        assert reply.status == 200
        assert reply.body == HUB_DEFAULT
        assert set(reply.body["restricted_images"]) == {
            "enabled",
            "allow_official_images",
            "allow_verified_publishers",
        }


@pytest.mark.parametrize(
    ("user", "status", "words"),
    [
        ("alice", 200, None),
        ("bob", 403, "only owners of organization acme"),
        ("dave", 403, "dave is not a member of organization acme"),
        (None, 401, "authentication required"),
    ],
)
async def test_put_matrix(api: Api, user: str | None, status: int, words: str | None) -> None:
    for path in ("/v2/orgs/acme/settings", "/v2/orgs/acme/settings/"):
        reply = await api.call("PUT", path, user, json=STRICT)
        assert reply.status == status, reply.body
        if words is not None:
            assert words in reply.body["message"]
            assert reply.body["errinfo"] is None
    expected = STRICT["restricted_images"] if status == 200 else HUB_DEFAULT["restricted_images"]
    settings = await api.services.access.get_settings("acme")
    assert settings.enabled is expected["enabled"]
    assert settings.allow_official is expected["allow_official_images"]


async def test_put_answers_the_settings_and_keeps_or_sets_community(api: Api) -> None:
    reply = await api.call("PUT", "/v2/orgs/acme/settings", "alice", json=STRICT)
    assert reply.body == {**STRICT, "allow_community_images": False}
    body = {**STRICT, "allow_community_images": True}
    reply = await api.call("PUT", "/v2/orgs/acme/settings", "alice", json=body)
    assert reply.body["allow_community_images"] is True
    # Terraform's "delete" PUT, then its re-GET
    off = {"enabled": False, "allow_official_images": True, "allow_verified_publishers": True}
    await api.call("PUT", "/v2/orgs/acme/settings", "alice", json={"restricted_images": off})
    reply = await api.call("GET", "/v2/orgs/acme/settings/", "alice")
    assert reply.body["restricted_images"] == off
    assert reply.body["allow_community_images"] is True  # untouched when not sent


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (None, "JSON object body is required"),
        (b"{not json", "not valid JSON"),
        ([], "must be a JSON object"),
        ({}, "restricted_images is required"),
        ({"restricted_images": {"enabled": True}}, "allow_official_images is required"),
        ({**STRICT, "extra": 1}, "unknown field 'extra'"),
        (
            {"restricted_images": {**STRICT["restricted_images"], "enabled": "yes"}},
            "restricted_images.enabled must be true or false",
        ),
        ({**STRICT, "allow_community_images": 1}, "must be true or false"),
    ],
)
async def test_bad_input_is_a_400_with_a_message(api: Api, body: object, words: str) -> None:
    if isinstance(body, bytes):
        reply = await api.call("PUT", "/v2/orgs/acme/settings", "alice", data=body)
    else:
        reply = await api.call("PUT", "/v2/orgs/acme/settings", "alice", json=body)
    assert reply.status == 400
    assert words in reply.body["message"]
    assert (await api.services.access.get_settings("acme")).enabled is False


async def test_unknown_organization_is_not_found(api: Api) -> None:
    for method, body in (("GET", None), ("PUT", STRICT)):
        reply = await api.call(method, "/v2/orgs/nobody/settings", "alice", json=body)
        assert reply.status == 404
        assert "not found" in reply.body["message"]


async def test_other_methods_are_405_not_the_registry(api: Api) -> None:
    reply = await api.call("POST", "/v2/orgs/acme/settings", "alice", json=STRICT)
    assert reply.status == 405 and reply.headers["Allow"] == "GET, PUT"


async def test_allowlist_round_trip_and_matrix(api: Api) -> None:
    base = "/v2/orgs/acme/settings/image-access/allowlist"
    assert (await api.call("GET", base, "bob")).body == {"count": 0, "results": []}
    for user, status in (("bob", 403), ("dave", 403), (None, 401)):
        reply = await api.call("POST", base, user, json={"repository": "nginx"})
        assert reply.status == status
    reply = await api.call("POST", f"{base}/", "alice", json={"repository": "nginx"})
    assert (reply.status, reply.body) == (201, {"repository": "library/nginx"})
    reply = await api.call("POST", base, "alice", json={"repository": "library/nginx"})
    assert reply.status == 200
    await api.call("POST", base, "alice", json={"repository": "someone/tool"})
    reply = await api.call("GET", f"{base}/", "bob")
    assert reply.body == {"count": 2, "results": ["library/nginx", "someone/tool"]}
    assert (await api.call("GET", base, "dave")).status == 403
    # the registry's decision sees it at once
    await api.call("PUT", "/v2/orgs/acme/settings", "alice", json=STRICT)
    decision = await api.services.access.decide_pull("bob", parse_repository("nginx"))
    assert decision.allowed
    assert (await api.call("DELETE", f"{base}/library/nginx", "bob")).status == 403
    assert (await api.call("DELETE", f"{base}/library/nginx/", "alice")).status == 204
    reply = await api.call("DELETE", f"{base}/library/nginx", "alice")
    assert reply.status == 404 and "not found" in reply.body["message"]
    decision = await api.services.access.decide_pull("bob", parse_repository("nginx"))
    assert not decision.allowed


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"repository": "Bad/Name"}, "invalid repository name"),
        ({"repository": "x" * 256}, "longer than 255"),
        ({"repository": ""}, "must not be empty"),
        ({"repository": 5}, "must be a string"),
        ({"repo": "a/b"}, "repository is required"),
    ],
)
async def test_allowlist_bad_input(api: Api, body: object, words: str) -> None:
    reply = await api.call(
        "POST", "/v2/orgs/acme/settings/image-access/allowlist", "alice", json=body
    )
    assert reply.status == 400 and words in reply.body["message"]


async def test_the_upstream_namespace_is_imagegates_own_endpoint(api: Api) -> None:
    """Hub's settings document stays Hub's; the mirror has an endpoint of its own, read by
    members, changed by owners, audited like every setting."""
    path = "/v2/orgs/acme/settings/upstream-namespace"
    assert (await api.call("GET", path, "bob")).body == {"upstream_namespace": None}
    reply = await api.call("PUT", path, "alice", json={"upstream_namespace": "acme-inc"})
    assert (reply.status, reply.body) == (200, {"upstream_namespace": "acme-inc"})
    assert (await api.call("GET", path, "bob")).body == {"upstream_namespace": "acme-inc"}
    assert (await api.call("GET", "/v2/orgs/acme/settings", "bob")).body == HUB_DEFAULT
    refused = await api.call("PUT", path, "bob", json={"upstream_namespace": None})
    assert refused.status == 403
    bad = await api.call("PUT", path, "alice", json={"upstream_namespace": "Not/One"})
    assert bad.status == 400 and "invalid upstream namespace" in bad.body["message"]
    reply = await api.call("PUT", path, "alice", json={"upstream_namespace": None})
    assert reply.body == {"upstream_namespace": None}
    assert await api.services.access.upstream_namespace("acme") is None
