"""The OpenAPI document: served, complete, and fuzzed by schemathesis without a 5xx, as
every kind of caller: anonymous, an owner's read-only, public-read, write and revoked
access tokens, a member, the owner, a non-member and the gateway admin (password).

Path parameters are drawn from the gateway's real objects most of the time (``acme``,
``bob``, ``devs``, the tokens' ids), so requests get past the 404s into the handlers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.api.conftest import Api

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
TOKENS = ("/v2/access-tokens", "/v2/api_tokens")  # changed with a password session only
MAX_EXAMPLES = 6  # per operation and caller: about 7 s a caller on this machine


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """One backend here: the document and the handlers are the same on both."""
    return f"sqlite:///{tmp_path / 'data' / 'imagegate.db'}"


async def test_the_document_lists_every_route_the_server_serves(api: Api) -> None:
    reply = await api.call("GET", "/v2/openapi.json")
    assert reply.status == 200 and reply.body["openapi"].startswith("3.")
    paths = reply.body["paths"]
    expected = {
        "/v2/users/login": {"post"},
        "/v2/auth/token": {"post"},
        "/v2/orgs/{org}/settings": {"get", "put"},
        "/v2/orgs/{org}/settings/image-access/allowlist": {"get", "post"},
        "/v2/orgs/{org}/settings/image-access/allowlist/{namespace}/{repo}": {"delete"},
        "/v2/orgs/{org}/members": {"get", "post"},
        "/v2/orgs/{org}/members/{username}": {"put", "delete"},
        "/v2/orgs/{org}/groups": {"get", "post"},
        "/v2/orgs/{org}/groups/{group}": {"get", "put", "patch", "delete"},
        "/v2/orgs/{org}/groups/{group}/members": {"get", "post"},
        "/v2/orgs/{org}/groups/{group}/members/{username}": {"delete"},
        "/v2/access-tokens": {"get", "post"},
        "/v2/access-tokens/{uuid}": {"get", "patch", "delete"},
        "/v2/publishers": {"get"},
        "/v2/publishers/{namespace}": {"put", "delete"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
    for path, operations in paths.items():  # who may call each, and sign-in where needed
        for method, operation in operations.items():
            access = operation["x-imagegate-access"]
            who, what, *password = access.split(", ")
            assert who in {"anonymous", "user", "member", "owner", "admin"}, (path, access)
            assert what in {"read", "write"}, (path, access)
            managed = path.startswith(TOKENS) and what == "write"
            assert password == (["password"] if managed else []), (path, access)
            assert ("security" in operation) == (who != "anonymous"), (path, method)
    assert paths["/v2/orgs/{org}/members/{username}"]["delete"]["x-imagegate-access"] == (
        "member, write"
    )
    put = paths["/v2/orgs/{org}/settings"]["put"]
    assert put["x-imagegate-access"] == "owner, write"
    schema = put["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["restricted_images"]["required"] == [
        "enabled",
        "allow_official_images",
        "allow_verified_publishers",
    ]


async def _token(api: Api, scope: str) -> tuple[str, str]:
    """An access token of the owner, alice, with one scope: its id and its API bearer."""
    made = await api.call(
        "POST",
        "/v2/access-tokens",
        "alice",
        json={"token_label": f"fuzz {scope}", "scopes": [scope]},
    )
    assert made.status == 201, made.body
    signed_in = await api.call(
        "POST", "/v2/auth/token", json={"identifier": "alice", "secret": made.body["token"]}
    )
    assert signed_in.status == 200, signed_in.body
    return made.body["uuid"], signed_in.body["access_token"]


async def _revoked(api: Api) -> tuple[str, str]:
    uuid, bearer = await _token(api, "repo:write")
    deleted = await api.call("DELETE", f"/v2/access-tokens/{uuid}", "alice")
    assert deleted.status == 204, deleted.body
    return uuid, bearer


async def _anonymous(api: Api) -> tuple[str | None, str | None]:
    return None, None


async def _password(api: Api, user: str) -> tuple[str | None, str]:
    return None, await api.jwt(user)


Caller = Callable[[Api], Awaitable[tuple[str | None, str | None]]]
CALLERS: dict[str, Caller] = {
    "anonymous": _anonymous,
    "read-only token": lambda api: _token(api, "repo:read"),
    "public-read token": lambda api: _token(api, "repo:public_read"),
    "write token": lambda api: _token(api, "repo:write"),
    "revoked token": _revoked,
    "member": lambda api: _password(api, "bob"),
    "owner": lambda api: _password(api, "alice"),
    "non-member": lambda api: _password(api, "dave"),
    "gateway admin": lambda api: _password(api, "root"),
}


def _config(token_ids: list[str]) -> str:
    """schemathesis.toml: draw names from the gateway's world 80% of the time."""
    dictionaries = {
        "orgs": ["acme", "globex"],
        "users": ["alice", "bob", "dave", "gina", "root"],
        "groups": ["owners", "members", "devs"],
        "tokens": token_ids,
        "namespaces": ["someone", "library", "acme"],
        "repos": ["tool", "nginx"],
        "repositories": ["nginx", "someone/tool", "acme/app"],
    }
    bindings = {
        "path.org": "orgs",
        "path.account": "orgs",
        "path.group": "groups",
        "path.username": "users",
        "path.uuid": "tokens",
        "path.namespace": "namespaces",
        "path.repo": "repos",
        "body.member": "users",
        "body.repository": "repositories",
    }
    lines = []
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    lines.append("[parameters]")
    for key, name in bindings.items():
        lines.append(f'"{key}" = {{ dictionary = "{name}", probability = 0.8 }}')
    return "\n".join(lines) + "\n"


async def _fuzz(api: Api, bearer: str | None, token_ids: list[str], cwd: Path) -> str:
    config = cwd / "schemathesis.toml"
    config.write_text(_config(token_ids))
    args = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{api.url}/v2/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,fuzzing",
        "--seed",
        "1",
        "--no-color",
        "--request-timeout",
        "10",
    ]
    if bearer is not None:
        args += ["-H", f"Authorization: Bearer {bearer}"]
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=cwd
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    return text


@pytest.mark.e2e
@pytest.mark.parametrize("caller", list(CALLERS))
async def test_schemathesis_finds_no_server_error(api: Api, caller: str, tmp_path: Path) -> None:
    token_id, bearer = await CALLERS[caller](api)
    spare, _ = await _token(api, "repo:admin")  # a token of alice's for every caller to aim at
    # In tmp_path: schemathesis keeps a .schemathesis/ folder in its working directory.
    output = await _fuzz(api, bearer, [spare, *([token_id] if token_id else [])], tmp_path)
    # Every operation was called, so a 500 anywhere would have been seen.
    document = (await api.call("GET", "/v2/openapi.json")).body
    operations = sum(len(methods) for methods in document["paths"].values())
    assert f"Tested: {operations}" in output, output[-3000:]
    assert f"Selected: {operations}/{operations}" in output, output[-3000:]
