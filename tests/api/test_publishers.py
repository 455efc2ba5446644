"""``/v2/publishers``: gateway admins only."""

from __future__ import annotations

import pytest

from imagegate.core.categories import PublisherStatus
from tests.api.conftest import Api


@pytest.mark.parametrize(("user", "status"), [("alice", 403), ("bob", 403), (None, 401)])
async def test_only_admins(api: Api, user: str | None, status: int) -> None:
    body = {"status": "verified_publisher"}
    assert (await api.call("GET", "/v2/publishers", user)).status == status
    assert (await api.call("PUT", "/v2/publishers/someco", user, json=body)).status == status
    assert (await api.call("DELETE", "/v2/publishers/someco", user)).status == status


async def test_set_list_remove(api: Api) -> None:
    reply = await api.call(
        "PUT", "/v2/publishers/someco/", "root", json={"status": "verified_publisher"}
    )
    assert reply.body == {"namespace": "someco", "status": "verified_publisher"}
    assert await api.services.publishers.status("someco") is PublisherStatus.VERIFIED_PUBLISHER
    reply = await api.call("GET", "/v2/publishers/", "root")
    assert reply.body["count"] == 1
    assert reply.body["results"][0]["namespace"] == "someco"
    assert (await api.call("DELETE", "/v2/publishers/someco", "root")).status == 204
    reply = await api.call("DELETE", "/v2/publishers/someco", "root")
    assert reply.status == 404 and "not found" in reply.body["message"]
    for body, path in (
        ({"status": "famous"}, "/v2/publishers/someco"),
        ({"status": "community"}, "/v2/publishers/library"),
        ({"status": "community"}, "/v2/publishers/Bad"),
    ):
        assert (await api.call("PUT", path, "root", json=body)).status == 400
