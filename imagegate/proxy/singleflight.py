"""One upstream fetch per uncached blob, streamed to every concurrent requester, in
every worker process sharing the store.

The first request for a blob in a process starts a ``BlobFetch``: a background task
that claims the blob in the store (``BlobStore.claim``). The claim makes it the leader,
which fetches from the upstream, or a follower of the leader in another process, which
tails the leader's file; either way, every request in the process for that blob (the
first included) streams behind the one task, so N concurrent pulls on any number of
workers cost one upstream GET.

Chunks reach readers from memory: the task hands each chunk to a bounded window that
every reader of the process takes it from, while the chunk is hashed and written (the
leader) or as soon as it is read (a follower). A reader that falls behind the window
reads the file through a handle of its own, so memory stays at the window whatever the
readers' pace. The newest chunk is held back from readers until another one arrives
after it or the digest checks out; a wrong or truncated body therefore makes every
reader raise before its response could complete, and the store keeps nothing. The
store's writer keeps the same rule for the file, which is what followers read.

Readers get the final chunk as soon as the digest checks out, while the blob is made
durable and visible (fsync, rename). If that fails, what readers got was still right (a
reader that had not opened the file yet gets the error instead); the store keeps nothing
and the next request fetches again.

A follower whose leader dies or fails (``WriterGone``) becomes the leader itself if it
has handed out no byte yet; once it has, its readers fail with a registry error (their
clients retry, and the retry leads afresh).

The fetch runs on its own task, so a requester that goes away does not abort it: the
blob is still cached for the next pull.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from imagegate.core.digests import Digest
from imagegate.core.errors import (
    DigestInvalid,
    RegistryError,
    SizeInvalid,
    Unavailable,
    UpstreamError,
)
from imagegate.core.names import RepositoryName
from imagegate.proxy.interfaces import CHUNK_SIZE
from imagegate.storage.interfaces import (
    BlobStore,
    BlobWriter,
    ForeignWrite,
    Leading,
    PartialReader,
    Stored,
    WriterClosed,
    WriterGone,
)

logger = logging.getLogger("imagegate.proxy.singleflight")

# Chunks kept in memory per blob for readers of this process: a reader further behind
# reads the file. 8 MiB is 80 ms at 100 MB/s, enough for readers at the network's pace.
WINDOW_BYTES = 8 * CHUNK_SIZE
CLAIM_ATTEMPTS = 3  # a follower whose leader dies before any byte leads, or follows anew


class BlobSource(Protocol):
    """A blob body being received (from the upstream)."""

    @property
    def size(self) -> int | None:
        """The announced size, if any."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body in pieces; raises if it breaks off."""
        ...

    def close(self) -> None:
        """Stop receiving."""
        ...


