"""The OpenAPI document: served, complete, and fuzzed by schemathesis without a 5xx."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.api.conftest import Api

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


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
            who, _, what = access.partition(", ")
            assert who in {"anonymous", "user", "member", "owner", "admin"}, (path, access)
            assert what in {"read", "write"}, (path, access)
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


async def _fuzz(api: Api, *, as_user: str | None, cwd: Path) -> tuple[int, str]:
    args = [
        str(SCHEMATHESIS),
        "run",
        f"{api.url}/v2/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "8",
        "--phases",
        "examples,fuzzing",
        "--seed",
        "1",
        "--no-color",
        "--request-timeout",
        "10",
    ]
    if as_user is not None:
        args += ["-H", f"Authorization: Bearer {await api.jwt(as_user)}"]
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=cwd
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, output.decode(errors="replace")


@pytest.mark.e2e
@pytest.mark.parametrize("as_user", ["alice", None])
async def test_schemathesis_finds_no_server_error(
    api: Api, as_user: str | None, tmp_path: Path
) -> None:
    # In tmp_path: schemathesis keeps a .schemathesis/ folder in its working directory.
    code, output = await _fuzz(api, as_user=as_user, cwd=tmp_path)
    assert code == 0, output[-6000:]
    assert "No issues found" in output or "passed" in output, output[-3000:]
