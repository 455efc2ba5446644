"""One fetch per blob across every process sharing a store directory, and its followers.

Each blob being fetched has one well-known temp file, ``tmp/fetch-<algorithm>-<hex>``.
Its writer (the leader) holds an exclusive ``flock`` on it for as long as it writes;
the kernel releases the lock when the process exits, however it exits. The leader
writes into the file only bytes a reader may have (``BlobWriter`` holds the newest chunk
back until the next one arrives or the digest checks out), so the file's size is always
what followers may read; it announces the size in a note beside the file
(``.size``, with the file's inode so that a note a dead leader left is never taken for
the live one), and commits by fsync and rename before it lets go of the lock.

A follower opens the same file and tails it (polling its size), up to the announced
size. The lock is tied to the file, not the name: a follower whose leader died finds the
lock of *its* file free and the blob not stored, and raises ``WriterGone``; a new leader
never writes into a file a dead one left (it removes it and starts a new one), so no
follower ever mixes the bytes of two writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
from collections.abc import AsyncIterator
from pathlib import Path

from imagegate.core.digests import Digest
from imagegate.proxy.interfaces import CHUNK_SIZE
from imagegate.storage import files
from imagegate.storage.interfaces import WriterClosed, WriterGone
from imagegate.storage.layout import FETCH_PREFIX, NOTE_SUFFIX, Layout
from imagegate.storage.partial import FilesystemPartialReader

POLL_SECONDS = 0.005  # a follower's wait for more bytes: a 1 MiB chunk at 200 MB/s


class Role(enum.Enum):
    LEAD = "lead"
    FOLLOW = "follow"
    STORED = "stored"


def take(layout: Layout, digest: Digest) -> tuple[Role, int]:
    """Lead the fetch of ``digest`` (a locked, empty file), follow the one in progress, or
    find it stored; with the open descriptor (-1 when stored). Blocking."""
    path, blob = layout.fetch(digest), layout.blob(digest)
    while True:
        if blob.exists():
            return Role.STORED, -1
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not files.try_lock(fd):
                return Role.FOLLOW, fd
            if not files.names_file(path, fd):  # committed or removed before we locked it
                os.close(fd)
                continue
            if blob.exists() or os.fstat(fd).st_size > 0:
                # Stored just now, or a dead leader's leftovers: followers of that one must
                # not read on into our bytes, so ours go in a new file.
                _remove(layout, digest)
                os.close(fd)
                continue
            layout.fetch_note(digest).unlink(missing_ok=True)  # a dead leader's
            return Role.LEAD, fd
        except BaseException:
            os.close(fd)
            raise


def _remove(layout: Layout, digest: Digest) -> None:
    layout.fetch(digest).unlink(missing_ok=True)
    layout.fetch_note(digest).unlink(missing_ok=True)


def release(layout: Layout, digest: Digest, fd: int) -> None:
    """Give up a lead taken but never used: remove its (empty) file, then unlock."""
    _remove(layout, digest)
    os.close(fd)


def write_note(layout: Layout, note: Path, fd: int, size: int | None) -> None:
    """Announce ``size`` to followers of the fetch file open as ``fd``. Blocking."""
    text = f"{os.fstat(fd).st_ino} {'-' if size is None else size}"
    files.write_note(layout.tmp, note, text.encode())


def _read_note(path: Path, inode: int) -> tuple[bool, int | None]:
    """(found, size) from the note, if it is the one of the file ``inode``."""
    text = files.read_text(path)
    if text is None:
        return False, None
    found, _, size = text.partition(" ")
    if found != str(inode):
        return False, None
    return True, None if size == "-" else int(size)


def remove_abandoned(layout: Layout) -> int:
    """Remove fetch files no process holds (a crash's leftovers) and notes without a
    file; how many files went. A live leader's file is locked and stays. Blocking."""
    removed = 0
    for name in files.list_names(layout.tmp):
        path = layout.tmp / name
        if not name.startswith(FETCH_PREFIX):
            continue
        if name.endswith(NOTE_SUFFIX):
            if not path.with_name(name.removesuffix(NOTE_SUFFIX)).exists():
                path.unlink(missing_ok=True)
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            if files.try_lock(fd) and files.names_file(path, fd):
                path.unlink()
                removed += 1
        finally:
            os.close(fd)
    return removed


class FilesystemForeignWrite:
    """Another process's fetch, followed through a descriptor on its file; see
    ``ForeignWrite``."""

    def __init__(self, layout: Layout, digest: Digest, fd: int) -> None:
        self._layout = layout
        self._digest = digest
        self._fd = fd
        self._inode = os.fstat(fd).st_ino
        self._size: int | None = None

    def _writing(self) -> bool:
        return files.lock_held(self._fd)

    def _stored(self) -> bool:
        return self._layout.blob(self._digest).exists()

    async def announced(self) -> int | None:
        note = self._layout.fetch_note(self._digest)
        while True:
            writing = self._writing()  # before the note: a note then missing is no news
            found, size = await asyncio.to_thread(_read_note, note, self._inode)
            if found:
                self._size = size
                return size
            if not writing:
                if not self._stored():
                    raise WriterGone(f"the fetch of {self._digest} ended unstored")
                stored = await asyncio.to_thread(os.stat, self._layout.blob(self._digest))
                self._size = stored.st_size
                return self._size
            await asyncio.sleep(POLL_SECONDS)

    async def chunks(self) -> AsyncIterator[bytes]:
        size = self._size
        if size is None:
            raise ValueError("chunks() of a write of unknown size")
        reader = await self.open_reader()
        offset = 0
        try:
            while offset < size:
                readable = os.fstat(self._fd).st_size
                if offset < readable:
                    chunk = await reader.read_at(offset, min(CHUNK_SIZE, readable - offset))
                    offset += len(chunk)
                    yield chunk
                    continue
                if self._writing():
                    await asyncio.sleep(POLL_SECONDS)
                    continue
                if os.fstat(self._fd).st_size > offset:  # its last bytes, then it let go
                    continue
                if not self._stored():
                    raise WriterGone(f"the fetch of {self._digest} broke off at {offset}")
                # Stored by another writer than the one followed (same digest, same bytes).
                reader.close()
                reader = await _open(self._layout.blob(self._digest))
                while offset < size:
                    chunk = await reader.read_at(offset, min(CHUNK_SIZE, size - offset))
                    if not chunk:
                        raise WriterGone(f"blob {self._digest} is stored shorter than {size}")
                    offset += len(chunk)
                    yield chunk
        finally:
            reader.close()

    async def open_reader(self) -> FilesystemPartialReader:
        if self._fd < 0:
            raise WriterClosed("no longer followed")
        return FilesystemPartialReader(await asyncio.to_thread(os.dup, self._fd))

    async def finished(self) -> bool:
        # Another process's lock: there is no event to wait on, and a thread blocked in
        # flock could not be cancelled.
        while self._writing():  # noqa: ASYNC110
            await asyncio.sleep(POLL_SECONDS)
        return self._stored()

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


async def _open(path: Path) -> FilesystemPartialReader:
    return FilesystemPartialReader(await asyncio.to_thread(os.open, path, os.O_RDONLY))
