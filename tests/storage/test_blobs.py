"""The filesystem blob store: nothing half-written or unverified is ever visible."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from imagegate.core.digests import Digest
from imagegate.core.errors import BlobUnknown, DigestInvalid, SizeInvalid
from imagegate.proxy.interfaces import CHUNK_SIZE
from imagegate.storage import files
from imagegate.storage.blobs import FilesystemBlobStore
from imagegate.storage.interfaces import WriterClosed

DATA = os.urandom(2 * CHUNK_SIZE + 100)
DIGEST = Digest.of(DATA)


async def _collect(store: FilesystemBlobStore, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(DIGEST, start, end)])


async def test_write_verify_and_read_back(tmp_path: Path) -> None:
    store = FilesystemBlobStore.open(tmp_path)
    writer = await store.create()
    reader = await writer.open_reader()
    for offset in range(0, len(DATA), CHUNK_SIZE):
        await writer.write(DATA[offset : offset + CHUNK_SIZE])
        assert await store.size(DIGEST) is None  # invisible until committed
    assert await reader.read_at(CHUNK_SIZE, 10) == DATA[CHUNK_SIZE : CHUNK_SIZE + 10]
    await writer.commit(DIGEST, len(DATA))

    assert await store.size(DIGEST) == len(DATA)
    assert await _collect(store) == DATA
    assert await _collect(store, 5, 9) == DATA[5:10]
    assert await store.read_bytes(DIGEST, len(DATA)) == DATA
    assert await reader.read_at(0, 10) == DATA[:10]  # a reader's handle outlives the rename
    reader.close()
    reader.close()  # harmless twice
    with pytest.raises(WriterClosed):
        await writer.open_reader()
    assert list(store.layout.tmp.iterdir()) == []


async def test_verified_content_stays_invisible_until_committed(tmp_path: Path) -> None:
    store = FilesystemBlobStore.open(tmp_path)
    writer = await store.create()
    await writer.write(DATA)
    await writer.verify(DIGEST, len(DATA))
    assert await store.size(DIGEST) is None
    with pytest.raises(WriterClosed):
        await writer.write(b"more")
    reader = await writer.open_reader()  # verified bytes are still readable
    assert await reader.read_at(len(DATA) - 10, 100) == DATA[-10:]
    reader.close()
    await writer.commit(DIGEST, len(DATA))
    assert await store.size(DIGEST) == len(DATA)


async def test_a_failed_publish_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(temporary: Path, destination: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "publish", fail)
    store = FilesystemBlobStore.open(tmp_path)
    writer = await store.create()
    await writer.write(DATA)
    reader = await writer.open_reader()
    await writer.verify(DIGEST)
    with pytest.raises(OSError, match="No space"):
        await writer.commit(DIGEST)
    assert await store.size(DIGEST) is None
    assert list(store.layout.tmp.iterdir()) == []
    assert await reader.read_at(0, 10) == DATA[:10]  # what a reader held stays readable
    reader.close()
    with pytest.raises(WriterClosed):
        await writer.open_reader()
    await writer.abort()  # harmless after the failure


async def test_abort_waits_for_a_write_whose_caller_was_cancelled(tmp_path: Path) -> None:
    store = FilesystemBlobStore.open(tmp_path)
    writer = await store.create()
    write = asyncio.create_task(writer.write(DATA))
    await asyncio.sleep(0)  # the write is in its thread
    write.cancel()
    with pytest.raises(asyncio.CancelledError):
        await write
    await writer.abort()  # closes the descriptor only once the thread is done with it
    assert list(store.layout.tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("digest", "size", "error"),
    [(Digest.of(b"other"), None, DigestInvalid), (DIGEST, len(DATA) + 1, SizeInvalid)],
)
async def test_wrong_content_is_rejected_and_absent(
    tmp_path: Path, digest: Digest, size: int | None, error: type[Exception]
) -> None:
    store = FilesystemBlobStore.open(tmp_path)
    writer = await store.create()
    await writer.write(DATA)
    with pytest.raises(error):
        await writer.commit(digest, size)
    assert await store.size(digest) is None
    assert await store.size(DIGEST) is None
    assert list(store.layout.tmp.iterdir()) == []


async def test_abort_leaves_nothing(tmp_path: Path) -> None:
    store = FilesystemBlobStore.open(tmp_path)
    writer = await store.create()
    await writer.write(DATA)
    await writer.abort()
    await writer.abort()  # harmless twice
    assert list(store.layout.tmp.iterdir()) == []
    with pytest.raises(BlobUnknown):
        await _collect(store)


async def test_committing_existing_content_keeps_it(tmp_path: Path) -> None:
    store = FilesystemBlobStore.open(tmp_path)
    for _ in range(2):
        writer = await store.create()
        await writer.write(DATA)
        await writer.commit(DIGEST)
    assert await _collect(store) == DATA
    assert list(store.layout.tmp.iterdir()) == []


async def test_stale_temp_files_are_invisible_and_cleaned_at_start(tmp_path: Path) -> None:
    store = FilesystemBlobStore.open(tmp_path)
    writer = await store.create()
    await writer.write(DATA)  # a crash now: the temp file stays behind
    (leftover,) = store.layout.tmp.iterdir()
    assert await store.size(DIGEST) is None

    FilesystemBlobStore.open(tmp_path)  # a recent temp file may be a live write: kept
    assert leftover.exists()

    old = time.time() - 3600
    os.utime(leftover, (old, old))
    reopened = FilesystemBlobStore.open(tmp_path)
    assert not leftover.exists()
    assert await reopened.size(DIGEST) is None
    await writer.abort()


async def test_writable(tmp_path: Path) -> None:
    store = FilesystemBlobStore.open(tmp_path)
    assert await store.writable()
    store.layout.tmp.rmdir()
    assert not await store.writable()
