"""An upstream that breaks a blob mid-stream or sends wrong bytes: nothing corrupt is kept."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from imagegate.core.errors import RegistryError
from imagegate.proxy.interfaces import CHUNK_SIZE
from imagegate.proxy.service import ProxyContent
from imagegate.storage.blobs import FilesystemBlobStore
from tests.proxy.conftest import ContentFactory
from tests.proxy.faults import (
    Cdn,
    Fault,
    FaultyUpstream,
    corrupt_blob,
    redirect_blob,
    truncate_blob,
)
from tests.proxy.helpers import collect, digest, ref, repo
from tests.support.images import Image, build_image, push_image
from tests.support.upstream import UpstreamRegistry, htpasswd_auth


@pytest.fixture
def image(upstream: UpstreamRegistry) -> Image:
    built = build_image("faults", padding=2 * CHUNK_SIZE + 7)
    push_image(upstream.url, "library/faults", "1", built)
    return built


@pytest.fixture
async def faulty(upstream: UpstreamRegistry) -> AsyncIterator[FaultyUpstream]:
    server = await FaultyUpstream(upstream.url).start()
    yield server
    await server.stop()


async def _stored(content: ProxyContent, layer: str) -> int | None:
    return await content.store.blobs.size(digest(layer))


def _temp_files(content: ProxyContent) -> list[Path]:
    blobs = content.store.blobs
    assert isinstance(blobs, FilesystemBlobStore)
    return list(blobs.layout.tmp.iterdir())


@pytest.mark.parametrize("make_fault", [truncate_blob, corrupt_blob], ids=["truncated", "corrupt"])
async def test_a_bad_body_aborts_every_reader_and_nothing_is_kept(
    faulty: FaultyUpstream,
    make_content: ContentFactory,
    image: Image,
    make_fault: Callable[[str], Fault],
) -> None:
    content = make_content(faulty.url)
    layer = image.layer_digests[0]
    faulty.fault = make_fault(layer)

    streams = await asyncio.gather(
        *(content.open_blob(repo("faults"), digest(layer), None) for _ in range(3))
    )
    for stream in streams:
        received = bytearray()
        with pytest.raises(RegistryError):
            async for chunk in stream.chunks:
                received += chunk
        assert len(received) < len(image.blobs[layer])  # never a complete response
    assert faulty.count("GET", f"/blobs/{layer}") == 1
    assert await _stored(content, layer) is None
    assert _temp_files(content) == []

    faulty.fault = None  # the upstream heals: a later fetch works
    stream = await content.open_blob(repo("faults"), digest(layer), None)
    assert await collect(stream.chunks) == image.blobs[layer]
    # The response may end before the blob is published; a range waits for that.
    await collect((await content.open_blob(repo("faults"), digest(layer), "bytes=0-0")).chunks)
    assert await _stored(content, layer) == len(image.blobs[layer])
    assert faulty.count("GET", f"/blobs/{layer}") == 2


async def test_a_range_of_a_bad_body_is_refused(
    faulty: FaultyUpstream, make_content: ContentFactory, image: Image
) -> None:
    content = make_content(faulty.url)
    layer = image.layer_digests[0]
    faulty.fault = corrupt_blob(layer)
    with pytest.raises(RegistryError, match="wrong content"):
        await content.open_blob(repo("faults"), digest(layer), "bytes=0-9")


async def test_a_redirect_to_another_origin_drops_credentials(
    tmp_path: Path, make_content: ContentFactory
) -> None:
    directory = tmp_path / "basic"
    directory.mkdir()
    credentials = ("svc", "s3cret")
    image = build_image("cdn")
    layer = image.layer_digests[0]
    with UpstreamRegistry(directory, auth=htpasswd_auth(directory, dict([credentials]))) as up:
        push_image(up.url, "library/cdn", "1", image, credentials)
        cdn = await Cdn({layer: image.blobs[layer]}).start()
        faulty = await FaultyUpstream(up.url).start()
        try:
            faulty.fault = redirect_blob(layer, cdn)
            content = make_content(faulty.url, credentials)
            stream = await content.open_blob(repo("cdn"), digest(layer), None)
            assert await collect(stream.chunks) == image.blobs[layer]
            assert cdn.authorizations == [None]
        finally:
            await faulty.stop()
            await cdn.stop()


async def test_a_hostile_manifest_nested_too_deep_is_kept_but_names_nothing(
    faulty: FaultyUpstream, make_content: ContentFactory, image: Image
) -> None:
    # 10 KB that json.loads cannot parse without a RecursionError: served as sent, as
    # any manifest is, and it links no blob to the repository.
    deep = b'{"schemaVersion": 2, "layers": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    headers = {
        "Content-Type": "application/vnd.oci.image.manifest.v1+json",
        "Docker-Content-Digest": f"sha256:{hashlib.sha256(deep).hexdigest()}",
    }

    async def fault(request: web.Request, upstream: FaultyUpstream) -> web.StreamResponse | None:
        if request.path.rsplit("/", 1)[-1] not in ("deep", headers["Docker-Content-Digest"]):
            return None
        return web.Response(body=b"" if request.method == "HEAD" else deep, headers=headers)

    faulty.fault = fault
    content = make_content(faulty.url)
    manifest = await content.get_manifest(repo("library/faults"), ref("deep"), [])
    assert manifest.body == deep
    assert not await content.store.repositories.is_linked(
        repo("library/faults"), digest(image.layer_digests[0])
    )
