"""A change made by another process applies to the very next request of a running
gateway whose caches are warm.

The gateway remembers credentials that signed in and the facts its decisions read until
anything changes (issue 10, items 3 and 4). Each test first makes the same request
twice, so whatever can be cached is, then changes something from another process on
the same data directory (the admin CLI, or a script running the services as the CLI
does: no CLI command changes a password or revokes a token), and checks the very next
request. A test fails if a cache outlives the change.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

import pytest

from imagegate.db import Database
from tests.db.fixtures import empty_tables, postgres_url
from tests.e2e.world import Seeded
from tests.support.gateway import Gateway
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.e2e

PASSWORD = "carol-Pa55word"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


async def _emptied(url: str) -> None:
    database = Database(url)
    try:
        await database.migrate()
        await empty_tables(database)
    finally:
        await database.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest,
    start_gateway: Callable[..., Gateway],
    upstream: UpstreamRegistry,
) -> Gateway:
    """alice owns acme (mirroring the upstream's acme), carol is a member. On SQLite the
    signal lives beside the database; on PostgreSQL in the data directory."""
    database_url = ""
    if request.param == "postgresql":
        database_url = postgres_url(request.config)
        asyncio.run(_emptied(database_url))
    gateway = start_gateway(upstream_url=upstream.url, database_url=database_url)
    gateway.add_user("alice", "alice-Pa55word")
    gateway.add_user("carol", PASSWORD)
    gateway.add_org("acme", owner="alice")
    gateway.add_member("acme", "carol")
    gateway.cli("org", "set", "acme", "--upstream-namespace", "acme")
    return gateway


def token_status(gateway: Gateway, user: str, secret: str, scope: str = "") -> tuple[int, str]:
    """``GET /token`` with Basic credentials: the status and the registry token."""
    query = "?" + urllib.parse.urlencode({"scope": scope}) if scope else ""
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    request = urllib.request.Request(
        f"{gateway.url}/token{query}", headers={"Authorization": f"Basic {basic}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)["token"]
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def registry_status(gateway: Gateway, method: str, path: str, token: str) -> int:
    request = urllib.request.Request(
        f"{gateway.url}/v2/{path}",
        method=method,
        headers={"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPES},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def pull_status(gateway: Gateway, user: str, secret: str, image: Seeded) -> int:
    """Sign in for a pull of ``image``, then GET its manifest: what a client sees."""
    status, token = token_status(gateway, user, secret, f"repository:{image.repository}:pull")
    assert status == 200, f"{user} could not sign in"
    return registry_status(gateway, "GET", f"{image.repository}/manifests/{image.tag}", token)


def twice(request: Callable[[], int]) -> int:
    """The status of a request made twice (the first fills the caches), the same both times."""
    first, second = request(), request()
    assert first == second
    return second


def run_services(gateway: Gateway, code: str) -> None:
    """Run ``code`` with ``services`` open on the gateway's data directory, in a process
    of its own, as the admin CLI does."""
    script = (
        "import asyncio\n"
        "from imagegate.config import load_settings\n"
        "from imagegate.services import running_services\n"
        "async def main():\n"
        "    async with running_services(load_settings()) as services:\n"
        + "".join(f"        {line}\n" for line in code.splitlines())
        + "asyncio.run(main())\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env=gateway.environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_a_token_revoked_elsewhere_stops_signing_in_and_pushing(gateway: Gateway) -> None:
    secret = gateway.create_token("alice", description="warm")
    scope = "repository:acme/pushed:pull,push"
    assert twice(lambda: token_status(gateway, "alice", secret)[0]) == 200
    status, registry_token = token_status(gateway, "alice", secret, scope)
    assert status == 200
    start_upload = "acme/pushed/blobs/uploads/"
    assert twice(lambda: registry_status(gateway, "POST", start_upload, registry_token)) == 202

    run_services(
        gateway,
        "[token] = await services.accounts.list_tokens('alice')\n"
        "await services.accounts.update_token('alice', token.uuid, active=False)",
    )

    assert token_status(gateway, "alice", secret)[0] == 401
    assert registry_status(gateway, "POST", start_upload, registry_token) == 401


def test_a_password_changed_elsewhere_stops_the_old_one_at_once(gateway: Gateway) -> None:
    gateway.add_user("erin", "erin-old-Pa55word")
    assert twice(lambda: token_status(gateway, "erin", "erin-old-Pa55word")[0]) == 200

    run_services(gateway, "await services.accounts.set_password('erin', 'erin-new-Pa55word')")

    assert token_status(gateway, "erin", "erin-old-Pa55word")[0] == 401
    assert token_status(gateway, "erin", "erin-new-Pa55word")[0] == 200


def test_a_member_removed_by_the_cli_pulls_no_more(
    gateway: Gateway, images: dict[str, Seeded]
) -> None:
    gateway.add_user("frank", "frank-Pa55word")
    gateway.add_member("acme", "frank")
    acme = images["acme"]
    assert twice(lambda: pull_status(gateway, "frank", "frank-Pa55word", acme)) == 200

    gateway.remove_member("acme", "frank")

    assert pull_status(gateway, "frank", "frank-Pa55word", acme) == 403


def test_image_access_and_the_allowlist_changed_by_the_cli_apply_at_once(
    gateway: Gateway, images: dict[str, Seeded]
) -> None:
    community = images["community"]
    assert twice(lambda: pull_status(gateway, "carol", PASSWORD, community)) == 200

    gateway.set_image_access("acme", "--enable", "--community=restricted")
    assert twice(lambda: pull_status(gateway, "carol", PASSWORD, community)) == 403

    gateway.cli("image-access", "allow", "acme", community.repository)
    assert twice(lambda: pull_status(gateway, "carol", PASSWORD, community)) == 200

    gateway.cli("image-access", "disallow", "acme", community.repository)
    assert pull_status(gateway, "carol", PASSWORD, community) == 403
    gateway.set_image_access("acme", "--disable")
