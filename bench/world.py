"""The world a benchmark runs in: a real upstream holding a big image, a gateway in front.

Everything is loopback and lives under one directory: a ``docker-registry`` (CNCF
distribution), ``imagegate serve`` as a subprocess with its own data dir and no Hub
lookups, a password user and an access-token user. The support helpers of the test
suite do the work; this module only puts them together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.gateway import Gateway
from tests.support.images import build_image, push_image
from tests.support.upstream import UpstreamRegistry

REPOSITORY = "library/bench"
TAG = "latest"
MIB = 1024 * 1024


@dataclass(frozen=True)
class World:
    upstream: UpstreamRegistry
    upstream_pid: int
    gateway: Gateway
    gateway_pid: int
    manifest_type: str
    manifest_digest: str
    layer: str  # the big layer's digest
    layer_size: int
    password_user: tuple[str, str]
    token_user: tuple[str, str]  # (user, personal access token)

    def blob_path(self, digest: str) -> str:
        return f"/v2/{REPOSITORY}/blobs/{digest}"

    def manifest_path(self, reference: str = TAG) -> str:
        return f"/v2/{REPOSITORY}/manifests/{reference}"


@contextlib.contextmanager
def running_world(directory: Path, blob_mib: int) -> Iterator[World]:
    """Start both servers, push an image with a ``blob_mib`` MiB layer, add the users."""
    image = build_image("imagegate-bench", padding=blob_mib * MIB)
    layer = image.layer_digests[0]
    with contextlib.ExitStack() as stack:
        upstream = stack.enter_context(UpstreamRegistry(directory))
        push_image(upstream.url, REPOSITORY, TAG, image)
        gateway = stack.enter_context(Gateway(directory, upstream_url=upstream.url))
        gateway.add_user("pat", "pat-password")
        gateway.add_user("tess", "tess-password")
        token = gateway.create_token("tess", "bench")
        yield World(
            upstream=upstream,
            upstream_pid=upstream.pid,
            gateway=gateway,
            gateway_pid=gateway.pid,
            manifest_type=image.media_type,
            manifest_digest=image.digest,
            layer=layer,
            layer_size=len(image.blobs[layer]),
            password_user=("pat", "pat-password"),
            token_user=("tess", token),
        )
