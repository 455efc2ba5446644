"""Sign-in limits through a real gateway: 429s where credentials are checked, and wrong
passwords that never slow down what does not check one.

The gateway trusts ``X-Forwarded-For`` from loopback (uvicorn's default), so each test
speaks from addresses of its own.
"""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp

from imagegate.audit.events import INCORRECT_CREDENTIALS
from imagegate.services.throttle import ADDRESS, USERNAME
from tests.http.conftest import Gateway, Seeded, basic


def speaking_from(address: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, **headers}


async def token_request(gateway: Gateway, address: str, user: str, password: str) -> int:
    headers = speaking_from(address, Authorization=basic(user, password))
    async with gateway.session.get(f"{gateway.url}/token", headers=headers) as response:
        await response.read()
        return response.status


async def test_the_token_endpoint_answers_toomanyrequests_after_the_free_failures(
    gateway: Gateway,
) -> None:
    for n in range(ADDRESS.free):
        assert await token_request(gateway, "10.1.0.1", f"guess{n}", "wrong") == 401
    headers = speaking_from("10.1.0.1", Authorization=basic("bob", "bob-password"))
    async with gateway.session.get(f"{gateway.url}/token", headers=headers) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["errors"] == [
            {
                "code": "TOOMANYREQUESTS",
                "message": "too many failed sign-in attempts from 10.1.0.1; try again in 1 second",
                "detail": {"retry_after": 1},
            }
        ]
    assert await token_request(gateway, "10.1.0.2", "bob", "bob-password") == 200


async def test_names_and_secrets_longer_than_any_are_failed_logins_that_hold_nothing(
    gateway: Gateway,
) -> None:
    """Issue 9: a Basic username is bounded only by the 64 KiB header limit, and the
    throttle kept every one it was given (4,000 names of 60 KB held 231 MiB). A name or
    secret longer than any (1,024 characters) is refused before anything else: a failed
    login that no limit counts, so it holds nothing."""
    long = "a" * 40_000
    for n in range(ADDRESS.free + 5):
        name, secret = (f"{n}-{long}", "wrong") if n % 2 else ("bob", f"{n}-{long}")
        headers = speaking_from("10.4.0.1", Authorization=basic(name, secret))
        async with gateway.session.get(f"{gateway.url}/token", headers=headers) as response:
            assert response.status == 401
            [error] = (await response.json())["errors"]
            assert error["message"] == INCORRECT_CREDENTIALS
    form = {"grant_type": "password", "username": long, "password": "x", "service": "imagegate"}
    async with gateway.session.post(
        f"{gateway.url}/token", data=form, headers=speaking_from("10.4.0.1")
    ) as response:
        assert response.status == 401
    # Neither the address nor bob was held back by any of it.
    assert await token_request(gateway, "10.4.0.1", "bob", "bob-password") == 200


async def test_the_console_answers_with_its_problem_page(gateway: Gateway) -> None:
    # A browser of our own: the session cookie (with the CSRF token) is kept for an IP.
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def sign_in(password: str) -> tuple[int, str, str | None]:
        headers = speaking_from("10.2.0.1")
        async with browser.get(f"{gateway.url}/console/sign-in", headers=headers) as response:
            form = await response.text()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf is not None
        fields = {"username": "alice", "secret": password, "csrf_token": csrf[1]}
        async with browser.post(
            f"{gateway.url}/console/sign-in", data=fields, headers=headers
        ) as response:
            return response.status, await response.text(), response.headers.get("Retry-After")

    async with browser:
        for n in range(USERNAME.free):
            assert (await sign_in(f"wrong{n}"))[0] == 401
        status, page, retry_after = await sign_in("alice-password")
    assert (status, retry_after) == (429, "1")
    assert "<h1>Too many sign-in attempts</h1>" in page
    assert "too many failed sign-in attempts for this account" in page
    assert "try again in 1 second" in page


async def test_wrong_passwords_never_delay_a_cached_blob(gateway: Gateway, seeded: Seeded) -> None:
    """30 wrong passwords, from 30 addresses on 6 accounts (under every limit), are each
    verified with argon2; a cached blob requested after them is served before they are."""
    users = [f"user{n}" for n in range(6)]
    for user in users:
        await gateway.services.accounts.create_user(user, None, f"{user}-password")
    token = await gateway.token("repository:alpine:pull")
    layer = seeded.official.layer_digests[0]
    blob_url = f"{gateway.url}/v2/alpine/blobs/{layer}"
    headers = {"Authorization": f"Bearer {token}"}
    async with gateway.session.get(blob_url, headers=headers) as response:
        assert response.status == 200  # now cached
        await response.read()

    finished: dict[str, float] = {}

    async def login(n: int) -> None:
        status = await token_request(gateway, f"10.3.0.{n}", users[n % 6], "wrong")
        assert status == 401
        finished[f"login {n}"] = time.monotonic()

    logins = [asyncio.create_task(login(n)) for n in range(30)]
    await asyncio.sleep(0.2)  # let every login reach the gateway first
    async with gateway.session.get(blob_url, headers=headers) as response:
        assert await response.read() == seeded.official.blobs[layer]
    finished["blob"] = time.monotonic()
    await asyncio.gather(*logins)
    order = sorted(finished, key=finished.__getitem__)
    logins_before_the_blob = order.index("blob")
    assert logins_before_the_blob < 10, order
