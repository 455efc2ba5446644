"""The generation: a counter of committed changes, and the signal that publishes it.

Caches of what sign-ins and access decisions read (``services.current_cache``) are good
only while nothing they read has changed. Every change the services make is recorded in
the audit trail in its own transaction (``services.audit_changes``), and that recording
also bumps the ``generation`` row (``bump``), so a change and its bump commit together.

Reading that row on every request would cost the round trip the caches save, so after
the commit ``Database.write`` publishes the change on a ``GenerationSignal`` that every
process reads at memory speed: ``FileSignal``, an 8-byte counter mapped into memory from
a file every process on the machine shares (the CLI included), or ``MemorySignal`` for
one process. A process that reads a value other than the one its caches were filled at
drops them. The signal is only "something changed": readers compare for difference,
never for order, so a torn read can only cost a spurious refill. Several machines on one
PostgreSQL need another signal (LISTEN/NOTIFY) behind the same two methods.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
from pathlib import Path
from typing import Protocol

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from imagegate.db.models import Generation

# Where a write transaction notes that it bumped the generation (``Connection.info``),
# for ``Database.write`` to publish once it has committed.
BUMPED = "imagegate.generation.bumped"
_ROW = 1
_BUMP = (
    update(Generation)
    .where(Generation.id == _ROW)
    .values(value=Generation.value + 1)
    .returning(Generation.value)
)
_SIZE = 8


class GenerationSignal(Protocol):
    """How processes learn that the database changed."""

    def current(self) -> int:
        """The value now: compare it with the one a cache was filled at (``!=``)."""
        ...

    def publish(self, generation: int) -> None:
        """Announce a committed change: ``current()`` differs from every earlier value
        (``generation`` is the database's, a hint; the signal may count on its own)."""
        ...

    def close(self) -> None:
        """Release what the signal holds; it must not be used afterwards."""
        ...


async def bump(conn: AsyncConnection) -> int:
    """Count one change in ``conn``'s transaction; published when it commits."""
    value = await conn.scalar(_BUMP)
    if value is None:  # a database made without the migration's row
        value = 1
        await conn.execute(insert(Generation).values(id=_ROW, value=value))
    conn.info[BUMPED] = value
    return value


class MemorySignal:
    """The signal within one process (tests, and a database no other process uses)."""

    def __init__(self) -> None:
        self._value = 0

    def current(self) -> int:
        return self._value

    def publish(self, generation: int) -> None:
        self._value = max(self._value + 1, generation)

    def close(self) -> None:
        pass


class FileSignal:
    """An 8-byte counter in a file, mapped into memory: every process that maps the same
    file sees a publish at once, for the cost of a memory read.

    Publishers serialize on an ``flock`` and only ever raise the value, so it never
    returns to one a cache was filled at. The file is created on first use (mode 0600);
    it holds nothing but the counter and may be deleted while no process runs.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._view: memoryview | None = None
        self._fd = -1
        self._pid = -1  # the process that opened ``_fd``

    def current(self) -> int:
        view = self._view if self._view is not None else self._open()
        return int(view[0])

    def publish(self, generation: int) -> None:
        view = self._view if self._view is not None else self._open()
        if self._pid != os.getpid():
            # Forked after opening: an flock belongs to the open file, which parent and
            # child would share, so it would not keep them apart. The mapping is fine.
            with self._lock:
                os.close(self._fd)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
                self._pid = os.getpid()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            view[0] = max(int(view[0]) + 1, generation)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._view is not None:
                mapped = self._view.obj
                self._view.release()
                self._view = None
                if isinstance(mapped, mmap.mmap):
                    mapped.close()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _open(self) -> memoryview:
        with self._lock:
            if self._view is not None:
                return self._view
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    if os.fstat(fd).st_size < _SIZE:
                        os.ftruncate(fd, _SIZE)  # a new file reads as generation 0
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                mapped = mmap.mmap(fd, _SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._pid = fd, os.getpid()
            # An aligned 8-byte native integer: one load and one store.
            self._view = memoryview(mapped).cast("Q")
            return self._view
