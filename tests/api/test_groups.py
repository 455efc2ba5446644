"""``/v2/orgs/{org}/groups``: Hub's ``org_group``, Terraform's request quirks, members."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import Api

GROUP_FIELDS = {"id", "uuid", "name", "description", "member_count", "role"}


async def test_list_and_get(api: Api) -> None:
    reply = await api.call("GET", "/v2/orgs/acme/groups/", "bob")
    assert reply.status == 200 and reply.body["count"] == 3
    devs, members, owners = reply.body["results"]
    for group in (devs, members, owners):
        assert set(group) == GROUP_FIELDS
        assert type(group["id"]) is int and type(group["member_count"]) is int
        uuid.UUID(group["uuid"])
    assert (devs["name"], devs["member_count"], devs["description"]) == ("devs", 1, "")
    reply = await api.call("GET", "/v2/orgs/acme/groups/devs/", "bob")
    assert reply.body == devs
    reply = await api.call("GET", "/v2/orgs/acme/groups", "alice", params={"username": "alice"})
    assert [g["name"] for g in reply.body["results"]] == ["owners"]
    reply = await api.call("GET", "/v2/orgs/acme/groups", "alice", params={"search": "emb"})
    assert [g["name"] for g in reply.body["results"]] == ["members"]
    reply = await api.call("GET", "/v2/orgs/acme/groups/nope", "alice")
    assert reply.status == 404 and "not found" in reply.body["message"]
    assert (await api.call("GET", "/v2/orgs/acme/groups", "dave")).status == 403
    assert (await api.call("GET", "/v2/orgs/acme/groups", None)).status == 401


async def test_terraform_create_patch_delete(api: Api) -> None:
    body = {"id": 0, "uuid": "", "name": "qa", "description": "testers", "member_count": 0}
    assert (await api.call("POST", "/v2/orgs/acme/groups/", "bob", json=body)).status == 403
    reply = await api.call("POST", "/v2/orgs/acme/groups/", "alice", json=body)
    assert reply.status == 201
    assert reply.body["name"] == "qa" and reply.body["description"] == "testers"
    assert reply.body["member_count"] == 0 and reply.body["id"] > 0
    again = await api.call("POST", "/v2/orgs/acme/groups", "alice", json=body)
    assert again.status == 409
    renamed = {**body, "name": "quality", "member_count": 0}
    reply = await api.call("PATCH", "/v2/orgs/acme/groups/qa/", "alice", json=renamed)
    assert reply.status == 200 and reply.body["name"] == "quality"
    reply = await api.call(
        "PUT", "/v2/orgs/acme/groups/quality", "alice", json={"name": "quality", "description": ""}
    )
    assert reply.body["description"] == ""
    assert (await api.call("DELETE", "/v2/orgs/acme/groups/quality", "bob")).status == 403
    assert (await api.call("DELETE", "/v2/orgs/acme/groups/quality/", "alice")).status == 204
    assert (await api.call("GET", "/v2/orgs/acme/groups/quality", "alice")).status == 404
    reply = await api.call("DELETE", "/v2/orgs/acme/groups/owners", "alice")
    assert reply.status == 400 and "cannot be deleted" in reply.body["message"]
    reply = await api.call("PATCH", "/v2/orgs/acme/groups/owners", "alice", json={"name": "x"})
    assert reply.status == 400 and "cannot be renamed" in reply.body["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Bad Name"},
        {"name": "x" * 51},
        {"description": "d"},
        {"name": "a", "z": 1},
        {"name": 1},
        {"name": "a", "description": "d" * 256},
    ],
)
async def test_create_bad_input(api: Api, body: object) -> None:
    reply = await api.call("POST", "/v2/orgs/acme/groups", "alice", json=body)
    assert reply.status == 400 and reply.body["message"]


async def test_group_members(api: Api) -> None:
    path = "/v2/orgs/acme/groups/devs/members"
    reply = await api.call("GET", f"{path}/", "bob")
    assert reply.status == 200 and [m["username"] for m in reply.body["results"]] == ["bob"]
    assert reply.body["count"] == 1 and reply.body["next"] is None
    assert (await api.call("POST", path, "bob", json={"member": "dave"})).status == 403
    assert (await api.call("POST", f"{path}/", "alice", json={"member": "dave"})).status == 200
    reply = await api.call("GET", "/v2/orgs/acme/groups/devs", "alice")
    assert reply.body["member_count"] == 2
    assert (await api.call("GET", "/v2/orgs/acme/members", "dave")).status == 200  # joined
    assert (await api.call("DELETE", f"{path}/dave", "bob")).status == 403
    assert (await api.call("DELETE", f"{path}/dave/", "alice")).status == 204
    reply = await api.call("DELETE", f"{path}/dave", "alice")
    assert reply.status == 404 and "not found" in reply.body["message"]
    reply = await api.call(
        "POST", "/v2/orgs/acme/groups/nope/members", "alice", json={"member": "dave"}
    )
    assert reply.status == 404
    reply = await api.call("DELETE", "/v2/orgs/acme/groups/owners/members/alice", "alice")
    assert reply.status == 400 and "last owner" in reply.body["message"]
