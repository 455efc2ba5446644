"""Enforce sign-in end to end: ``imagegate serve`` with the data directory's registry.json,
written and changed while it runs, and what real skopeo and podman users see.

World (tests/e2e/world.py): alice owns acme, bob is a member of acme, carol of acme and
globex, gina owns globex, dave is in no organization.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.world import OK, PASSWORDS, Seeded, check_pull, credentials
from tests.support.clients import Podman, Skopeo
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e

SETTLE_SECONDS = 1.5  # the gateway looks at the file at most once a second
SIGN_IN_TEXT = (
    "sign-in required: this registry only serves members of the [acme] organization; "
    "log in with your account (docker login / podman login)"
)
MISCONFIGURED_TEXT = "sign-in enforcement is misconfigured on this registry"


def docker_text(*orgs: str) -> str:
    """Docker Desktop's message, exactly."""
    return (
        f"You must be a member of the [{' '.join(orgs)}] organization. Log in with a "
        "different account, or contact your organization owner to add your account."
    )


@pytest.fixture(scope="module")
def gateway(world_gateway: Gateway) -> Gateway:
    return world_gateway


@pytest.fixture(autouse=True)
def registry_json(gateway: Gateway) -> Iterator[Path]:
    """The gateway's DATA_DIR/registry.json; each test starts and ends without it."""
    path = gateway.data_dir / "registry.json"
    yield path
    if path.exists():
        path.unlink()
        time.sleep(SETTLE_SECONDS)


def deploy(path: Path, content: bytes) -> None:
    """Replace the file atomically, as configuration management would, and let it apply."""
    staging = path.with_suffix(".tmp")
    staging.write_bytes(content)
    staging.replace(path)
    time.sleep(SETTLE_SECONDS)


def allow(path: Path, *orgs: str) -> None:
    deploy(path, json.dumps({"allowedOrgs": list(orgs)}).encode())


def podman_login(podman: Podman, host: str, user: str) -> subprocess.CompletedProcess[str]:
    """``podman login``; debug logging shows the registry's message (see below)."""
    return subprocess.run(
        [
            podman.binary,
            "--log-level=debug",
            "login",
            "--tls-verify=false",
            "--authfile",
            str(podman.home / "auth.json"),
            "--username",
            user,
            "--password-stdin",
            host,
        ],
        input=PASSWORDS[user] + "\n",
        capture_output=True,
        text=True,
        env=podman.env,
        timeout=60,
        check=False,
    )


# -- allowed orgs unset: nothing changes -------------------------------------------------


@pytest.mark.parametrize("user", [None, "dave", "bob", "alice"])
def test_without_the_file_everybody_pulls_as_before(
    user: str | None, gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    official = images["official"]
    check_pull(skopeo.pull(official.reference(gateway.host), credentials(user)), OK, official)


# -- allowed orgs set ---------------------------------------------------------------------


def test_anonymous_is_told_to_sign_in(
    gateway: Gateway, images: dict[str, Seeded], registry_json: Path, skopeo: Skopeo
) -> None:
    allow(registry_json, "acme")
    # A public image is no exception.
    result = skopeo.inspect_raw(images["official"].reference(gateway.host))
    assert not result.ok, result.describe()
    assert SIGN_IN_TEXT in result.stderr, result.describe()


def test_a_non_member_cannot_log_in_or_pull(
    gateway: Gateway,
    images: dict[str, Seeded],
    registry_json: Path,
    podman: Podman,
    skopeo: Skopeo,
) -> None:
    allow(registry_json, "acme")
    login = podman_login(podman, gateway.host, "dave")
    assert login.returncode != 0, login.stderr
    # podman 4.3 prints its own "invalid username/password" for any 401 from the token
    # endpoint and keeps the registry's message for its debug log: both are checked.
    assert 'Error: logging into "' in login.stderr, login.stderr
    assert f"unauthorized: {docker_text('acme')}" in login.stderr, login.stderr
    official = images["official"]
    for result in (
        podman.pull(official.reference(gateway.host), credentials("dave")),
        skopeo.pull(official.reference(gateway.host), credentials("dave")),
    ):
        assert not result.ok, result.describe()
        assert f"unauthorized: {docker_text('acme')}" in result.stderr, result.describe()


@pytest.mark.parametrize("user", ["bob", "alice"], ids=["member", "owner"])
def test_members_and_owners_log_in_and_pull(
    user: str,
    gateway: Gateway,
    images: dict[str, Seeded],
    registry_json: Path,
    podman: Podman,
    skopeo: Skopeo,
) -> None:
    allow(registry_json, "acme")
    login = podman_login(podman, gateway.host, user)
    assert login.returncode == 0, login.stderr
    official, acme = images["official"], images["acme"]
    check_pull(podman.pull(official.reference(gateway.host), credentials(user)), OK, official)
    check_pull(skopeo.pull(acme.reference(gateway.host), credentials(user)), OK, acme)


def test_a_change_to_the_file_applies_without_a_restart(
    gateway: Gateway, images: dict[str, Seeded], registry_json: Path, podman: Podman
) -> None:
    allow(registry_json, "acme")
    refused = podman_login(podman, gateway.host, "gina")
    assert docker_text("acme") in refused.stderr, refused.stderr
    allow(registry_json, "acme", "globex")
    assert podman_login(podman, gateway.host, "gina").returncode == 0
    official = images["official"]
    check_pull(podman.pull(official.reference(gateway.host), credentials("gina")), OK, official)
    still_refused = podman_login(podman, gateway.host, "dave")
    assert docker_text("acme", "globex") in still_refused.stderr, still_refused.stderr


def test_an_invalid_file_fails_closed_and_the_log_says_why(
    gateway: Gateway, images: dict[str, Seeded], registry_json: Path, skopeo: Skopeo
) -> None:
    offset = gateway.log_size()
    deploy(registry_json, b'\xef\xbb\xbf{"allowedOrgs": ["acme"]}')  # saved with a BOM
    official = images["official"]
    for user in (None, "bob", "alice"):
        result = skopeo.pull(official.reference(gateway.host), credentials(user))
        assert not result.ok, result.describe()
        assert MISCONFIGURED_TEXT in result.stderr, result.describe()
    log = gateway.log_since(offset)
    assert str(registry_json) in log
    assert "the file starts with a UTF-8 byte order mark" in log
