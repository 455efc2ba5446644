"""SIGKILL at any point: nothing partial becomes visible, and uploads go on afterwards."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from imagegate.core.digests import Digest
from imagegate.core.names import Reference
from imagegate.hosted.registry import HostedContent
from imagegate.proxy.descriptors import references
from imagegate.storage.filesystem import open_filesystem_store
from tests.hosted.helpers import APP, body, push_image, read_all

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import asyncio, os, sys
from pathlib import Path
from imagegate.hosted.registry import HostedContent
from imagegate.proxy.descriptors import references
from imagegate.storage.filesystem import open_filesystem_store
from tests.hosted.helpers import APP, push_image

async def endless():
    while True:
        yield os.urandom(256 * 1024)
        await asyncio.sleep(0)

async def main(root, mode):
    hosted = HostedContent(open_filesystem_store(Path(root)))
    if mode == "upload":
        upload = await hosted.start_upload(APP)
        print(upload.upload_id, flush=True)
        await hosted.append(APP, upload.upload_id, endless(), None, None)
    number = 0
    while True:
        await push_image(hosted, APP, f"v{number}", os.urandom(300), os.urandom(900_000))
        print(number, flush=True)
        number += 1

asyncio.run(main(*sys.argv[1:]))
"""


def _start(root: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert child.stdout is not None
    child.stdout.close()


def _assert_every_blob_is_whole(root: Path) -> int:
    """Whatever is under ``blobs/`` hashes to its name: nothing half-written is visible."""
    count = 0
    for directory, _, names in os.walk(root / "blobs"):
        for name in names:
            algorithm = Path(directory).parent.name
            data = (Path(directory) / name).read_bytes()
            assert Digest.of(data, algorithm).encoded == name
            count += 1
    return count


async def test_killed_mid_upload(tmp_path: Path) -> None:
    root = tmp_path / "store"
    child = _start(root, "upload")
    assert child.stdout is not None
    upload_id = child.stdout.readline().strip()
    data = root / "hosted" / "uploads" / upload_id / "data"
    for _ in range(3000):  # until the child has written 3 MiB (30 s at most)
        if data.exists() and data.stat().st_size >= 3 * 1024 * 1024:
            break
        await asyncio.sleep(0.01)
    _kill(child)

    hosted = HostedContent(open_filesystem_store(root))  # "after the restart"
    assert _assert_every_blob_is_whole(root) == 0  # nothing was committed
    kept = (await hosted.upload_status(APP, upload_id)).offset
    assert kept >= 3 * 1024 * 1024 and kept == data.stat().st_size
    # The session resumes where the bytes on disk end (hashed again from disk)...
    received = data.read_bytes()
    digest = Digest.of(received + b"tail")
    await hosted.finish(APP, upload_id, digest, body(b"tail"), kept, 4)
    stream = await hosted.open_blob(APP, digest, None)
    assert await read_all(stream.chunks) == received + b"tail"
    # ...and a new upload works.
    _, pushed = await push_image(hosted, APP, "after", b"{}", b"layer")
    assert (await hosted.get_manifest(APP, Reference(tag="after"), [])).digest == pushed.digest


async def test_killed_while_pushing_images(tmp_path: Path) -> None:
    root = tmp_path / "store"
    child = _start(root, "push")
    assert child.stdout is not None
    for _ in range(3):
        child.stdout.readline()
    await asyncio.sleep(random.uniform(0.05, 0.15))  # to land anywhere in a push
    _kill(child)

    hosted = HostedContent(open_filesystem_store(root))
    hosted.purge_expired_uploads()
    _assert_every_blob_is_whole(root)
    tags = (await hosted.list_tags(APP, None, None)).tags
    assert len(tags) >= 3
    for tag in tags:  # every manifest visible is whole, and so is everything it names
        manifest = await hosted.get_manifest(APP, Reference(tag=tag), [])
        assert Digest.of(manifest.body) == manifest.digest
        for blob in references(manifest.body).blobs:
            stream = await hosted.open_blob(APP, blob, None)
            assert Digest.of(await read_all(stream.chunks)) == blob
    _, pushed = await push_image(hosted, APP, "after", b"{}", b"layer")
    assert pushed.tags == ["after"]
