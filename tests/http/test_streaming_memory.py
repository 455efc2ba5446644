"""Memory stays flat however large the blob: a ~256 MiB layer through ``imagegate serve``.

The server runs as a real subprocess (so its peak RSS is its own), in front of a real
distribution registry. The blob is pulled twice, first uncached (streamed through while
the cache fills; the client reads slowly, so an in-memory buffer between the upstream and
the client would have to grow), then from the cache. The assertion is on the server's
peak resident set (``VmHWM``), not on any timing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.binaries import require_binary
from tests.support.gateway import Gateway
from tests.support.images import build_image, push_image
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
# random.randbytes on Python 3.11 stops below 256 MiB (2**31 bits): the layer is ~255 MiB.
BLOB_MIB = 255
MAX_PEAK_GROWTH_MIB = 64
REPOSITORY = "library/big"
SLOW_READ_PAUSE = 0.002  # per 1 MiB read on the uncached pull: the upstream runs ahead


@dataclass(frozen=True)
class BigBlob:
    gateway: Gateway
    pid: int
    digest: str
    size: int


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"/proc/{pid}/status has no VmHWM")


@pytest.fixture(scope="module")
def big_blob(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigBlob]:
    require_binary("docker-registry")
    directory = tmp_path_factory.mktemp("streaming-memory")
    image = build_image("streaming-memory", padding=BLOB_MIB * MIB)
    digest = image.layer_digests[0]
    size = len(image.blobs[digest])
    with UpstreamRegistry(directory) as upstream:
        push_image(upstream.url, REPOSITORY, "1", image)
        del image  # 256 MiB of test-process memory not needed any more
        with Gateway(directory, upstream_url=upstream.url) as gateway:
            yield BigBlob(gateway, gateway.pid, digest, size)


async def _token(session: aiohttp.ClientSession, gateway: Gateway) -> str:
    params = {"service": "imagegate", "scope": f"repository:{REPOSITORY}:pull"}
    async with session.get(f"{gateway.url}/token", params=params) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["token"])


async def _pull(
    session: aiohttp.ClientSession, url: str, token: str, pause: float = 0.0
) -> tuple[int, str]:
    """Read the body in 1 MiB pieces; its size and sha256 digest."""
    hasher = hashlib.sha256()
    size = 0
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, await response.text()
        async for piece in response.content.iter_chunked(MIB):
            hasher.update(piece)
            size += len(piece)
            if pause:
                await asyncio.sleep(pause)
    return size, "sha256:" + hasher.hexdigest()


async def test_peak_memory_stays_flat_pulling_a_large_blob(big_blob: BigBlob) -> None:
    url = f"{big_blob.gateway.url}/v2/{REPOSITORY}/blobs/{big_blob.digest}"
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(auto_decompress=False, timeout=timeout) as session:
        token = await _token(session, big_blob.gateway)
        # Warm the request path (database, token check, upstream session) on a small
        # request, so the baseline is the server at work, not the server just started.
        manifest = f"{big_blob.gateway.url}/v2/{REPOSITORY}/manifests/1"
        async with session.get(manifest, headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200, await r.text()
        before = _peak_rss_mib(big_blob.pid)

        uncached = await _pull(session, url, token, pause=SLOW_READ_PAUSE)
        after_uncached = _peak_rss_mib(big_blob.pid)
        cached = await _pull(session, url, token)
        after_cached = _peak_rss_mib(big_blob.pid)

    expected = (big_blob.size, big_blob.digest)
    assert uncached == expected, "the streamed-through pull came back wrong"
    assert cached == expected, "the cached pull came back wrong"
    growth = after_cached - before
    assert growth < MAX_PEAK_GROWTH_MIB, (
        f"serving a {big_blob.size / MIB:.0f} MiB blob grew the server's peak RSS by "
        f"{growth:.0f} MiB (from {before:.0f} MiB; {after_uncached - before:.0f} MiB after "
        f"the uncached pull): something holds the blob in memory"
    )
