"""Blob upload sessions: chunks appended to a file, published by a rename once verified.

A session is a directory ``hosted/uploads/<id>/`` (see ``layout``) rather than a temp file
of the blob store, because it must outlive a dropped connection and a restart: the bytes
received so far are written and fsync'd before a PATCH answers, and even when its body
breaks off midway, so the status reports them and the client resumes from there. The hash
is kept incrementally while this process owns the session; after a restart, a write
that failed halfway, or a request on the session served by another worker process, the
file is hashed again from disk at the final PUT.

Memory stays flat: bodies are cut into ``CHUNK_SIZE`` pieces, each written (and hashed)
in a worker thread. A PATCH or PUT may land on any worker process, so requests on a
session take turns across processes: an in-memory lock orders this process's, and
``flock`` on the session's ``lock`` file orders them among processes. Whoever held the
session last leaves a random mark in that file; a holder that finds another mark than
the one it left knows another process wrote since, and takes the offset from disk and
drops its hash (``_catch_up``). The status of a session is the size of its file.

One writer must not be able to block every push, so sessions are bounded in all
(``max_uploads``), per user (``max_per_user``) and per repository (``max_per_repository``),
and expire after ``ttl_seconds`` without a write (purged when the registry starts, by a
rescan at most every ``rescan_seconds`` when a bound is reached, and lazily). Their bytes
count against the organization's storage quota: an upload that outgrows what the quota
leaves is dropped as soon as it does, and a finished one is counted (``StorageLedger``)
before it is published; a refused one leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from imagegate.core.digests import Digest
from imagegate.core.errors import (
    BlobUploadUnknown,
    Denied,
    DigestInvalid,
    RangeInvalid,
    SizeInvalid,
    TooManyRequests,
)
from imagegate.core.names import RepositoryName, parse_repository
from imagegate.core.quota import StorageUsage, over_quota
from imagegate.hosted.interfaces import StorageLedger, Unmetered, UploadStatus
from imagegate.hosted.layout import HostedLayout
from imagegate.hosted.locking import GcLock, acquire
from imagegate.hosted.metadata import HostedMetadata, touch
from imagegate.proxy.interfaces import CHUNK_SIZE
from imagegate.storage import files

if TYPE_CHECKING:
    from hashlib import _Hash

MAX_UPLOADS = 1000
MAX_UPLOADS_PER_USER = 50  # docker pushes 5 layers at once, skopeo 6: ten parallel pushes
MAX_UPLOADS_PER_REPOSITORY = 100
# Idle: no byte received. A client resumes a broken upload within seconds or minutes.
UPLOAD_TTL_SECONDS = 15 * 60.0
RESCAN_SECONDS = 5.0
ALGORITHMS = ("sha256", "sha512")
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class _Opened:
    """Who holds a session open, for the bounds."""

    repository: str
    owner: str


@dataclass
class _Session:
    upload_id: str
    repository: RepositoryName
    owner: str  # the user who started it ("" for one of an older version)
    algorithm: str
    directory: Path
    offset: int  # bytes written to ``data``; only changed by the worker thread that wrote
    hash: _Hash | None  # of exactly ``offset`` bytes, or None: hash the file again
    touched: float
    mark: bytes = b""  # what this process left in the lock file when it last held it
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    busy: asyncio.Future[None] | None = None  # a write whose caller was cancelled

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def lock_file(self) -> Path:
        return self.directory / "lock"

    def status(self) -> UploadStatus:
        return UploadStatus(self.upload_id, self.repository, self.offset)

    @property
    def opened(self) -> _Opened:
        return _Opened(self.repository.full, self.owner)

    async def settle(self) -> None:
        if self.busy is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait([self.busy])
            self.busy = None


def _write_piece(session: _Session, piece: bytes, sync: bool) -> None:
    """Append ``piece`` at the session's offset (worker thread); keeps offset and hash true."""
    try:
        fd = os.open(session.data, os.O_WRONLY)
        try:
            view, position = memoryview(piece), session.offset
            while view:
                written = os.pwrite(fd, view, position)
                view, position = view[written:], position + written
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        session.hash = None  # part of the piece may be on disk: re-hash it at the end
        session.offset = os.stat(session.data).st_size
        raise
    if session.hash is not None:
        session.hash.update(piece)
    session.offset += len(piece)


