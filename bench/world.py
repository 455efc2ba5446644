"""The world a benchmark runs in: real peers holding a big image, gateways in front.

Everything is loopback and lives under one directory. The peers start once
(``running_peers``): a ``docker-registry`` (CNCF distribution) holding the image, a second
``docker-registry`` configured as a pull-through proxy of it (the baseline for manifests),
and a throttled link to the first (``bench.throttle``, the baseline upstream for first
pulls). Gateways come and go (``running_world``, ``fresh_gateway``): ``imagegate serve``
as a subprocess with its own data dir (so its cache starts cold), no Hub lookups, and
``IMAGEGATE_WORKERS`` when the installed imagegate knows that setting. The support
helpers of the test suite do the work; this module only puts them together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.throttle import ThrottledLink
from imagegate.config import ConfigError, load_settings
from tests.support.gateway import Gateway
from tests.support.images import build_image, push_image
from tests.support.upstream import UpstreamRegistry

REPOSITORY = "library/bench"
TAG = "latest"
MIB = 1024 * 1024
WORKERS_SETTING = "IMAGEGATE_WORKERS"


@dataclass(frozen=True)
class Peers:
    directory: Path
    upstream: UpstreamRegistry
    proxy: UpstreamRegistry  # distribution as a pull-through cache of ``upstream``
    throttled: ThrottledLink  # ``upstream`` at about 100 MB/s
    manifest_type: str
    manifest_digest: str
    layer: str  # the big layer's digest
    layer_size: int


@dataclass(frozen=True)
class World:
    peers: Peers
    gateway: Gateway
    workers: int
    password_user: tuple[str, str]
    token_user: tuple[str, str]  # (user, personal access token)

    @property
    def upstream(self) -> UpstreamRegistry:
        return self.peers.upstream

    @property
    def upstream_pid(self) -> int:
        return self.peers.upstream.pid

    @property
    def gateway_pid(self) -> int:
        return self.gateway.pid

    @property
    def manifest_type(self) -> str:
        return self.peers.manifest_type

    @property
    def layer(self) -> str:
        return self.peers.layer

    @property
    def layer_size(self) -> int:
        return self.peers.layer_size

    def blob_path(self, digest: str) -> str:
        return f"/v2/{REPOSITORY}/blobs/{digest}"

    def manifest_path_for(self, reference: str) -> str:
        return f"/v2/{REPOSITORY}/manifests/{reference}"

    @property
    def manifest_path(self) -> str:
        return self.manifest_path_for(TAG)

    @property
    def image_reference(self) -> str:
        return f"{REPOSITORY}:{TAG}"


def gateway_knows_workers() -> bool:
    """Whether the installed imagegate accepts ``IMAGEGATE_WORKERS`` (an unknown
    ``IMAGEGATE_*`` setting stops its startup)."""
    try:
        load_settings({WORKERS_SETTING: "1"})
    except ConfigError:
        return False
    return True


def workers_settings(workers: int) -> dict[str, str]:
    return {WORKERS_SETTING: str(workers)} if gateway_knows_workers() else {}


@contextlib.contextmanager
def running_peers(directory: Path, blob_mib: int) -> Iterator[Peers]:
    """Start the peers and push an image with a ``blob_mib`` MiB layer to the upstream."""
    image = build_image("imagegate-bench", padding=blob_mib * MIB)
    layer = image.layer_digests[0]
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(UpstreamRegistry(directory))
        push_image(upstream.url, REPOSITORY, TAG, image)
        proxy = stack.enter_context(
            UpstreamRegistry(directory, proxy_remote_url=upstream.url, name="distribution-proxy")
        )
        throttled = stack.enter_context(ThrottledLink(directory, upstream.url))
        yield Peers(
            directory=directory,
            upstream=upstream,
            proxy=proxy,
            throttled=throttled,
            manifest_type=image.media_type,
            manifest_digest=image.digest,
            layer=layer,
            layer_size=len(image.blobs[layer]),
        )


@contextlib.contextmanager
def fresh_gateway(peers: Peers, workers: int, name: str, upstream_url: str) -> Iterator[Gateway]:
    """A gateway with an empty cache in front of ``upstream_url``, stopped afterwards."""
    directory = peers.directory / f"workers-{workers}" / name
    with Gateway(directory, upstream_url=upstream_url, settings=workers_settings(workers)) as gw:
        yield gw


@contextlib.contextmanager
def running_world(peers: Peers, workers: int) -> Iterator[World]:
    """A gateway in front of the loopback upstream, with a password and a token user."""
    with fresh_gateway(peers, workers, "loopback", peers.upstream.url) as gateway:
        gateway.add_user("pat", "pat-password")
        gateway.add_user("tess", "tess-password")
        token = gateway.create_token("tess", "bench")
        yield World(
            peers=peers,
            gateway=gateway,
            workers=workers,
            password_user=("pat", "pat-password"),
            token_user=("tess", token),
        )
