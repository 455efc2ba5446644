"""One upstream fetch per uncached blob, streamed to every concurrent requester.

The first request for a blob starts a ``BlobFetch``: a background task that writes the
upstream body into the store, downloading the next chunk while the last one is written.
Every request for that blob (the first included) reads the growing file behind it,
through its own file handle, so N concurrent pulls cost one upstream GET and memory stays
at a chunk or two per reader. The newest chunk is held back from readers until another
one arrives after it or the digest checks out; a wrong or truncated body therefore makes
every reader raise before its response could complete, and the store keeps nothing.

Readers get the final chunk as soon as the digest checks out, while the blob is made
durable and visible (fsync, rename). If that fails, what readers got was still right (a
reader that had not opened the file yet gets the error instead); the store keeps nothing
and the next request fetches again.

The fetch runs on its own task, so a requester that goes away does not abort it: the
blob is still cached for the next pull.
"""

from __future__ import annotations

import asyncio
import copy
import logging
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
from imagegate.storage.interfaces import BlobStore, BlobWriter, PartialReader, WriterClosed

logger = logging.getLogger("imagegate.proxy.singleflight")


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


class BlobFetch:
    """One blob being fetched into the store, readable while it fills."""

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
        self.size: int | None = None
        self._store = store
        self._open_source = open_source
        self._on_done = on_done
        self._writer: BlobWriter | None = None
        self._readable = 0  # bytes readers may have: written, and not the newest chunk
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

    async def run(self) -> None:
        writer: BlobWriter | None = None
        error: RegistryError | None = None
        try:
            source = await self._open_source()
            try:
                self.size = source.size
                self._started.set()
                writer = self._writer = await self._store.create(self.digest.algorithm)
                await self._fill(source, writer)
            finally:
                source.close()
            await writer.verify(self.digest, self.size)
            self.size = self._readable = writer.written
            self._verified = True
            self._notify()
            await writer.commit(self.digest, self.size)
            self._committed = True
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
            if writer is not None and not self._committed:
                await asyncio.shield(writer.abort())
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

    async def _fill(self, source: BlobSource, writer: BlobWriter) -> None:
        """Write the body chunk by chunk, receiving the next chunk while one is written.

        At most one write is in flight and one chunk waits for it, so memory stays bounded.
        A written chunk becomes readable once a newer one has arrived: the last one waits
        for the digest.
        """
        writing: asyncio.Task[None] | None = None
        try:
            async for chunk in source.chunks():
                if writing is not None:
                    await writing
                    self._readable = writer.written
                    self._notify()
                writing = asyncio.create_task(writer.write(chunk))
            if writing is not None:
                await writing
        finally:
            if writing is not None:  # the body broke off mid-write: let the write end first
                if not writing.done():
                    await asyncio.wait([writing])
                if not writing.cancelled():
                    writing.exception()  # retrieved: a write error after a body error is moot

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
        """The whole blob, following the write; raises if the fetch fails before the digest
        checks out."""
        offset = 0
        reader: PartialReader | None = None
        try:
            while True:
                changed = self._changed  # taken before looking, so no change can slip by
                if not self._verified:
                    self._raise()
                if offset < self._readable:
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
                    length = min(CHUNK_SIZE, self._readable - offset)
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
        if self._writer is None:
            return None
        try:
            return await self._writer.open_reader()
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
