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
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.profile import profiled
from bench.throttle import ThrottledLink
from imagegate.config import ConfigError, load_settings
from tests.support import images as images_module
from tests.support.gateway import Gateway
from tests.support.images import Image, build_image, push_image
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
    profile_dir: Path | None = None  # py-spy flame graphs go here (``--profile``)

    def profile_path(self, name: str) -> Path | None:
        if self.profile_dir is None:
            return None
        return self.profile_dir / f"workers-{self.workers}-{name}.svg"

    def profiling(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Record this world's gateway as flame graph ``name`` while the block runs, with
        ``--profile`` (the hot path one loop of a case measures); nothing otherwise."""
        return profiled(self.gateway_pid, self.profile_path(name))

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


def bench_image(blob_mib: int) -> Image:
    """The image with a ``blob_mib`` MiB layer, built once per machine.

    Gzipping 200 MiB of random bytes takes 15-30 s, more than a quick run's cases; the
    image is deterministic, so it is kept under ``~/.cache/imagegate-bench`` keyed by the
    size and the source of the builder, written aside and renamed into place whole.
    """
    builder = Path(images_module.__file__).read_bytes()
    key = hashlib.sha256(builder + str(blob_mib).encode()).hexdigest()[:16]
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cached = cache_home / "imagegate-bench" / f"image-{blob_mib}mib-{key}"
    if cached.is_dir():
        facts = json.loads((cached / "image.json").read_text())
        return Image(
            manifest=(cached / "manifest").read_bytes(),
            media_type=facts["media_type"],
            blobs={digest: (cached / digest).read_bytes() for digest in facts["blobs"]},
        )
    image = build_image("imagegate-bench", padding=blob_mib * MIB)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # no cache, then: next time builds again
        partial = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".partial-"))
        (partial / "manifest").write_bytes(image.manifest)
        for digest, blob in image.blobs.items():
            (partial / digest).write_bytes(blob)
        facts = {"media_type": image.media_type, "blobs": list(image.blobs)}
        (partial / "image.json").write_text(json.dumps(facts))
        partial.rename(cached)
    return image


@contextlib.contextmanager
def running_peers(directory: Path, blob_mib: int) -> Iterator[Peers]:
    """Start the peers and push an image with a ``blob_mib`` MiB layer to the upstream."""
    image = bench_image(blob_mib)
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
def fresh_gateway(
    peers: Peers, workers: int, name: str, upstream_url: str, profile: Path | None = None
) -> Iterator[Gateway]:
    """A gateway with an empty cache in front of ``upstream_url``, stopped afterwards;
    profiled into ``profile`` for its whole life when that is given."""
    directory = peers.directory / f"workers-{workers}" / name
    settings = workers_settings(workers)
    with (
        Gateway(directory, upstream_url=upstream_url, settings=settings) as gateway,
        profiled(gateway.pid, profile),
    ):
        yield gateway


@contextlib.contextmanager
def running_world(peers: Peers, workers: int, profile_dir: Path | None = None) -> Iterator[World]:
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
            profile_dir=profile_dir,
        )