class ChunkWindow:
    """The newest released chunks of a blob, shared by every reader of the process.

    It keeps ``limit`` bytes at most, except chunks not yet on file: a reader that asks
    for anything older reads the file instead.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: deque[tuple[int, bytes]] = deque()  # (offset, chunk), oldest first
        self._bytes = 0

    def add(self, offset: int, chunk: bytes, on_file: int) -> None:
        """Keep ``chunk`` (at ``offset``); drop the oldest ones within the first ``on_file``
        bytes while over the limit."""
        self._chunks.append((offset, chunk))
        self._bytes += len(chunk)
        while self._bytes > self._limit and len(self._chunks) > 1:
            first, oldest = self._chunks[0]
            if first + len(oldest) > on_file:
                break
            self._chunks.popleft()
            self._bytes -= len(oldest)

    def get(self, offset: int) -> bytes | None:
        """The bytes from ``offset`` to the end of the chunk holding it, if kept."""
        for first, chunk in reversed(self._chunks):  # readers are mostly at the newest
            if first <= offset < first + len(chunk):
                return chunk if first == offset else chunk[offset - first :]
            if first < offset:
                return None
        return None


class BlobFetch:
    """One blob being fetched into the store (or followed), readable while it fills."""

    def __init__(
        self,
        digest: Digest,
        repository: RepositoryName,
        store: BlobStore,
        open_source: Callable[[], Awaitable[BlobSource]],
        on_done: Callable[[BlobFetch], None] = lambda _: None,
    ) -> None:
        self.digest = digest
        self.repository = repository  # the repository the upstream serves it for
        self.following = False  # another process fetches it: the repository is unknown
        self.size: int | None = None
        self._store = store
        self._open_source = open_source
        self._on_done = on_done
        self._window = ChunkWindow(WINDOW_BYTES)
        self._open_file: Callable[[], Awaitable[PartialReader]] | None = None
        self._on_file = 0  # bytes a reader behind the window can read from the file
        self._readable = 0  # bytes readers may have: not the newest chunk, until verified
        self._verified = False  # the digest checked out: readers may have every byte
        self._committed = False  # and the blob is in the store
        self._error: RegistryError | None = None
        self._started = asyncio.Event()  # the upstream answered (or failed)
        self._done = asyncio.Event()
        self._changed = asyncio.Event()  # replaced on every change; readers wait on it
        self.task: asyncio.Task[None] | None = None

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _release(self, chunk: bytes) -> None:
        self._window.add(self._readable, chunk, self._on_file)
        self._readable += len(chunk)
        self._notify()

    async def run(self) -> None:
        error: RegistryError | None = None
        try:
            await self._claim()
        except asyncio.CancelledError:
            error = Unavailable("the gateway is shutting down")
            raise
        except (DigestInvalid, SizeInvalid) as exc:
            error = UpstreamError(
                f"upstream sent wrong content for blob {self.digest}: {exc.message}"
            )
        except RegistryError as exc:
            error = exc
        except Exception as exc:  # a failure of ours (disk full...): readers must still end
            logger.exception("blob fetch failed", extra={"digest": str(self.digest)})
            error = UpstreamError(f"fetching blob {self.digest} failed: {exc}")
        finally:
            # Readers hear of a failure only once the temp file is gone and this fetch is
            # forgotten, so a request that follows starts afresh instead of joining it.
            self._on_done(self)
            self._error = error
            if error is not None:
                logger.warning(
                    "blob fetch failed: %s",
                    error.message,
                    extra={"digest": str(self.digest), "repository": str(self.repository)},
                )
            self._started.set()
            self._done.set()
            self._notify()

    async def _claim(self) -> None:
        """Lead, follow, or find the blob stored; lead when a followed fetch ends before
        this one handed out a byte."""
        for _ in range(CLAIM_ATTEMPTS):
            claim = await self._store.claim(self.digest)
            if isinstance(claim, Leading):
                self.following = False
                await self._lead(claim.writer)
                return
            self.following = True
            if isinstance(claim, Stored):
                self.size = self._readable = self._on_file = await self._stored_size()
                self._verified = self._committed = True
                return
            try:
                await self._follow(claim.write)
                return
            except WriterGone as exc:
                if self._readable > 0:
                    raise Unavailable(
                        f"the worker fetching blob {self.digest} stopped; try again"
                    ) from exc
        raise Unavailable(f"blob {self.digest}: every fetch of it stopped; try again")

    async def _stored_size(self) -> int:
        size = await self._store.size(self.digest)
        if size is None:  # removed meanwhile; never expected of a cache
            raise UpstreamError(f"blob {self.digest} vanished from the cache")
        return size

    async def _lead(self, writer: BlobWriter) -> None:
        self._open_file = writer.open_reader
        committed = False
        try:
            source = await self._open_source()
            try:
                self.size = source.size
                await writer.announce(self.size)
                self._started.set()
                last = await self._fill(source, writer)
            finally:
                source.close()
            await writer.verify(self.digest, self.size)
            self._on_file = writer.written
            if last is not None:
                self._release(last)
            self.size = self._readable
            self._verified = True
            self._notify()
            await writer.commit(self.digest, self.size)
            committed = self._committed = True
        finally:
            if not committed:
                await asyncio.shield(writer.abort())

    async def _fill(self, source: BlobSource, writer: BlobWriter) -> bytes | None:
        """Hand each chunk to readers once the next one arrived, and write it; return the
        last chunk, which waits for the digest.

        At most one write is in flight (the writer hashes a chunk as it comes, and puts
        the one before in the file), and the next chunk is received meanwhile.
        """
        writing: asyncio.Task[None] | None = None
        newest: bytes | None = None
        received = 0
        try:
            async for chunk in source.chunks():
                if not chunk:
                    continue
                received += len(chunk)
                if self.size is not None and received > self.size:
                    raise UpstreamError(
                        f"upstream sent more than the {self.size} bytes it announced "
                        f"for blob {self.digest}"
                    )
                if newest is not None:
                    self._release(newest)
                newest = chunk
                if writing is not None:
                    await writing
                    self._on_file = writer.written
                writing = asyncio.create_task(writer.write(chunk))
            if writing is not None:
                await writing
            return newest
        finally:
            if writing is not None:  # the body broke off mid-write: let the write end first
                if not writing.done():
                    await asyncio.wait([writing])
                if not writing.cancelled():
                    writing.exception()  # retrieved: a write error after a body error is moot

    async def _follow(self, write: ForeignWrite) -> None:
        try:
            self.size = await write.announced()
            self._started.set()
            if self.size is not None:
                self._open_file = write.open_reader
                async for chunk in write.chunks():
                    self._on_file += len(chunk)
                    self._release(chunk)
                self._verified = True
                self._notify()
            if not await write.finished():
                if not self._verified:
                    raise WriterGone(f"the fetch of {self.digest} ended unstored")
                raise UpstreamError(f"blob {self.digest} was fetched but could not be stored")
            self._committed = True
        finally:
            write.close()

    @property
    def verified(self) -> bool:
        """The digest checked out: readers may have every byte; publishing may go on."""
        return self._verified

    def _raise(self) -> None:
        if self._error is not None:
            # A copy per reader: one exception object raised in many tasks would pile up
            # their tracebacks.
            raise copy.copy(self._error) from self._error

    async def started(self) -> int | None:
        """Wait until the upstream answered; its announced size, or raise its refusal."""
        await self._started.wait()
        if self.size is None:
            self._raise()
        return self.size

    async def finished(self) -> None:
        """Wait until the blob is committed to the store, or raise why it was not."""
        await self._done.wait()
        self._raise()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The whole blob, following the fetch; raises if the fetch fails before the digest
        checks out."""
        if self._done.is_set():  # too late for a failed fetch's bytes, even verified ones
            self._raise()
        offset = 0
        reader: PartialReader | None = None
        try:
            while True:
                changed = self._changed  # taken before looking, so no change can slip by
                if not self._verified:
                    self._raise()
                if offset < self._readable:
                    chunk = self._window.get(offset)
                    if chunk is None:  # behind the window: from the file
                        if reader is None:
                            reader = await self._open_reader()
                        if reader is None:  # the temp file is gone: stored, or failed
                            if self._committed:
                                async for chunk in self._store.read(self.digest, offset):
                                    yield chunk
                                return
                            self._raise()
                            await changed.wait()
                            continue
                        length = min(CHUNK_SIZE, self._on_file - offset)
                        chunk = await reader.read_at(offset, length)
                        if not chunk:
                            raise UpstreamError(f"blob {self.digest} was cut short in the cache")
                    offset += len(chunk)
                    yield chunk
                    continue
                if self._verified:
                    return
                await changed.wait()
        finally:
            if reader is not None:
                reader.close()

    async def _open_reader(self) -> PartialReader | None:
        if self._open_file is None:
            return None
        try:
            return await self._open_file()
        except WriterClosed:
            return None


class FlightGroup:
    """The blob fetches in progress, by digest."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self._flights: dict[Digest, BlobFetch] = {}

    def get(self, digest: Digest) -> BlobFetch | None:
        return self._flights.get(digest)

    def start(
        self,
        digest: Digest,
        repository: RepositoryName,
        open_source: Callable[[], Awaitable[BlobSource]],
    ) -> BlobFetch:
        """Start fetching ``digest``; registered before any await, so there is only one."""
        fetch = BlobFetch(digest, repository, self._store, open_source, self._forget)
        self._flights[digest] = fetch
        fetch.task = asyncio.create_task(fetch.run(), name=f"fetch {digest}")
        return fetch

    def _forget(self, fetch: BlobFetch) -> None:
        if self._flights.get(fetch.digest) is fetch:
            del self._flights[fetch.digest]

    async def close(self) -> None:
        """Cancel every fetch in progress (their readers raise ``Unavailable``), but let a
        verified one finish publishing: its readers have had every byte."""
        tasks = [fetch.task for fetch in self._flights.values() if fetch.task is not None]
        for fetch in self._flights.values():
            if fetch.task is not None and not fetch.verified:
                fetch.task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
