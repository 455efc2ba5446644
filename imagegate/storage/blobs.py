"""Blobs on a local filesystem: verified, fsync'd and renamed into place, read in chunks.

A write goes to ``tmp/`` on the same filesystem and becomes visible only by an atomic
rename after its digest (and size) check out, so a reader never sees a partial blob and
a crash leaves at most a temp file, removed at the next start (``FilesystemBlobStore.open``).
Readers that follow a write hold their own descriptor on the temp file.
All disk I/O runs in worker threads, one chunk (``CHUNK_SIZE``) per hop.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from imagegate.core.digests import Digest, Hasher
from imagegate.core.errors import BlobUnknown, DigestInvalid, SizeInvalid
from imagegate.proxy.interfaces import CHUNK_SIZE
from imagegate.storage import files
from imagegate.storage.interfaces import WriterClosed
from imagegate.storage.layout import Layout

STALE_TEMP_SECONDS = 600.0


class _State(enum.Enum):
    OPEN = "open"
    VERIFIED = "verified"
    COMMITTED = "committed"
    ABORTED = "aborted"


_READABLE = (_State.OPEN, _State.VERIFIED)


def _write_all(fd: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]


class FilesystemPartialReader:
    """A reader's own descriptor on a temp file; see ``PartialReader``.

    A descriptor, unlike the name, survives the rename of a commit and the unlink of an
    abort: the reader goes on reading the same bytes. One per reader, opened once.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._busy: asyncio.Future[bytes] | None = None  # the read in a worker thread

    async def read_at(self, offset: int, length: int) -> bytes:
        if self._fd < 0:
            raise ValueError("read from a closed reader")
        loop = asyncio.get_running_loop()
        self._busy = loop.run_in_executor(None, os.pread, self._fd, length, offset)
        return await asyncio.shield(self._busy)  # see close

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        if self._busy is not None and not self._busy.done():
            # A cancelled reader's pread is still running: close only after it, or the
            # number could be reused under it.
            self._busy.add_done_callback(lambda _: os.close(fd))
        else:
            os.close(fd)


class FilesystemBlobWriter:
    """One blob being written to a temp file; see ``BlobWriter``."""

    def __init__(self, layout: Layout, path: Path, fd: int, algorithm: str) -> None:
        self._layout = layout
        self._path = path
        self._fd = fd
        self._hasher = Hasher(algorithm)
        self._state = _State.OPEN
        self._busy: list[asyncio.Future[None]] = []  # the write and hash in worker threads

    @property
    def written(self) -> int:
        return self._hasher.size

    async def write(self, chunk: bytes) -> None:
        if self._state is not _State.OPEN:
            raise WriterClosed(f"write after {self._state.value}")
        if not all(future.done() for future in self._busy):
            raise RuntimeError("a write is still in progress")
        loop = asyncio.get_running_loop()
        # Writing and hashing both release the GIL: two threads, in parallel.
        self._busy = [
            loop.run_in_executor(None, _write_all, self._fd, chunk),
            loop.run_in_executor(None, self._hasher.update, chunk),
        ]
        # Shielded: a cancelled caller leaves the threads running, and ``_busy`` tells
        # ``_settle`` when it is safe to close the descriptor or read the hash.
        await asyncio.shield(asyncio.gather(*self._busy))

    async def _settle(self) -> None:
        """Wait for a write whose caller was cancelled: it uses the descriptor and hasher."""
        if self._busy:
            await asyncio.wait(self._busy)

    async def open_reader(self) -> FilesystemPartialReader:
        if self._state not in _READABLE:
            raise WriterClosed(self._state.value)
        try:
            fd = await asyncio.to_thread(os.open, self._path, os.O_RDONLY)
        except FileNotFoundError:  # committed or aborted meanwhile
            raise WriterClosed(self._state.value) from None
        return FilesystemPartialReader(fd)

    async def verify(self, digest: Digest, size: int | None = None) -> None:
        if self._state not in _READABLE:
            raise WriterClosed(f"verify after {self._state.value}")
        await self._settle()
        actual = self._hasher.digest()
        if actual != digest:
            await self.abort()
            raise DigestInvalid(
                f"content does not match digest {digest}: got {actual}",
                detail={"expected": str(digest), "actual": str(actual)},
            )
        if size is not None and size != self.written:
            await self.abort()
            raise SizeInvalid(
                f"content of {digest} is {self.written} bytes, expected {size}",
                detail={"digest": str(digest), "size": self.written, "expected": size},
            )
        self._state = _State.VERIFIED

    async def commit(self, digest: Digest, size: int | None = None) -> None:
        await self.verify(digest, size)  # again after ``verify``: cheap, and the same answer
        self._state = _State.COMMITTED
        try:
            await asyncio.to_thread(self._publish, self._layout.blob(digest))
        except Exception:
            self._state = _State.ABORTED  # _publish removed the temp file
            raise

    def _publish(self, destination: Path) -> None:
        try:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
            if destination.exists():  # same digest, same bytes: keep what is there
                self._path.unlink(missing_ok=True)
                return
            files.publish(self._path, destination)
        except BaseException:
            self._path.unlink(missing_ok=True)
            raise

    async def abort(self) -> None:
        if self._state not in _READABLE:
            return
        self._state = _State.ABORTED
        await self._settle()
        await asyncio.to_thread(self._discard)

    def _discard(self) -> None:
        os.close(self._fd)
        self._path.unlink(missing_ok=True)