def _held(directory: str) -> bool:
    """Whether a request in another process holds the session in ``directory``."""
    try:
        fd = os.open(Path(directory) / "lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _new_mark() -> bytes:
    return secrets.token_bytes(16)


def _hash_file(path: Path, algorithm: str) -> _Hash:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while piece := handle.read(CHUNK_SIZE):
            hasher.update(piece)
    return hasher


def _read_info(directory: Path) -> tuple[_Opened, str]:
    """Who holds the session in ``directory`` and its hash algorithm; blocking."""
    info = json.loads((directory / "info").read_text())
    opened = _Opened(str(info["repository"]), str(info.get("by", "")))
    return opened, str(info["algorithm"])


def _unknown(upload_id: str) -> BlobUploadUnknown:
    return BlobUploadUnknown(
        f"upload {upload_id} is unknown: it finished, was cancelled or expired; "
        "start a new upload with POST /v2/<name>/blobs/uploads/",
        detail={"upload_id": upload_id},
    )


class UploadSessions:
    def __init__(
        self,
        layout: HostedLayout,
        metadata: HostedMetadata,
        gc_lock: GcLock,
        *,
        ledger: StorageLedger | None = None,
        max_uploads: int = MAX_UPLOADS,
        max_per_user: int = MAX_UPLOADS_PER_USER,
        max_per_repository: int = MAX_UPLOADS_PER_REPOSITORY,
        ttl_seconds: float = UPLOAD_TTL_SECONDS,
        rescan_seconds: float = RESCAN_SECONDS,
    ) -> None:
        self._layout = layout
        self._metadata = metadata
        self._gc_lock = gc_lock
        self._ledger = ledger or Unmetered()
        self.max_uploads = max_uploads
        self.max_per_user = max_per_user
        self.max_per_repository = max_per_repository
        self.ttl_seconds = ttl_seconds
        self.rescan_seconds = rescan_seconds
        self._sessions: dict[str, _Session] = {}  # the ones this process has touched
        self._open: dict[str, _Opened] | None = None  # every session on disk, once scanned
        self._scanned = 0.0
        self._start_lock = asyncio.Lock()

    def purge_expired(self) -> dict[str, _Opened]:
        """Remove expired and broken sessions; who holds the ones left. Blocking (startup,
        or a thread)."""
        cutoff = time.time() - self.ttl_seconds
        alive: dict[str, _Opened] = {}
        try:
            entries = list(os.scandir(self._layout.uploads))
        except FileNotFoundError:
            return alive
        for entry in entries:
            session = self._sessions.get(entry.name)
            if session is not None and session.lock.locked():
                alive[entry.name] = session.opened  # in use right now
                continue
            opened = None
            try:
                if os.stat(Path(entry.path) / "data").st_mtime >= cutoff or _held(entry.path):
                    opened = _read_info(Path(entry.path))[0]
            except (OSError, ValueError, KeyError, TypeError):
                pass
            if opened is not None and _ID.fullmatch(entry.name):
                alive[entry.name] = opened
            else:
                shutil.rmtree(entry.path, ignore_errors=True)
                self._sessions.pop(entry.name, None)
        return alive

    def _bound(self, opened: _Opened) -> TooManyRequests | None:
        """The bound a new session held by ``opened`` would break, if any."""
        assert self._open is not None
        held = self._open.values()
        idle = f"idle uploads expire after {self.ttl_seconds / 60:g} minutes"
        if len(self._open) >= self.max_uploads:
            return TooManyRequests(
                f"too many blob uploads in progress ({self.max_uploads}): finish or cancel "
                f"some, or retry later ({idle})",
                detail={"max_uploads": self.max_uploads},
            )
        if sum(1 for other in held if other.owner == opened.owner) >= self.max_per_user:
            return TooManyRequests(
                f"{opened.owner or 'you'} has {self.max_per_user} blob uploads in progress, "
                f"as many as one user may: finish or cancel some, or retry later ({idle})",
                detail={"max_uploads_per_user": self.max_per_user},
            )
        if sum(1 for o in held if o.repository == opened.repository) >= self.max_per_repository:
            return TooManyRequests(
                f"{opened.repository} has {self.max_per_repository} blob uploads in progress, "
                f"as many as one repository may: finish or cancel some, or retry later ({idle})",
                detail={"max_uploads_per_repository": self.max_per_repository},
            )
        return None

    async def start(
        self, repository: RepositoryName, algorithm: str = "sha256", *, by: str = ""
    ) -> UploadStatus:
        if algorithm not in ALGORITHMS:
            raise DigestInvalid(
                f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512",
                detail={"algorithm": algorithm},
            )
        usage = await self._ledger.usage(repository.namespace)
        if usage.quota is not None and usage.used >= usage.quota:
            raise over_quota(usage)
        opened = _Opened(repository.full, by)
        async with self._start_lock:
            since = time.time() - self._scanned
            if (
                self._open is None
                or since > min(self.ttl_seconds, 3600)
                # At a bound, look again for expired sessions (and other processes'), but
                # not on every attempt: a scan reads every session, under this lock.
                or (self._bound(opened) is not None and since > self.rescan_seconds)
            ):
                self._open = await asyncio.to_thread(self.purge_expired)
                self._scanned = time.time()
            refused = self._bound(opened)
            if refused is not None:
                raise refused
            upload_id = secrets.token_hex(16)
            directory = self._layout.upload(upload_id)
            info = json.dumps({"repository": repository.full, "algorithm": algorithm, "by": by})
            mark = _new_mark()

            def create() -> None:
                directory.mkdir(parents=True)
                (directory / "data").touch()
                (directory / "lock").write_bytes(mark)
                files.write_atomic(self._layout.store.tmp, directory / "info", info.encode())

            await asyncio.to_thread(create)
            self._open[upload_id] = opened
        session = _Session(
            upload_id,
            repository,
            by,
            algorithm,
            directory,
            0,
            hashlib.new(algorithm),
            time.time(),
            mark,
        )
        self._sessions[upload_id] = session
        return session.status()

    async def _get(self, repository: RepositoryName, upload_id: str) -> _Session:
        if _ID.fullmatch(upload_id) is None:
            raise _unknown(upload_id)
        session = self._sessions.get(upload_id)
        if session is None:
            session = await asyncio.to_thread(self._load, upload_id)
            if session is None:
                raise _unknown(upload_id)
            session = self._sessions.setdefault(upload_id, session)
        if session.repository != repository:
            raise _unknown(upload_id)
        try:
            # Another worker may have written to it since, or finished it.
            session.touched = os.stat(session.data).st_mtime
        except FileNotFoundError:
            self._sessions.pop(upload_id, None)
            raise _unknown(upload_id) from None
        if time.time() - session.touched > self.ttl_seconds and not session.lock.locked():
            await self._forget(session)
            raise _unknown(upload_id)
        return session

    @contextlib.asynccontextmanager
    async def _hold(self, session: _Session) -> AsyncIterator[None]:
        """The session to this request alone, in every process; its state made current."""
        async with session.lock:
            await session.settle()
            try:
                fd = await asyncio.to_thread(os.open, session.lock_file, os.O_RDWR | os.O_CREAT)
            except FileNotFoundError:  # finished or cancelled by another process
                self._sessions.pop(session.upload_id, None)
                raise _unknown(session.upload_id) from None
            held = False
            try:
                await acquire(fd, fcntl.LOCK_EX)
                held = True
                await asyncio.to_thread(self._catch_up, session, fd)
                yield
            finally:
                await session.settle()  # a write still running is this request's to finish
                if held:  # a mark written without the lock could hide another's writes
                    session.mark = _new_mark()
                    os.pwrite(fd, session.mark, 0)
                os.close(fd)  # and the flock with it

    def _catch_up(self, session: _Session, lock_fd: int) -> None:
        """Take the session as it is on disk if another process held it last; blocking."""
        try:
            size = os.stat(session.data).st_size
        except FileNotFoundError:
            self._sessions.pop(session.upload_id, None)
            raise _unknown(session.upload_id) from None
        if not session.mark or os.pread(lock_fd, len(session.mark), 0) != session.mark:
            session.offset, session.hash = size, None

    def _load(self, upload_id: str) -> _Session | None:
        """A session left by an earlier process (or expired, or half-made by a crash)."""
        directory = self._layout.upload(upload_id)
        try:
            opened, algorithm = _read_info(directory)
            repository = parse_repository(opened.repository)
            stat = os.stat(directory / "data")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return _Session(
            upload_id,
            repository,
            opened.owner,
            algorithm,
            directory,
            stat.st_size,
            None,
            stat.st_mtime,
        )

    async def _forget(self, session: _Session) -> None:
        self._sessions.pop(session.upload_id, None)
        if self._open is not None:
            self._open.pop(session.upload_id, None)
        await asyncio.to_thread(shutil.rmtree, session.directory, True)

    async def _room(self, repository: RepositoryName) -> StorageUsage | None:
        """The organization's usage while it has a quota (what an upload may grow to)."""
        usage = await self._ledger.usage(repository.namespace)
        return usage if usage.quota is not None else None

    async def status(self, repository: RepositoryName, upload_id: str) -> UploadStatus:
        # No lock: a PATCH in progress (in any process) may hold it; the bytes it has
        # written are reported.
        session = await self._get(repository, upload_id)
        try:
            size = os.stat(session.data).st_size
        except FileNotFoundError:
            raise _unknown(upload_id) from None
        return UploadStatus(upload_id, repository, size)

    async def append(
        self,
        repository: RepositoryName,
        upload_id: str,
        body: AsyncIterator[bytes],
        start: int | None,
        length: int | None,
    ) -> UploadStatus:
        session = await self._get(repository, upload_id)
        room = await self._room(repository)
        async with self._hold(session):
            await self._receive(session, body, start, length, room)
            return session.status()

    async def _write(self, session: _Session, piece: bytes, sync: bool = False) -> None:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, _write_piece, session, piece, sync)
        session.busy = future  # if our caller is cancelled, the next request waits for it
        await asyncio.shield(future)
        session.busy = None

    async def _receive(
        self,
        session: _Session,
        body: AsyncIterator[bytes],
        start: int | None,
        length: int | None,
        room: StorageUsage | None,
    ) -> None:
        if start is not None and start != session.offset:
            raise RangeInvalid(
                f"chunk starts at byte {start} but upload {session.upload_id} holds "
                f"{session.offset} bytes: GET the upload for its offset and resume from there",
                detail={"upload_id": session.upload_id, "offset": session.offset, "start": start},
            )
        before = (session.offset, session.hash.copy() if session.hash is not None else None)
        buffer, received, chunks = bytearray(), 0, aiter(body)
        while length is None or received <= length:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except BaseException:
                # The body broke off (a dropped connection): keep what arrived, so the
                # status reports it and the client resumes from there.
                await session.settle()
                await self._write(session, bytes(buffer), sync=True)
                session.touched = time.time()
                raise
            received += len(chunk)
            buffer += chunk
            if room is not None and session.offset + len(buffer) > (room.remaining or 0):
                # Past what the quota leaves, even if the digest turns out to be one the
                # organization holds already: refused now, not after the last byte.
                await self._forget(session)
                raise over_quota(room, session.offset + len(buffer))
            while len(buffer) >= CHUNK_SIZE:
                piece = bytes(buffer[:CHUNK_SIZE])
                del buffer[:CHUNK_SIZE]
                await self._write(session, piece)
        if length is not None and received != length:
            await asyncio.to_thread(self._rollback, session, *before)
            raise SizeInvalid(
                f"Content-Length says {length} bytes but the chunk "
                f"{'has more' if received > length else f'has {received}'}; "
                f"the upload stays at {session.offset} bytes",
                detail={"upload_id": session.upload_id, "length": length, "offset": session.offset},
            )
        await self._write(session, bytes(buffer), sync=True)
        session.touched = time.time()

    @staticmethod
    def _rollback(session: _Session, offset: int, hasher: _Hash | None) -> None:
        os.truncate(session.data, offset)
        session.offset, session.hash = offset, hasher

    async def finish(
        self,
        repository: RepositoryName,
        upload_id: str,
        digest: Digest,
        body: AsyncIterator[bytes] | None,
        start: int | None,
        length: int | None,
    ) -> Digest:
        session = await self._get(repository, upload_id)
        room = await self._room(repository) if body is not None else None
        async with self._hold(session):
            if body is not None:
                await self._receive(session, body, start, length, room)
            actual = await self._digest(session, digest.algorithm)
            if actual != digest:
                raise DigestInvalid(
                    f"upload {upload_id} has digest {actual}, not {digest}: the upload is kept, "
                    "so you may PUT again with the right digest or cancel it",
                    detail={"expected": str(digest), "actual": str(actual)},
                )
            async with self._gc_lock.shared():
                try:
                    await self._ledger.charge(repository.namespace, digest, session.offset)
                except Denied:
                    await self._forget(session)  # refused: nothing of it stays
                    raise
                await asyncio.shield(asyncio.to_thread(self._publish, session, digest))
                await self._metadata.link_blob(repository, digest)
            await self._forget(session)
        return digest

    async def _digest(self, session: _Session, algorithm: str) -> Digest:
        if session.hash is None or session.algorithm != algorithm:
            hasher = await asyncio.to_thread(_hash_file, session.data, algorithm)
            if algorithm == session.algorithm:
                session.hash = hasher  # exact again: later chunks hash incrementally
        else:
            hasher = session.hash
        return Digest(algorithm, hasher.copy().hexdigest())

    def _publish(self, session: _Session, digest: Digest) -> None:
        """Rename the verified bytes into the store (or keep an existing blob), with a fresh
        mtime: the grace period that keeps gc off a blob whose manifest is still to come."""
        destination = self._layout.store.blob(digest)
        if not touch(destination):
            fd = os.open(session.data, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            files.publish(session.data, destination)
            touch(destination)

    async def cancel(self, repository: RepositoryName, upload_id: str) -> None:
        session = await self._get(repository, upload_id)
        async with self._hold(session):
            await self._forget(session)
