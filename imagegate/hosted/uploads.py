"""Blob upload sessions: chunks appended to a file, published by a rename once verified.

A session is a directory ``hosted/uploads/<id>/`` (see ``layout``) rather than a temp file
of the blob store, because it must outlive a dropped connection and a restart: the bytes
received so far are written and fsync'd before a PATCH answers, and even when its body
breaks off midway, so the status reports them and the client resumes from there. The hash
is kept incrementally while this process owns the session; after a restart (or a write
that failed halfway) the file is hashed again from disk at the final PUT.

Memory stays flat: bodies are cut into ``CHUNK_SIZE`` pieces, each written (and hashed)
in a worker thread. Sessions are bounded in number and expire after ``ttl_seconds``
without a write, purged when the registry starts and lazily afterwards. One process
serves a session at a time (the in-memory lock orders requests on it).
"""

from __future__ import annotations

import asyncio
import contextlib
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
    DigestInvalid,
    RangeInvalid,
    SizeInvalid,
    TooManyRequests,
)
from imagegate.core.names import RepositoryName, parse_repository
from imagegate.hosted.interfaces import UploadStatus
from imagegate.hosted.layout import HostedLayout
from imagegate.hosted.locking import GcLock
from imagegate.hosted.metadata import HostedMetadata, touch
from imagegate.proxy.interfaces import CHUNK_SIZE
from imagegate.storage import files

if TYPE_CHECKING:
    from hashlib import _Hash

MAX_UPLOADS = 1000
UPLOAD_TTL_SECONDS = 24 * 3600.0
ALGORITHMS = ("sha256", "sha512")
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class _Session:
    upload_id: str
    repository: RepositoryName
    algorithm: str
    directory: Path
    offset: int  # bytes written to ``data``; only changed by the worker thread that wrote
    hash: _Hash | None  # of exactly ``offset`` bytes, or None: hash the file again
    touched: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    busy: asyncio.Future[None] | None = None  # a write whose caller was cancelled

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def status(self) -> UploadStatus:
        return UploadStatus(self.upload_id, self.repository, self.offset)

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


def _hash_file(path: Path, algorithm: str) -> _Hash:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while piece := handle.read(CHUNK_SIZE):
            hasher.update(piece)
    return hasher


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
        max_uploads: int = MAX_UPLOADS,
        ttl_seconds: float = UPLOAD_TTL_SECONDS,
    ) -> None:
        self._layout = layout
        self._metadata = metadata
        self._gc_lock = gc_lock
        self.max_uploads = max_uploads
        self.ttl_seconds = ttl_seconds
        self._sessions: dict[str, _Session] = {}  # the ones this process has touched
        self._ids: set[str] | None = None  # every session on disk, once scanned
        self._scanned = 0.0
        self._start_lock = asyncio.Lock()

    def purge_expired(self) -> set[str]:
        """Remove expired and broken sessions; the ids left. Blocking (startup, or a thread)."""
        cutoff = time.time() - self.ttl_seconds
        alive = set()
        try:
            entries = list(os.scandir(self._layout.uploads))
        except FileNotFoundError:
            return set()
        for entry in entries:
            session = self._sessions.get(entry.name)
            if session is not None and session.lock.locked():
                alive.add(entry.name)  # in use right now
                continue
            try:
                fresh = os.stat(Path(entry.path) / "data").st_mtime >= cutoff
                info = (Path(entry.path) / "info").is_file()
            except FileNotFoundError:
                fresh = info = False
            if fresh and info and _ID.fullmatch(entry.name):
                alive.add(entry.name)
            else:
                shutil.rmtree(entry.path, ignore_errors=True)
                self._sessions.pop(entry.name, None)
        return alive

    async def start(self, repository: RepositoryName, algorithm: str = "sha256") -> UploadStatus:
        if algorithm not in ALGORITHMS:
            raise DigestInvalid(
                f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512",
                detail={"algorithm": algorithm},
            )
        async with self._start_lock:
            stale = time.time() - self._scanned > min(self.ttl_seconds, 3600)
            if self._ids is None or stale or len(self._ids) >= self.max_uploads:
                self._ids = await asyncio.to_thread(self.purge_expired)
                self._scanned = time.time()
            if len(self._ids) >= self.max_uploads:
                raise TooManyRequests(
                    f"too many blob uploads in progress ({self.max_uploads}): finish or cancel "
                    f"some, or retry later (idle uploads expire after "
                    f"{self.ttl_seconds / 3600:g} h)",
                    detail={"max_uploads": self.max_uploads},
                )
            upload_id = secrets.token_hex(16)
            directory = self._layout.upload(upload_id)
            info = json.dumps({"repository": repository.full, "algorithm": algorithm})

            def create() -> None:
                directory.mkdir(parents=True)
                (directory / "data").touch()
                files.write_atomic(self._layout.store.tmp, directory / "info", info.encode())

            await asyncio.to_thread(create)
            self._ids.add(upload_id)
        session = _Session(
            upload_id, repository, algorithm, directory, 0, hashlib.new(algorithm), time.time()
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
        if time.time() - session.touched > self.ttl_seconds and not session.lock.locked():
            await self._forget(session)
            raise _unknown(upload_id)
        return session

    def _load(self, upload_id: str) -> _Session | None:
        """A session left by an earlier process (or expired, or half-made by a crash)."""
        directory = self._layout.upload(upload_id)
        try:
            info = json.loads((directory / "info").read_text())
            repository = parse_repository(info["repository"])
            algorithm = str(info["algorithm"])
            stat = os.stat(directory / "data")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return _Session(
            upload_id, repository, algorithm, directory, stat.st_size, None, stat.st_mtime
        )

    async def _forget(self, session: _Session) -> None:
        self._sessions.pop(session.upload_id, None)
        if self._ids is not None:
            self._ids.discard(session.upload_id)
        await asyncio.to_thread(shutil.rmtree, session.directory, True)

    async def status(self, repository: RepositoryName, upload_id: str) -> UploadStatus:
        # No lock: a PATCH in progress may hold it; its flushed bytes are reported.
        return (await self._get(repository, upload_id)).status()

    async def append(
        self,
        repository: RepositoryName,
        upload_id: str,
        body: AsyncIterator[bytes],
        start: int | None,
        length: int | None,
    ) -> UploadStatus:
        session = await self._get(repository, upload_id)
        async with session.lock:
            await session.settle()
            await self._receive(session, body, start, length)
            return session.status()

    async def _write(self, session: _Session, piece: bytes, sync: bool = False) -> None:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, _write_piece, session, piece, sync)
        session.busy = future  # if our caller is cancelled, the next request waits for it
        await asyncio.shield(future)
        session.busy = None

    async def _receive(
        self, session: _Session, body: AsyncIterator[bytes], start: int | None, length: int | None
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
        async with session.lock:
            await session.settle()
            if body is not None:
                await self._receive(session, body, start, length)
            actual = await self._digest(session, digest.algorithm)
            if actual != digest:
                raise DigestInvalid(
                    f"upload {upload_id} has digest {actual}, not {digest}: the upload is kept, "
                    "so you may PUT again with the right digest or cancel it",
                    detail={"expected": str(digest), "actual": str(actual)},
                )
            async with self._gc_lock.shared():
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
        async with session.lock:
            await session.settle()
            await self._forget(session)
