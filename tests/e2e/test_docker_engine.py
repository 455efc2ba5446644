"""Enforce sign-in and image access with the real Docker engine and CLI (Debian
``docker.io``): the client the product page is about, and the one that prints the
registry's messages where podman 4.3 hides them.

A private ``dockerd`` (tests/support/docker.py) pulls from ``imagegate serve`` over plain
HTTP; the gateway's DATA_DIR/registry.json is written and removed while both run.

World (tests/e2e/world.py): alice owns acme, bob is a member of acme, dave is in no
organization.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.binaries import require_binary
from tests.e2e.world import COMMUNITY_NOT_ALLOWED, PASSWORDS, Seeded, denial_text
from tests.support.clients import ClientResult
from tests.support.docker import DockerClient, DockerEngine
from tests.support.gateway import Gateway
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.e2e

APPLY_TIMEOUT_SECONDS = 10.0  # the gateway looks at the file at most once a second
SIGN_IN_TEXT = (
    "sign-in required: this registry only serves members of the [acme] organization; "
    "log in with your account (docker login / podman login)"
)
OUTSIDER_TEXT = (
    "You must be a member of the [acme] organization. Log in with a different account, "
    "or contact your organization owner to add your account."
)


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    require_binary("dockerd")
    require_binary("docker")
    docker = DockerEngine().start()
    try:
        yield docker
    finally:
        log = docker.log_tail(3000)
        status = docker.stop()
        assert DockerEngine.clean_exit(status), f"dockerd exited with {status}:\n{log}"


@pytest.fixture(scope="module")
def gateway(world_gateway: Gateway) -> Gateway:
    return world_gateway


@pytest.fixture(autouse=True)
def registry_json(gateway: Gateway) -> Iterator[Path]:
    """The gateway's DATA_DIR/registry.json; each test starts and ends without it."""
    path = gateway.data_dir / "registry.json"
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def client(engine: DockerEngine, tmp_path: Path) -> Callable[[str], DockerClient]:
    """A docker user with a DOCKER_CONFIG of their own; the daemon's images are shared."""

    def make(name: str) -> DockerClient:
        return engine.client(tmp_path / name)

    return make


def allow(path: Path, *orgs: str) -> None:
    """Deploy registry.json atomically, as configuration management would."""
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps({"allowedOrgs": list(orgs)}))
    staging.replace(path)


def eventually(
    run: Callable[[], ClientResult], done: Callable[[ClientResult], bool]
) -> ClientResult:
    """Run ``run`` until ``done`` says the gateway applied the file (or time runs out)."""
    deadline = time.monotonic() + APPLY_TIMEOUT_SECONDS
    result = run()
    while not done(result) and time.monotonic() < deadline:
        time.sleep(0.25)
        result = run()
    return result


def output(result: ClientResult) -> str:
    """What the person at the terminal sees: docker prints errors on stderr, progress on stdout."""
    return result.stdout + result.stderr


def config_digest(upstream: UpstreamRegistry, image: Seeded) -> str:
    """The image id docker reports: the digest of the config blob of the seeded manifest."""
    request = urllib.request.Request(
        f"{upstream.url}/v2/{image.repository}/manifests/{image.digest}",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json"
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.loads(answer.read())["config"]["digest"])


def login(docker: DockerClient, gateway: Gateway, user: str) -> ClientResult:
    return docker.login(gateway.host, user, PASSWORDS[user])


def check_pulled(
    docker: DockerClient, result: ClientResult, image: Seeded, upstream: UpstreamRegistry
) -> None:
    assert result.ok, f"expected a successful pull of {image.repository}\n{result.describe()}"
    assert f"Digest: {image.digest}" in result.stdout, result.describe()
    assert result.digest == image.digest, result.describe()
    assert docker.image_id(result.args[-1]) == config_digest(upstream, image), result.describe()


# -- allowed orgs set ---------------------------------------------------------------------


