"""The lock between pushes and garbage collection, across processes (``flock``).

Every step that makes a blob referenced (an upload committed and linked, a mount, a
manifest checked and stored) holds ``gc.lock`` shared; the final re-check and sweep of
``imagegate gc`` holds it exclusive. So the sweep sees each such step either complete (its
links and manifests are on disk and re-read) or not begun (the step then finds the blob
gone and fails cleanly, or re-creates it). Shared holders come and go in milliseconds.

A second file, ``gc.gate``, stops Linux's flock from starving the collector: it takes the
gate exclusive first, so new pushes wait at the gate while the ones already inside finish.
Pushes poll with ``LOCK_NB`` instead of blocking a worker thread, so the threads stay free
for the collector (which may share the process, as in tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

_POLL_SECONDS = (0.002, 0.01, 0.05)


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


async def acquire(fd: int, operation: int) -> None:
    """``flock(fd, operation)`` without blocking the event loop or a worker thread."""
    attempt = 0
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)  # never blocks: fine on the loop
            return
        except BlockingIOError:
            await asyncio.sleep(_POLL_SECONDS[min(attempt, len(_POLL_SECONDS) - 1)])
            attempt += 1


class GcLock:
    def __init__(self, gate: Path, lock: Path) -> None:
        self._gate = gate
        self._lock = lock

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Held by a push step; waits while a collection sweeps."""
        lock_fd = await asyncio.to_thread(_open, self._lock)
        try:
            gate_fd = await asyncio.to_thread(_open, self._gate)
            try:
                await acquire(gate_fd, fcntl.LOCK_SH)
                await acquire(lock_fd, fcntl.LOCK_SH)
            finally:
                os.close(gate_fd)  # through the gate: a waiting collector may close it now
            yield
        finally:
            os.close(lock_fd)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held by the collector's sweep; blocking, so run it in a worker thread."""
        gate_fd = _open(self._gate)
        try:
            fcntl.flock(gate_fd, fcntl.LOCK_EX)
            lock_fd = _open(self._lock)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(lock_fd)
        finally:
            os.close(gate_fd)
