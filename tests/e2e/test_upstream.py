"""The upstream, end to end: down after a pull, and behind Basic or Bearer authentication.

Each case has an upstream (a real ``docker-registry``) and a gateway of its own, and pulls
anonymously with skopeo (and podman where the cache matters): the upstream's exact
digests come out, or a clear error.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.binaries import require_binary
from tests.e2e.world import OK, Seeded, check_pull
from tests.support.clients import Podman, Skopeo
from tests.support.gateway import Gateway
from tests.support.images import OCI_MANIFEST, build_image, push_image
from tests.support.tokenserver import TokenServer
from tests.support.upstream import UpstreamRegistry, htpasswd_auth

pytestmark = pytest.mark.e2e

ACCOUNT = ("upstream-svc", "upstream-Pa55word")


def _seed(
    upstream: UpstreamRegistry, repository: str, seed: str, creds: tuple[str, str] | None = None
) -> Seeded:
    image = build_image(seed, layers=2)
    digest = push_image(upstream.url, repository, "1", image, creds)
    return Seeded(repository, "1", digest, tuple(image.layer_digests))


def _anonymous_status(upstream: UpstreamRegistry, image: Seeded) -> int:
    """What the upstream answers a client without credentials."""
    url = f"{upstream.url}/v2/{image.repository}/manifests/{image.tag}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _manifest_get(gateway: Gateway, image: Seeded) -> tuple[int, bytes]:
    """An anonymous manifest GET through the gateway, with the token flow done by hand."""
    scope = urllib.parse.urlencode(
        {"service": "imagegate", "scope": f"repository:{image.repository}:pull"}
    )
    with urllib.request.urlopen(f"{gateway.url}/token?{scope}", timeout=10) as response:
        token = json.loads(response.read())["token"]
    request = urllib.request.Request(
        f"{gateway.url}/v2/{image.repository}/manifests/{image.tag}",
        headers={"Authorization": f"Bearer {token}", "Accept": OCI_MANIFEST},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- an upstream that goes down ----------------------------------------------------------


@dataclass
class DownCase:
    upstream: UpstreamRegistry
    gateway: Gateway
    cached: Seeded
    uncached: Seeded


@pytest.fixture(scope="module")
def down(
    tmp_path_factory: pytest.TempPathFactory, start_gateway: Callable[..., Gateway]
) -> Iterator[DownCase]:
    require_binary("docker-registry")
    upstream = UpstreamRegistry(tmp_path_factory.mktemp("upstream-down")).start()
    try:
        cached = _seed(upstream, "someone/cached", "faults-cached")
        uncached = _seed(upstream, "someone/uncached", "faults-uncached")
        gateway = start_gateway(upstream_url=upstream.url, hub_api_url="")
        yield DownCase(upstream, gateway, cached, uncached)
    finally:
        upstream.stop()


def test_cached_content_is_served_while_the_upstream_is_down(
    down: DownCase, skopeo: Skopeo, podman: Podman
) -> None:
    host, cached = down.gateway.host, down.cached
    check_pull(skopeo.pull(cached.reference(host)), OK, cached)
    check_pull(podman.pull(cached.reference(host)), OK, cached)

    down.upstream.stop()
    try:
        check_pull(skopeo.pull(cached.reference(host)), OK, cached)
        check_pull(skopeo.pull(cached.by_digest(host)), OK, cached)
        podman.remove_all()
        check_pull(podman.pull(cached.reference(host)), OK, cached)

        missing = skopeo.pull(down.uncached.reference(host))
        assert not missing.ok, missing.describe()
        # Not a misleading "manifest unknown": the person must learn the service is away.
        # (Clients print only the status of a 5xx answer; its body says why.)
        assert "manifest unknown" not in missing.stderr.lower(), missing.describe()
        assert "503 Service Unavailable" in missing.stderr, missing.describe()
        status, body = _manifest_get(down.gateway, down.uncached)
        assert status == 503, body
        error = json.loads(body)["errors"][0]
        assert error["code"] == "UNAVAILABLE", error
        assert "upstream" in error["message"].lower(), error
    finally:
        down.upstream.start()

    # Back up: what was missing now comes through.
    check_pull(skopeo.pull(down.uncached.reference(host)), OK, down.uncached)


# -- upstreams that want credentials ---------------------------------------------------


def test_a_basic_auth_upstream(
    tmp_path_factory: pytest.TempPathFactory,
    start_gateway: Callable[..., Gateway],
    skopeo: Skopeo,
) -> None:
    require_binary("docker-registry")
    directory = tmp_path_factory.mktemp("upstream-basic")
    upstream = UpstreamRegistry(directory, auth=htpasswd_auth(directory, dict([ACCOUNT]))).start()
    try:
        image = _seed(upstream, "someone/basic", "faults-basic", ACCOUNT)
        assert _anonymous_status(upstream, image) == 401, "the upstream must require credentials"

        gateway = start_gateway(
            upstream_url=upstream.url, hub_api_url="", upstream_credentials=ACCOUNT
        )
        check_pull(skopeo.pull(image.reference(gateway.host)), OK, image)
        check_pull(skopeo.pull(image.by_digest(gateway.host)), OK, image)

        # Without the service account the gateway cannot read it, and says so.
        bare = start_gateway(upstream_url=upstream.url, hub_api_url="")
        refused = skopeo.pull(image.reference(bare.host))
        assert not refused.ok, refused.describe()
    finally:
        upstream.stop()


def test_a_bearer_token_upstream(
    tmp_path_factory: pytest.TempPathFactory,
    start_gateway: Callable[..., Gateway],
    skopeo: Skopeo,
    podman: Podman,
) -> None:
    require_binary("docker-registry")
    directory = tmp_path_factory.mktemp("upstream-bearer")
    with TokenServer(directory, *ACCOUNT) as issuer:
        upstream = UpstreamRegistry(directory, auth=issuer.registry_auth()).start()
        try:
            image = _seed(upstream, "someone/bearer", "faults-bearer", ACCOUNT)
            assert _anonymous_status(upstream, image) == 401, "the upstream must require a token"

            gateway = start_gateway(
                upstream_url=upstream.url, hub_api_url="", upstream_credentials=ACCOUNT
            )
            issuer.requests.clear()
            check_pull(skopeo.pull(image.reference(gateway.host)), OK, image)
            check_pull(podman.pull(image.by_digest(gateway.host)), OK, image)
            # The gateway went through the token flow with its service account.
            assert (ACCOUNT[0], [f"repository:{image.repository}:pull"]) in issuer.requests, (
                issuer.requests
            )
        finally:
            upstream.stop()
