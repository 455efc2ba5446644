"""Blocking file primitives that never leave a half-written file visible.

Everything here is synchronous; async callers run it with ``asyncio.to_thread`` so the
event loop never waits on the disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from pathlib import Path


def temporary_path(tmp_dir: Path) -> Path:
    """A fresh name in the temp directory (same filesystem as the destination)."""
    return tmp_dir / secrets.token_hex(16)


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(temporary: Path, destination: Path) -> None:
    """Rename a complete, fsync'd temp file into place, atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temporary, destination)
    fsync_directory(destination.parent)


def write_atomic(tmp_dir: Path, destination: Path, data: bytes) -> None:
    """Write a small file: temp file, fsync, rename. Readers see the old or new content."""
    temporary = temporary_path(tmp_dir)
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        publish(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_note(tmp_dir: Path, destination: Path, data: bytes) -> None:
    """Write a small file readers see whole or not at all, without fsync: for notes that
    matter only while the process that wrote them runs."""
    temporary = temporary_path(tmp_dir)
    try:
        temporary.write_bytes(data)
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def try_lock(fd: int) -> bool:
    """Take the exclusive ``flock`` of ``fd``'s file unless another descriptor holds it.

    The lock goes with the open file: closing it (or the process dying) releases it.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_held(fd: int) -> bool:
    """True while another descriptor holds the exclusive lock of ``fd``'s file."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)  # a probe: let go at once
    return False


def names_file(path: Path, fd: int) -> bool:
    """True when ``path`` is (still) the name of the file open as ``fd``."""
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def probe_writable(directory: Path) -> None:
    """Create, sync and remove a file in ``directory``; raises OSError when that fails."""
    path = temporary_path(directory)
    try:
        with open(path, "xb") as handle:
            os.fsync(handle.fileno())
    finally:
        path.unlink(missing_ok=True)


def read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def list_names(directory: Path) -> list[str]:
    """File names in ``directory`` (none if it does not exist), sorted."""
    try:
        return sorted(entry.name for entry in os.scandir(directory) if entry.is_file())
    except FileNotFoundError:
        return []


def list_directories(directory: Path) -> list[str]:
    """Subdirectory names of ``directory`` (none if it does not exist), sorted."""
    try:
        return sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    except FileNotFoundError:
        return []


def remove_stale(tmp_dir: Path, older_than_seconds: float, keep_prefix: str) -> int:
    """Delete temp files untouched for ``older_than_seconds``: leftovers of a crash.

    Writers touch their temp file with every chunk, so a live write is never that old.
    Names starting with ``keep_prefix`` are left alone: their owners say by a lock
    whether they are alive.
    """
    cutoff = time.time() - older_than_seconds
    removed = 0
    for name in list_names(tmp_dir):
        if name.startswith(keep_prefix):
            continue
        path = tmp_dir / name
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed
