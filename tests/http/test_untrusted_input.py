"""Input no handler expects is a 400 with a clear message on every surface, never a 500:
JSON nested thousands of levels deep, strings that are not text (a lone surrogate, a NUL
character, which PostgreSQL refuses), and numbers too large for anything.

Each surface answers in its own shape: Hub's error body on the API, the registry's JSON
errors on ``/v2/<name>/...``, the problem page (or the page's error) on the console. Every
test runs on both database backends: PostgreSQL is where a NUL used to become a 500.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import aiohttp

from tests.api.conftest import Api, api
from tests.db.fixtures import database_url

__all__ = ["api", "database_url"]

DEEP = b"[" * 5000 + b"]" * 5000  # 10 KB, well under every body limit
NUL = "\x00"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _raw(
    api: Api,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    session: aiohttp.ClientSession | None = None,
    **headers: str,
) -> tuple[int, str, Any]:
    async with (session or api.session).request(
        method, f"{api.url}{path}", data=body, headers=headers, allow_redirects=False
    ) as response:
        text = await response.text()
        parsed = json.loads(text) if response.content_type.endswith("json") and text else None
        return response.status, text, parsed


def _registry_error(status: int, body: Any, code: str, message: str) -> None:
    assert status == 400, body
    [error] = body["errors"]
    assert (error["code"], error["message"]) == (code, message)


async def test_api_bodies_paths_and_queries(api: Api) -> None:
    # Before sign-in: the login endpoint reads a body from anyone.
    status, _, body = await _raw(
        api, "POST", "/v2/users/login", DEEP, **{"Content-Type": "application/json"}
    )
    assert status == 400
    assert body["message"] == "the body is not valid JSON: it is nested more than 64 levels deep"
    for login in (
        b'{"username": "\\udc80", "password": "x"}',
        b'{"username": "alice", "password": "\\udc80"}',  # a known user, as an unknown one
    ):
        status, _, body = await _raw(
            api, "POST", "/v2/users/login", login, **{"Content-Type": "application/json"}
        )
        assert (status, body["message"]) == (
            400,
            "the body is not valid JSON: it contains a lone surrogate (U+DC80), which is not text",
        )
    nul_login = await api.call(
        "POST", "/v2/users/login", json={"username": f"alice{NUL}", "password": "x"}
    )
    assert (nul_login.status, nul_login.body["fields"]) == (
        400,
        {"username": ["username is not valid text: it contains a NUL character"]},
    )
    # Signed in: path values, query values and body fields alike.
    for method, path, payload, field in (
        ("GET", "/v2/orgs/ac%00me/members", None, "org"),
        ("GET", "/v2/orgs/acme/members?search=b%00", None, "search"),
        ("GET", "/v2/auditlogs/acme?actor=%00", None, "actor"),
        ("POST", "/v2/orgs/acme/members", {"member": f"dave{NUL}"}, "member"),
        ("POST", "/v2/access-tokens", {"token_label": NUL, "scopes": ["repo:read"]}, "token_label"),
    ):
        reply = await api.call(method, path, "alice", json=payload)
        assert reply.status == 400, (path, reply.body)
        assert reply.body["message"] == f"{field} is not valid text: it contains a NUL character"
    # A number str.isdigit() likes and int() does not.
    reply = await api.call("GET", "/v2/orgs/acme/members?page=%C2%B2", "alice")
    assert (reply.status, reply.body["message"]) == (
        400,
        "page must be a whole number from 1 to 1000000",
    )
    # A date that is valid where it was written but past year 9999 in UTC.
    reply = await api.call("GET", "/v2/auditlogs/acme?from=9999-12-31T23:59:59-23:59", "alice")
    assert (reply.status, reply.body["message"]) == (
        400,
        "from: '9999-12-31T23:59:59-23:59' is not a valid date-time",
    )


async def _push_token(api: Api, scope: str) -> str:
    status, _, body = await _raw(
        api,
        "GET",
        f"/token?service=x&scope={scope}",
        Authorization=_basic("alice", "alice-password"),
    )
    assert status == 200, body
    return str(body["token"])


async def test_registry_manifests_paths_and_queries(api: Api) -> None:
    token = await _push_token(api, "repository:acme/app:pull,push")
    oci = "application/vnd.oci.image.manifest.v1+json"
    docker = "application/vnd.docker.distribution.manifest.v2+json"
    kelvin = "application/vnd.doc\u212aer.distribution.manifest.v2+json"  # KELVIN SIGN
    # A complete manifest, but for its type: stored, it could never be served (a header
    # takes Latin-1 only).
    digest = f"sha256:{hashlib.sha256(b'{}').hexdigest()}"
    status, _, _ = await _raw(
        api,
        "POST",
        f"/v2/acme/app/blobs/uploads/?digest={digest}",
        b"{}",
        Authorization=f"Bearer {token}",
    )
    assert status == 201
    config = {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest}
    for manifest, message in (
        (DEEP, "manifest is not valid JSON: it is nested more than 64 levels deep"),
        (
            b'{"schemaVersion": 2, "annotations": ' + DEEP + b"}",
            "manifest is not valid JSON: it is nested more than 64 levels deep",
        ),
        (
            b'{"schemaVersion": 2, "annotations": {"a": "\\udc80"}}',
            "manifest is not valid JSON: it contains a lone surrogate (U+DC80), which is not text",
        ),
        (
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": kelvin,
                    "config": {**config, "size": 2},
                    "layers": [],
                }
            ).encode(),
            f"unsupported manifest media type {kelvin!r}: use one of {oci}, "
            "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.index.v1+json, "
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ),
    ):
        status, _, body = await _raw(
            api,
            "PUT",
            "/v2/acme/app/manifests/1",
            manifest,
            Authorization=f"Bearer {token}",
            # The Kelvin sign's lower case is an ASCII k: the two types "match".
            **{"Content-Type": docker if b"mediaType" in manifest else oci},
        )
        _registry_error(status, body, "MANIFEST_INVALID", message)
    catalog = await _push_token(api, "registry:catalog:*")
    status, _, body = await _raw(
        api, "GET", "/v2/_catalog?n=10&last=acme%00", Authorization=f"Bearer {catalog}"
    )
    _registry_error(
        status,
        body,
        "UNSUPPORTED",
        "query parameter last is not valid text: it contains a NUL character",
    )
    status, _, body = await _raw(
        api, "GET", "/v2/acme/app/manifests/1%00", Authorization=f"Bearer {token}"
    )
    _registry_error(
        status,
        body,
        "NAME_INVALID",
        "the path '/v2/acme/app/manifests/1\\x00' is not valid text: it contains a NUL character",
    )
    status, text, _ = await _raw(
        api, "GET", f"/v2/acme/app/blobs/{digest}", Authorization=f"Bearer {token}"
    )
    assert (status, text) == (200, "{}")  # the registry still works after all that


async def test_registry_numbers_in_headers(api: Api) -> None:
    auth = f"Bearer {await _push_token(api, 'repository:acme/app:pull,push')}"
    async with api.session.post(
        f"{api.url}/v2/acme/app/blobs/uploads/", headers={"Authorization": auth}
    ) as started:
        assert started.status == 202
        location = started.headers["Location"]
    huge = "9" * 5000  # int() refuses more than 4300 digits
    for content_range in (f"0-{huge}", f"{huge}-{huge}", "0-\u00b2"):
        status, _, body = await _raw(
            api, "PATCH", location, b"abc", Authorization=auth, **{"Content-Range": content_range}
        )
        assert status == 400, body
        assert body["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    digest = f"sha256:{hashlib.sha256(b'[]').hexdigest()}"
    status, _, _ = await _raw(
        api, "POST", f"/v2/acme/app/blobs/uploads/?digest={digest}", b"[]", Authorization=auth
    )
    assert status == 201
    for byte_range in (f"bytes=0-{huge}", f"bytes={huge}-", "bytes=\u00b2-"):
        status, text, _ = await _raw(
            api, "GET", f"/v2/acme/app/blobs/{digest}", Authorization=auth, Range=byte_range
        )
        assert (status, text) == (200, "[]")  # a range nobody could mean: the whole blob


async def test_token_endpoint_credentials(api: Api) -> None:
    for user, password in ((f"alice{NUL}", "alice-password"), ("alice", f"alice-password{NUL}")):
        status, _, body = await _raw(
            api, "GET", "/token?service=x", Authorization=_basic(user, password)
        )
        assert (status, body["errors"][0]["message"]) == (401, "incorrect username or password")
        form = f"grant_type=password&service=x&username={user}&password={password}"
        status, _, body = await _raw(
            api,
            "POST",
            "/token",
            form.replace(NUL, "%00").encode(),
            **{"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert (status, body["errors"][0]["message"]) == (401, "incorrect username or password")


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _console_form(api: Api, browser: aiohttp.ClientSession, path: str) -> str:
    status, page, _ = await _raw(api, "GET", path, session=browser)
    assert status == 200, page
    match = _CSRF.search(page)
    assert match is not None
    return match.group(1)


async def _post_form(
    api: Api, browser: aiohttp.ClientSession, path: str, fields: dict[str, str]
) -> tuple[int, str]:
    form = "&".join(f"{key}={value}" for key, value in fields.items()).encode()
    status, page, _ = await _raw(
        api,
        "POST",
        path,
        form,
        session=browser,
        **{"Content-Type": "application/x-www-form-urlencoded"},
    )
    return status, page


async def test_console_paths_and_forms(api: Api) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        await _console(api, browser)


async def _console(api: Api, browser: aiohttp.ClientSession) -> None:
    csrf = await _console_form(api, browser, "/console/sign-in")
    status, page = await _post_form(
        api,
        browser,
        "/console/sign-in",
        {"csrf_token": csrf, "username": "alice%00", "secret": "x"},
    )
    assert status == 400 and "username: it contains a NUL character." in page
    status, _ = await _post_form(
        api,
        browser,
        "/console/sign-in",
        {"csrf_token": csrf, "username": "alice", "secret": "alice-password"},
    )
    assert status == 303
    csrf = await _console_form(api, browser, "/console/tokens")
    for number in ("9" * 26, "9" * 5000):  # past 64 bits; past Python's 4300 digits
        status, page = await _post_form(
            api, browser, f"/console/tokens/{number}/deactivate", {"csrf_token": csrf}
        )
        assert status == 400, page
        assert f"&#39;{number[:40]}&#39; is no token number." in page
    status, page = await _post_form(
        api, browser, "/console/orgs/acme/teams/add", {"csrf_token": csrf, "team": "ops%00"}
    )
    assert status == 400 and "team: it contains a NUL character." in page
    status, page, _ = await _raw(
        api, "GET", "/console/orgs/acme/activity?page=%C2%B2", session=browser
    )
    assert status == 200, page  # not a page number: the first page
    status, page, _ = await _raw(api, "GET", "/console/orgs/ac%00me", session=browser)
    assert status == 400 and "org: it contains a NUL character." in page