def test_an_outsider_cannot_log_in_and_docker_says_why(
    gateway: Gateway, registry_json: Path, client: Callable[[str], DockerClient]
) -> None:
    allow(registry_json, "acme")
    dave = client("dave")
    refused = eventually(lambda: login(dave, gateway, "dave"), lambda r: not r.ok)
    assert not refused.ok, refused.describe()
    assert OUTSIDER_TEXT in output(refused), refused.describe()
    assert "Login Succeeded" not in output(refused), refused.describe()


def test_an_anonymous_pull_is_told_to_sign_in(
    gateway: Gateway,
    images: dict[str, Seeded],
    registry_json: Path,
    client: Callable[[str], DockerClient],
) -> None:
    allow(registry_json, "acme")
    anonymous = client("anonymous")
    reference = images["official"].reference(gateway.host)  # a public image is no exception
    anonymous.remove(reference)
    refused = eventually(lambda: anonymous.pull(reference), lambda r: not r.ok)
    assert not refused.ok, refused.describe()
    assert SIGN_IN_TEXT in output(refused), refused.describe()


def test_a_member_logs_in_and_pulls(
    gateway: Gateway,
    upstream: UpstreamRegistry,
    images: dict[str, Seeded],
    registry_json: Path,
    client: Callable[[str], DockerClient],
) -> None:
    allow(registry_json, "acme")
    anonymous = client("anonymous")
    official = images["official"]
    # Once anonymous pulls are refused, the file applies.
    eventually(lambda: anonymous.pull(official.reference(gateway.host)), lambda r: not r.ok)
    bob = client("bob")
    logged_in = login(bob, gateway, "bob")
    assert logged_in.ok, logged_in.describe()
    assert "Login Succeeded" in logged_in.stdout, logged_in.describe()
    for image in (official, images["acme"]):
        bob.remove(image.reference(gateway.host))
        check_pulled(bob, bob.pull(image.reference(gateway.host)), image, upstream)


# -- allowed orgs unset ---------------------------------------------------------------------


def test_without_the_file_an_anonymous_pull_succeeds_again(
    gateway: Gateway,
    upstream: UpstreamRegistry,
    images: dict[str, Seeded],
    registry_json: Path,
    client: Callable[[str], DockerClient],
) -> None:
    allow(registry_json, "acme")
    anonymous = client("anonymous")
    official = images["official"]
    reference = official.reference(gateway.host)
    anonymous.remove(reference)
    refused = eventually(lambda: anonymous.pull(reference), lambda r: not r.ok)
    assert SIGN_IN_TEXT in output(refused), refused.describe()
    registry_json.unlink()  # no restart: the gateway notices within a second or two
    started = time.monotonic()
    pulled = eventually(lambda: anonymous.pull(reference), lambda r: r.ok)
    check_pulled(anonymous, pulled, official, upstream)
    assert time.monotonic() - started < APPLY_TIMEOUT_SECONDS


# -- image access, through docker -----------------------------------------------------------


def test_a_member_denied_by_image_access_sees_why(
    gateway: Gateway,
    images: dict[str, Seeded],
    registry_json: Path,
    client: Callable[[str], DockerClient],
) -> None:
    allow(registry_json, "acme")  # members pull under their orgs' policies as before
    community = images["community"]
    gateway.set_image_access("acme", "--enable", "--community=restricted")
    try:
        bob = client("bob")
        logged_in = eventually(lambda: login(bob, gateway, "bob"), lambda r: r.ok)
        assert logged_in.ok, logged_in.describe()
        bob.remove(community.reference(gateway.host))
        refused = bob.pull(community.reference(gateway.host))
        assert not refused.ok, refused.describe()
        expected = denial_text(community.repository, "acme", COMMUNITY_NOT_ALLOWED)
        assert expected in output(refused), refused.describe()
    finally:
        gateway.set_image_access("acme", "--disable", "--community=allowed")