class FilesystemBlobStore:
    """Content-addressed blobs under ``root`` (see ``layout`` for the tree)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    @classmethod
    def open(
        cls, root: Path, stale_after_seconds: float = STALE_TEMP_SECONDS
    ) -> FilesystemBlobStore:
        """Create the tree if needed and remove temp files a crash left behind (blocking;
        call at startup)."""
        layout = Layout(root)
        for directory in (layout.blobs, layout.repositories, layout.tmp):
            directory.mkdir(parents=True, exist_ok=True)
        files.remove_stale(layout.tmp, stale_after_seconds)
        return cls(layout)

    async def size(self, digest: Digest) -> int | None:
        try:
            stat = await asyncio.to_thread(os.stat, self.layout.blob(digest))
        except FileNotFoundError:
            return None
        return stat.st_size

    async def read(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        try:
            fd = await asyncio.to_thread(os.open, self.layout.blob(digest), os.O_RDONLY)
        except FileNotFoundError:
            raise BlobUnknown(
                f"blob {digest} is not stored", detail={"digest": str(digest)}
            ) from None
        try:
            if end is None:
                end = os.fstat(fd).st_size - 1
            offset = start
            while offset <= end:
                chunk = await asyncio.to_thread(
                    os.pread, fd, min(CHUNK_SIZE, end - offset + 1), offset
                )
                if not chunk:
                    break
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def open_file(self, digest: Digest) -> BinaryIO:
        try:
            return await asyncio.to_thread(open, self.layout.blob(digest), "rb", buffering=0)
        except FileNotFoundError:
            raise BlobUnknown(
                f"blob {digest} is not stored", detail={"digest": str(digest)}
            ) from None

    async def read_bytes(self, digest: Digest, limit: int) -> bytes | None:
        return await asyncio.to_thread(self._read_small, self.layout.blob(digest), limit)

    @staticmethod
    def _read_small(path: Path, limit: int) -> bytes | None:
        try:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
        except FileNotFoundError:
            return None
        if len(data) > limit:
            raise SizeInvalid(f"{path.name} is larger than {limit} bytes")
        return data

    async def create(self, algorithm: str = "sha256") -> FilesystemBlobWriter:
        path = files.temporary_path(self.layout.tmp)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        fd = await asyncio.to_thread(os.open, path, flags, 0o600)  # private, whatever the umask
        return FilesystemBlobWriter(self.layout, path, fd, algorithm)

    async def writable(self) -> bool:
        try:
            await asyncio.to_thread(files.probe_writable, self.layout.tmp)
        except OSError:
            return False
        return True
