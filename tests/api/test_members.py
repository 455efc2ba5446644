"""``/v2/orgs/{org}/members``: Hub's ``org_member`` field by field, roles, pages, matrix."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import Api

# HUB-API.md 4.1: the org_member fields (insights-only ones are optional and omitted).
MEMBER_FIELDS = {
    "id",
    "username",
    "full_name",
    "company",
    "location",
    "date_joined",
    "gravatar_email",
    "gravatar_url",
    "profile_url",
    "type",
    "email",
    "role",
    "groups",
    "is_guest",
    "primary_email",
}
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


async def test_list_is_a_drf_page_of_hub_members(api: Api) -> None:
    reply = await api.call("GET", "/v2/orgs/acme/members/", "alice")
    assert reply.status == 200
    assert set(reply.body) == {"count", "next", "previous", "results"}
    assert (reply.body["count"], reply.body["next"], reply.body["previous"]) == (2, None, None)
    alice, bob = reply.body["results"]
    for member in (alice, bob):
        assert set(member) == MEMBER_FIELDS
        assert re.fullmatch(r"[0-9a-f]{32}", member["id"])  # a UUID without dashes
        assert RFC3339.fullmatch(member["date_joined"])
        assert member["type"] == "User" and member["is_guest"] is False
    assert (alice["username"], alice["role"], alice["groups"]) == ("alice", "Owner", ["owners"])
    assert (bob["username"], bob["role"], bob["groups"]) == ("bob", "Member", ["devs", "members"])
    assert bob["email"] == "bob@example.com"  # an owner sees emails


async def test_members_see_the_list_without_emails_outsiders_do_not(api: Api) -> None:
    reply = await api.call("GET", "/v2/orgs/acme/members", "bob")
    assert reply.status == 200 and {m["email"] for m in reply.body["results"]} == {""}
    assert (await api.call("GET", "/v2/orgs/acme/members", "dave")).status == 403
    assert (await api.call("GET", "/v2/orgs/acme/members", None)).status == 401
    reply = await api.call("GET", "/v2/orgs/nobody/members", "dave")
    assert reply.status == 404 and "not found" in reply.body["message"]


async def test_search_role_and_pages(api: Api) -> None:
    for name in ("carl", "cora", "cyd"):
        await api.services.accounts.create_user(name, f"{name}@corp.test", "pw")
        await api.services.orgs.add_member("acme", name)
    reply = await api.call("GET", "/v2/orgs/acme/members", "alice", params={"search": "ORA"})
    assert [m["username"] for m in reply.body["results"]] == ["cora"]
    reply = await api.call("GET", "/v2/orgs/acme/members", "alice", params={"search": "corp"})
    assert reply.body["count"] == 3  # by email too
    reply = await api.call("GET", "/v2/orgs/acme/members", "alice", params={"role": "owner"})
    assert [m["username"] for m in reply.body["results"]] == ["alice"]
    page = {"page_size": "2"}
    first = await api.call("GET", "/v2/orgs/acme/members/", "alice", params=page)
    assert first.body["count"] == 5 and len(first.body["results"]) == 2
    assert first.body["next"] == f"{api.url}/v2/orgs/acme/members/?page_size=2&page=2"
    assert first.body["previous"] is None
    names = []
    url: str | None = first.body["next"]
    names += [m["username"] for m in first.body["results"]]
    while url:  # follow next verbatim, as hub-tool does
        reply = await api.call("GET", url.removeprefix(api.url), "alice")
        names += [m["username"] for m in reply.body["results"]]
        url = reply.body["next"]
    assert names == ["alice", "bob", "carl", "cora", "cyd"]
    assert reply.body["previous"] == f"{api.url}/v2/orgs/acme/members/?page_size=2&page=2"
    for bad in ({"page": "0"}, {"page_size": "101"}, {"page": "x"}, {"role": "boss"}):
        assert (await api.call("GET", "/v2/orgs/acme/members", "alice", params=bad)).status == 400


async def test_change_role_matrix_and_last_owner(api: Api) -> None:
    path = "/v2/orgs/acme/members/bob/"
    assert (await api.call("PUT", path, "bob", json={"role": "owner"})).status == 403
    assert (await api.call("PUT", path, "dave", json={"role": "owner"})).status == 403
    assert (await api.call("PUT", path, None, json={"role": "owner"})).status == 401
    reply = await api.call("PUT", path, "alice", json={"role": "owner"})
    assert reply.status == 200 and reply.body["role"] == "Owner"
    assert set(reply.body["groups"]) == {"owners", "devs", "members"}
    reply = await api.call("PUT", "/v2/orgs/acme/members/alice", "bob", json={"role": "member"})
    assert reply.status == 200 and reply.body["groups"] == ["members"]  # kept in the org
    reply = await api.call("PUT", path, "bob", json={"role": "member"})
    assert reply.status == 400 and "last owner" in reply.body["message"]
    for body, words in (
        ({"role": "admin"}, "is not one of owner, member"),
        ({}, "role is required"),
        ({"role": "owner", "x": 1}, "unknown field"),
    ):
        reply = await api.call("PUT", path, "bob", json=body)
        assert reply.status == 400 and words in reply.body["message"]
    reply = await api.call("PUT", "/v2/orgs/acme/members/dave", "bob", json={"role": "owner"})
    assert reply.status == 404 and "not found" in reply.body["message"]


async def test_remove_add_and_leave(api: Api) -> None:
    assert (await api.call("DELETE", "/v2/orgs/acme/members/alice", "bob")).status == 403
    reply = await api.call("DELETE", "/v2/orgs/acme/members/alice/", "alice")
    assert reply.status == 400 and "last owner" in reply.body["message"]
    assert (await api.call("DELETE", "/v2/orgs/acme/members/bob/", "alice")).status == 204
    reply = await api.call("DELETE", "/v2/orgs/acme/members/bob", "alice")
    assert reply.status == 404 and "not found" in reply.body["message"]
    assert (
        await api.call("POST", "/v2/orgs/acme/members", "dave", json={"member": "dave"})
    ).status == 403
    reply = await api.call("POST", "/v2/orgs/acme/members/", "alice", json={"member": "dave"})
    assert reply.status == 201 and reply.body["role"] == "Member"
    assert reply.body["groups"] == ["members"]
    reply = await api.call(
        "POST", "/v2/orgs/acme/members", "alice", json={"member": "bob", "role": "owner"}
    )
    assert reply.status == 201 and reply.body["role"] == "Owner"
    reply = await api.call("POST", "/v2/orgs/acme/members", "alice", json={"member": "ghost"})
    assert reply.status == 404
    assert (await api.call("DELETE", "/v2/orgs/acme/members/dave", "dave")).status == 204  # leaves


@pytest.mark.parametrize("body", [{"member": "x" * 31}, {"member": 3}, {"user": "dave"}])
async def test_add_bad_input(api: Api, body: object) -> None:
    assert (await api.call("POST", "/v2/orgs/acme/members", "alice", json=body)).status == 400
