"""A blob fetch with a scripted source: when readers get bytes, and what the store keeps."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from imagegate.core.digests import Digest
from imagegate.core.errors import RegistryError, Unavailable, UpstreamError
from imagegate.proxy import singleflight
from imagegate.proxy.interfaces import CHUNK_SIZE
from imagegate.proxy.singleflight import BlobFetch, ChunkWindow, FlightGroup
from imagegate.storage import files
from imagegate.storage.blobs import FilesystemBlobStore
from imagegate.upstream.errors import UpstreamUnreachable
from tests.proxy.helpers import collect, repo
from tests.support.polling import eventually

DATA = os.urandom(3 * CHUNK_SIZE + 100)
DIGEST = Digest.of(DATA)


class ScriptedSource:
    """A body in ``CHUNK_SIZE`` pieces; with ``gate``, each piece waits for a permit."""

    def __init__(self, data: bytes, *, fail_at: int | None = None, gated: bool = False) -> None:
        self.data = data
        self.fail_at = fail_at  # raise instead of sending this piece
        self.gate = asyncio.Semaphore(0) if gated else None
        self.closed = False
        self.sent: list[bytes] = []  # every piece sent, the very objects

    @property
    def size(self) -> int | None:
        return len(self.data)

    async def chunks(self) -> AsyncIterator[bytes]:
        for index, offset in enumerate(range(0, len(self.data), CHUNK_SIZE)):
            if self.gate is not None:
                await self.gate.acquire()
            if index == self.fail_at:
                raise UpstreamUnreachable("upstream broke off a blob")
            self.sent.append(self.data[offset : offset + CHUNK_SIZE])
            yield self.sent[-1]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore.open(tmp_path)


async def _start(group: FlightGroup, source: ScriptedSource) -> BlobFetch:
    return group.start(DIGEST, repo("library/fetch"), _returning(source))


async def _done(fetch: BlobFetch) -> None:
    assert fetch.task is not None
    await asyncio.wait([fetch.task])


async def test_readers_get_the_final_chunk_before_the_blob_is_published(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    publish = files.publish

    def slow_publish(temporary: Path, destination: Path) -> None:
        assert release.wait(10)
        publish(temporary, destination)

    monkeypatch.setattr(files, "publish", slow_publish)
    group = FlightGroup(store)
    fetch = await _start(group, ScriptedSource(DATA))
    bodies = await asyncio.gather(collect(fetch.chunks()), collect(fetch.chunks()))
    assert list(bodies) == [DATA, DATA]
    assert await store.size(DIGEST) is None  # verified, sent, not yet durable
    assert group.get(DIGEST) is fetch  # a request now joins the fetch (no second GET)

    release.set()
    await fetch.finished()
    assert await store.size(DIGEST) == len(DATA)
    assert group.get(DIGEST) is None
    assert await collect(fetch.chunks()) == DATA  # a late reader reads the store


async def test_a_failed_publish_keeps_nothing_but_the_responses_were_right(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(temporary: Path, destination: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "publish", fail)
    group = FlightGroup(store)
    fetch = await _start(group, ScriptedSource(DATA))
    assert await collect(fetch.chunks()) == DATA
    await _done(fetch)
    with pytest.raises(UpstreamError, match="No space"):
        await fetch.finished()
    assert await store.size(DIGEST) is None
    assert list(store.layout.tmp.iterdir()) == []
    assert group.get(DIGEST) is None  # the next request fetches again
    with pytest.raises(UpstreamError):  # too late to read the unpublished bytes
        await collect(fetch.chunks())


async def test_the_newest_chunk_waits_for_the_next_one_or_the_digest(
    store: FilesystemBlobStore,
) -> None:
    source = ScriptedSource(DATA, gated=True)
    assert source.gate is not None
    fetch = await _start(FlightGroup(store), source)
    reader = fetch.chunks()
    first = asyncio.ensure_future(anext(reader))
    source.gate.release()  # piece 0 arrives and is written, but it is the newest
    await asyncio.sleep(0.1)
    assert not first.done()
    source.gate.release()  # piece 1 arrives: piece 0 is no longer the newest
    assert await asyncio.wait_for(first, 5) == DATA[:CHUNK_SIZE]
    for _ in range(3):
        source.gate.release()
    rest = await asyncio.wait_for(collect(reader), 5)
    assert DATA[:CHUNK_SIZE] + rest == DATA
    await fetch.finished()


async def test_a_body_that_breaks_off_ends_every_reader_and_keeps_nothing(
    store: FilesystemBlobStore,
) -> None:
    source = ScriptedSource(DATA, fail_at=3)
    group = FlightGroup(store)
    fetch = await _start(group, source)
    for _ in range(2):
        received = bytearray()
        with pytest.raises(RegistryError, match="broke off"):
            async for chunk in fetch.chunks():
                received += chunk
        assert len(received) < len(DATA)
    assert source.closed
    assert await store.size(DIGEST) is None
    assert list(store.layout.tmp.iterdir()) == []
    assert group.get(DIGEST) is None


async def test_wrong_bytes_are_never_released_whole(store: FilesystemBlobStore) -> None:
    wrong = DATA[:-1] + bytes([DATA[-1] ^ 0xFF])
    fetch = await _start(FlightGroup(store), ScriptedSource(wrong))
    received = bytearray()
    with pytest.raises(UpstreamError, match="wrong content"):
        async for chunk in fetch.chunks():
            received += chunk
    assert len(received) <= len(DATA) - (len(DATA) % CHUNK_SIZE)
    assert await store.size(DIGEST) is None
    assert list(store.layout.tmp.iterdir()) == []


async def test_closing_mid_fetch_ends_readers_and_leaves_no_temp_file(
    store: FilesystemBlobStore,
) -> None:
    source = ScriptedSource(DATA, gated=True)
    assert source.gate is not None
    group = FlightGroup(store)
    fetch = await _start(group, source)
    reader = asyncio.ensure_future(collect(fetch.chunks()))
    source.gate.release()
    source.gate.release()
    await asyncio.sleep(0.05)
    await group.close()
    with pytest.raises(Unavailable):
        await reader
    assert list(store.layout.tmp.iterdir()) == []
    assert await store.size(DIGEST) is None


async def test_closing_lets_a_verified_fetch_publish(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    publish = files.publish

    def slow_publish(temporary: Path, destination: Path) -> None:
        assert release.wait(10)
        publish(temporary, destination)

    monkeypatch.setattr(files, "publish", slow_publish)
    group = FlightGroup(store)
    fetch = await _start(group, ScriptedSource(DATA))
    assert await collect(fetch.chunks()) == DATA
    closing = asyncio.ensure_future(group.close())
    await asyncio.sleep(0.05)
    assert not closing.done()  # waiting for the publish, not cancelling it
    release.set()
    await asyncio.wait_for(closing, 5)
    await fetch.finished()
    assert await store.size(DIGEST) == len(DATA)


async def test_readers_at_the_upstreams_pace_get_its_chunks_from_memory(
    store: FilesystemBlobStore,
) -> None:
    """The very chunk objects the upstream gave: handed over, not written and read back."""
    source = ScriptedSource(DATA, gated=True)
    assert source.gate is not None
    fetch = await _start(FlightGroup(store), source)
    readers = [fetch.chunks() for _ in range(3)]
    received: list[list[bytes]] = [[] for _ in readers]
    for piece in range(len(DATA) // CHUNK_SIZE + 1):
        source.gate.release()
        if piece > 0:  # piece arrives: the one before it is released to every reader
            for reader, chunks in zip(readers, received, strict=True):
                chunks.append(await asyncio.wait_for(anext(reader), 5))
    for reader, chunks in zip(readers, received, strict=True):
        chunks.extend([chunk async for chunk in reader])
        assert all(got is sent for got, sent in zip(chunks, source.sent, strict=True))
    await fetch.finished()


async def test_a_reader_left_behind_the_window_reads_the_file(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(singleflight, "WINDOW_BYTES", CHUNK_SIZE)
    data = os.urandom(6 * CHUNK_SIZE + 100)
    source = ScriptedSource(data, gated=True)
    assert source.gate is not None
    group = FlightGroup(store)
    fetch = group.start(Digest.of(data), repo("library/fetch"), _returning(source))
    ahead = fetch.chunks()
    for piece in range(5):  # pieces 0-4 arrive, 0-3 are released; the window moved past 0
        source.gate.release()
        if piece > 0:
            await asyncio.wait_for(anext(ahead), 5)
    late = fetch.chunks()
    assert await asyncio.wait_for(anext(late), 5) == data[:CHUNK_SIZE]  # from the file
    for _ in range(3):
        source.gate.release()
    assert data[:CHUNK_SIZE] + await collect(late) == data
    await fetch.finished()


def _returning(source: ScriptedSource) -> Callable[[], Awaitable[ScriptedSource]]:
    async def open_source() -> ScriptedSource:
        return source

    return open_source


@pytest.mark.parametrize(
    ("added", "on_file", "kept"),
    [
        ([4, 4, 4], 12, [4, 8]),  # over the limit: the oldest go
        ([4, 4, 4], 3, [0, 4, 8]),  # not on file yet: kept, whatever the limit
        ([4, 4], 0, [0, 4]),  # at the limit
        ([20, 1], 21, [20]),  # a chunk larger than the limit goes once a newer one came
    ],
)
def test_the_window_keeps_recent_chunks_within_its_limit(
    added: list[int], on_file: int, kept: list[int]
) -> None:
    window = ChunkWindow(8)
    starts, offset = [], 0
    for number, length in enumerate(added):
        window.add(offset, bytes([number]) * length, on_file)
        starts.append(offset)
        offset += length
    assert [start for start in starts if window.get(start) is not None] == kept
    assert window.get(offset) is None  # not released yet
    newest = len(added) - 1
    assert window.get(starts[newest]) == bytes([newest]) * added[newest]
    assert window.get(offset - 1) == bytes([newest])  # from within a chunk: its rest


async def test_a_follower_on_the_same_directory_streams_behind_the_leader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two stores on one directory stand for two workers (an flock is held per open
    file); the follower's own readers share its window, and one left behind it reads the
    leader's file, or the stored blob once the fetch is over."""
    monkeypatch.setattr(singleflight, "WINDOW_BYTES", CHUNK_SIZE)
    source = ScriptedSource(DATA, gated=True)
    assert source.gate is not None
    leader = await _start(FlightGroup(FilesystemBlobStore.open(tmp_path)), source)
    source.gate.release()
    assert await leader.started() == len(DATA)

    unused = ScriptedSource(b"")
    follower = await _start(FlightGroup(FilesystemBlobStore.open(tmp_path)), unused)
    late, later = follower.chunks(), follower.chunks()
    source.gate.release()
    assert await follower.started() == len(DATA)
    assert await asyncio.wait_for(anext(late), 5) == DATA[:CHUNK_SIZE]  # before the end
    for _ in range(3):
        source.gate.release()
    assert await collect(follower.chunks()) == DATA  # ahead of ``late``: from memory
    assert DATA[:CHUNK_SIZE] + await collect(late) == DATA  # behind: the leader's file
    await leader.finished()
    await follower.finished()
    assert follower.following and unused.sent == []  # it never asked the upstream
    assert await collect(later) == DATA  # after the fetch: from the store


async def test_a_follower_whose_leader_fails_before_any_byte_leads_itself(
    tmp_path: Path,
) -> None:
    asked, refuse = asyncio.Event(), asyncio.Event()

    async def failing_upstream() -> ScriptedSource:
        asked.set()  # the claim is taken: the upstream is asked after it
        await refuse.wait()
        raise UpstreamUnreachable("upstream went away")

    leader = FlightGroup(FilesystemBlobStore.open(tmp_path)).start(
        DIGEST, repo("library/fetch"), failing_upstream
    )
    await asyncio.wait_for(asked.wait(), 5)
    source = ScriptedSource(DATA)
    follower = await _start(FlightGroup(FilesystemBlobStore.open(tmp_path)), source)
    await eventually(lambda: follower.following)  # it waits behind the leader
    refuse.set()
    with pytest.raises(RegistryError, match="went away"):
        await leader.finished()
    assert await collect(follower.chunks()) == DATA  # it asked the upstream itself
    await follower.finished()
    assert not follower.following and source.sent
