"""Signing in to the API: limited like every credential check, and refused alike for
names that exist and names that do not."""

from __future__ import annotations

from typing import Any

import pytest

from imagegate.services.throttle import ADDRESS
from tests.api.conftest import Api, Reply


async def post(api: Api, path: str, body: bytes, address: str) -> Reply:
    headers = {"Content-Type": "application/json", "X-Forwarded-For": address}
    async with api.session.post(f"{api.url}{path}", data=body, headers=headers) as response:
        payload: Any = await response.json(content_type=None)
        return Reply(response.status, payload, dict(response.headers))


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v2/users/login", '{"username": "%s", "password": "%s"}'),
        ("/v2/auth/token", '{"identifier": "%s", "secret": "%s"}'),
    ],
)
async def test_too_many_failures_get_429_with_retry_after(
    api: Api, path: str, template: str
) -> None:
    for n in range(ADDRESS.free):
        reply = await post(api, path, (template % (f"guess{n}", "no")).encode(), "10.4.0.1")
        assert reply.status == 401
    reply = await post(api, path, (template % ("bob", "bob-password")).encode(), "10.4.0.1")
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "1"
    message = "too many failed sign-in attempts from 10.4.0.1; try again in 1 second"
    assert reply.body == {"errinfo": None, "detail": message, "message": message}
    reply = await post(api, path, (template % ("bob", "bob-password")).encode(), "10.4.0.2")
    assert reply.status == 200


async def test_a_password_with_a_lone_surrogate_is_refused_alike_for_every_name(
    api: Api,
) -> None:
    """Not a 500 for a user who exists and a 401 for one who does not: the same refusal
    (a 401 here; a 400 for a body that is not text would do as well)."""
    replies = []
    for user in ("bob", "nobody"):
        body = b'{"username": "%s", "password": "bob-\\ud800"}' % user.encode()
        replies.append(await post(api, "/v2/users/login", body, "10.4.0.3"))
    known, unknown = replies
    assert known.status in (400, 401)
    assert (known.status, known.body) == (unknown.status, unknown.body)
