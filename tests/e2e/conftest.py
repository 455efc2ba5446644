"""End-to-end fixtures: a real upstream, a Hub stand-in, ``imagegate serve``, real clients.

The upstream (CNCF distribution) and the Hub stub start once per session; each test module
starts its own gateway (fresh data dir and database) and configures it only through the
``imagegate`` CLI, so modules do not see each other's users or policies.

In CI (``CI=true``) a missing binary fails the test; locally it skips with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.binaries import fail_skip_in_ci, require_binary
from tests.e2e.binaries import skopeo as skopeo
from tests.e2e.binaries import upstream as upstream
from tests.e2e.world import HUB_BADGES, IMAGES, Seeded, configure_world
from tests.support.clients import MissingClient, Podman
from tests.support.gateway import Gateway
from tests.support.hubstub import HubStub
from tests.support.images import build_image, push_image
from tests.support.upstream import UpstreamRegistry


@pytest.fixture(scope="session")
def hub() -> Iterator[HubStub]:
    with HubStub(HUB_BADGES) as stub:
        yield stub


@pytest.fixture(scope="session")
def images(upstream: UpstreamRegistry) -> dict[str, Seeded]:
    """Every image of ``IMAGES``, distinct, pushed to the session upstream."""
    seeded = {}
    for key, (repository, tag) in IMAGES.items():
        image = build_image(f"e2e-{key}", layers=2)
        digest = push_image(upstream.url, repository, tag, image)
        seeded[key] = Seeded(repository, tag, digest, tuple(image.layer_digests))
    assert len({s.digest for s in seeded.values()}) == len(seeded), "images must be distinct"
    return seeded


# -- gateways, and their logs on failure ------------------------------------------------

E2E_WORKERS = 2  # what `imagegate serve` runs on a two-core machine: every test, two processes


@pytest.fixture(scope="module", autouse=True)
def workers() -> Iterator[None]:
    """Every gateway of the suite serves with ``E2E_WORKERS`` worker processes."""
    previous, Gateway.default_workers = Gateway.default_workers, E2E_WORKERS
    yield
    Gateway.default_workers = previous


_RUNNING: list[Gateway] = []
_LOG_OFFSETS = pytest.StashKey[dict[int, int]]()


@pytest.fixture(scope="module")
def start_gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Gateway]]:
    """Start gateways for one module (keyword arguments go to ``Gateway``); stop them after."""
    started: list[Gateway] = []

    def start(
        *,
        upstream_url: str,
        hub_api_url: str = "",
        upstream_credentials: tuple[str, str] | None = None,
        database_url: str = "",
    ) -> Gateway:
        gateway = Gateway(
            tmp_path_factory.mktemp("gateway"),
            upstream_url=upstream_url,
            hub_api_url=hub_api_url,
            upstream_credentials=upstream_credentials,
            database_url=database_url,
        )
        started.append(gateway)
        _RUNNING.append(gateway)
        return gateway.start()

    yield start
    unclean = []
    for gateway in started:
        status = gateway.stop()
        _RUNNING.remove(gateway)
        if not Gateway.clean_exit(status):
            unclean.append(f"{gateway.host} exited with {status}:\n{gateway.log_tail(3000)}")
    # A server that crashed, or had to be killed, fails the module's last test teardown.
    assert not unclean, "imagegate serve did not stop cleanly:\n" + "\n".join(unclean)


@pytest.fixture(scope="module")
def world_gateway(
    start_gateway: Callable[..., Gateway],
    upstream: UpstreamRegistry,
    hub: HubStub,
    images: dict[str, Seeded],
) -> Gateway:
    """A gateway in front of the session upstream, with the users and orgs of the world."""
    gateway = start_gateway(upstream_url=upstream.url, hub_api_url=hub.url)
    configure_world(gateway)
    return gateway


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_LOG_OFFSETS] = {id(gateway): gateway.log_size() for gateway in _RUNNING}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    fail_skip_in_ci(report, "an end-to-end test")
    if not report.failed:
        return
    offsets = item.stash.get(_LOG_OFFSETS, {})
    for gateway in _RUNNING:
        text = gateway.log_since(offsets.get(id(gateway), 0))[-12000:]
        report.sections.append((f"imagegate log ({gateway.host}, {call.when})", text))


# -- clients ---------------------------------------------------------------------------


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    """A podman with storage of its own: nothing pulled by another test is reused."""
    require_binary("podman")
    try:
        client = Podman(tmp_path / "podman")
    except MissingClient as exc:
        pytest.fail(str(exc), pytrace=False)
    yield client
    client.close()
