"""Claiming a blob's fetch: one leader per digest for every store on a directory.

Two ``FilesystemBlobStore``s on one directory stand for two worker processes here: an
``flock`` is held per open file, so they contend exactly as processes do (the tests in
``tests/proxy/test_flight_processes.py`` use real processes).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import pytest

from imagegate.core.digests import Digest
from imagegate.core.errors import DigestInvalid
from imagegate.proxy.interfaces import CHUNK_SIZE
from imagegate.storage.blobs import FilesystemBlobStore
from imagegate.storage.interfaces import (
    BlobWriter,
    Following,
    ForeignWrite,
    Leading,
    Stored,
    WriterGone,
)

DATA = os.urandom(3 * CHUNK_SIZE + 100)
DIGEST = Digest.of(DATA)
PIECES = [DATA[offset : offset + CHUNK_SIZE] for offset in range(0, len(DATA), CHUNK_SIZE)]


async def _lead(store: FilesystemBlobStore, digest: Digest = DIGEST) -> BlobWriter:
    claim = await store.claim(digest)
    assert isinstance(claim, Leading)
    return claim.writer


async def _follow(store: FilesystemBlobStore) -> ForeignWrite:
    claim = await store.claim(DIGEST)
    assert isinstance(claim, Following)
    return claim.write


async def test_one_leader_and_followers_that_read_only_what_may_be_served(
    tmp_path: Path,
) -> None:
    leader_store = FilesystemBlobStore.open(tmp_path)
    writer = await _lead(leader_store)
    follower = await _follow(FilesystemBlobStore.open(tmp_path))  # a second worker opens
    await writer.announce(len(DATA))
    assert await follower.announced() == len(DATA)

    chunks = follower.chunks()
    await writer.write(PIECES[0])
    assert writer.written == 0  # the newest chunk is not on file: it may be wrong
    await writer.write(PIECES[1])
    assert writer.written == CHUNK_SIZE
    assert await anext(chunks) == PIECES[0]
    for piece in PIECES[2:]:
        await writer.write(piece)
    await writer.verify(DIGEST, len(DATA))  # the last chunk goes on file once it checks out
    assert writer.written == len(DATA)
    received = PIECES[0] + b"".join([chunk async for chunk in chunks])
    assert received == DATA

    await writer.commit(DIGEST, len(DATA))
    assert await follower.finished()
    follower.close()
    assert await leader_store.size(DIGEST) == len(DATA)
    assert list(leader_store.layout.tmp.iterdir()) == []
    assert isinstance(await leader_store.claim(DIGEST), Stored)


async def test_a_failed_write_ends_its_followers_and_leaves_nothing(tmp_path: Path) -> None:
    store = FilesystemBlobStore.open(tmp_path)
    writer = await _lead(store)
    follower = await _follow(store)
    wrong = DATA[:-1] + bytes([DATA[-1] ^ 0xFF])
    await writer.announce(len(wrong))
    assert await follower.announced() == len(wrong)
    for offset in range(0, len(wrong), CHUNK_SIZE):
        await writer.write(wrong[offset : offset + CHUNK_SIZE])
    with pytest.raises(DigestInvalid):
        await writer.verify(DIGEST, len(wrong))

    received = bytearray()
    with pytest.raises(WriterGone):
        async for chunk in follower.chunks():
            received += chunk
    assert len(received) < len(wrong)  # never the whole of it
    assert not await follower.finished()
    follower.close()
    assert list(store.layout.tmp.iterdir()) == []
    assert await store.size(DIGEST) is None
    assert isinstance(await store.claim(DIGEST), Leading)  # the next claim leads afresh


def _lead_and_die(root: Path, data: bytes, written: EventType, die: EventType) -> None:
    """A worker that leads the fetch, puts two chunks on file, and is killed."""

    async def lead() -> None:
        # Not DIGEST: a spawned process imports this module afresh, with other DATA.
        writer = await _lead(FilesystemBlobStore.open(root), Digest.of(data))
        await writer.announce(len(data))
        await writer.write(data[:CHUNK_SIZE])
        await writer.write(data[CHUNK_SIZE : 2 * CHUNK_SIZE])
        written.set()
        die.wait(30)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(lead())


async def test_a_killed_leaders_file_is_never_continued(tmp_path: Path) -> None:
    """A leader killed mid-write leaves its file and note, unlocked: its follower stops
    after what it had released, and the next leader writes a file of its own instead of
    going on in that one (whose bytes it never checked)."""
    context = multiprocessing.get_context("spawn")
    written, die = context.Event(), context.Event()
    worker = context.Process(target=_lead_and_die, args=(tmp_path, DATA, written, die))
    worker.start()
    try:
        assert await asyncio.to_thread(written.wait, 30)
        store = FilesystemBlobStore.open(tmp_path)
        orphan = await _follow(store)
        assert await orphan.announced() == len(DATA)
        die.set()
        await asyncio.to_thread(worker.join, 30)
    finally:
        worker.kill()
    assert worker.exitcode == -signal.SIGKILL
    leftover = store.layout.fetch(DIGEST)
    assert os.stat(leftover).st_size == CHUNK_SIZE  # what it had released, nothing more
    assert await store.size(DIGEST) is None

    writer = await _lead(store)
    assert os.stat(leftover).st_size == 0  # a new file under the name
    chunks = orphan.chunks()
    assert await anext(chunks) == PIECES[0]
    with pytest.raises(WriterGone):
        await anext(chunks)
    orphan.close()

    await writer.announce(len(DATA))
    for piece in PIECES:
        await writer.write(piece)
    await writer.commit(DIGEST, len(DATA))
    assert b"".join([chunk async for chunk in store.read(DIGEST)]) == DATA
    assert list(store.layout.tmp.iterdir()) == []


async def test_abandoned_fetch_files_are_removed_at_start_live_ones_kept(
    tmp_path: Path,
) -> None:
    store = FilesystemBlobStore.open(tmp_path)
    live = await _lead(store)
    await live.announce(len(DATA))
    await live.write(PIECES[0])
    await live.write(PIECES[1])
    other = Digest.of(b"other")
    abandoned = store.layout.fetch(other)
    abandoned.write_bytes(b"half")  # nobody holds it: a crash's
    store.layout.fetch_note(other).write_text("1 4")

    FilesystemBlobStore.open(tmp_path)  # another worker starts
    assert not abandoned.exists()
    assert store.layout.fetch(DIGEST).exists()
    assert store.layout.fetch_note(DIGEST).exists()
    await live.abort()
    assert list(store.layout.tmp.iterdir()) == []
