"""Putting a deployment file in place the way an administrator's tool must.

Docker Desktop trusts registry.json because only an administrator can write it (REFERENCE.md
section 2), so the file is owned by root with mode 0644 whatever the caller's umask. It is
replaced atomically: Desktop (or the gateway, which re-reads its registry.json while
running) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

FILE_MODE = 0o644
DIRECTORY_MODE = 0o755


def is_administrator() -> bool:
    """Root on Linux and macOS; a member of Administrators running elevated on Windows."""
    if sys.platform == "win32":
        import ctypes

        return bool(ctypes.windll.shell32.IsUserAnAdmin())
    return os.geteuid() == 0


def write_atomically(path: Path, data: bytes, *, create_parents: bool = False) -> None:
    """Replace ``path`` with ``data``: a temporary file in the same directory, synced,
    then renamed over it. Mode 0644, and owner root:root when run as root.

    ``create_parents`` makes missing parent directories (mode 0755), as installing into
    a path Desktop reads needs before Desktop itself is installed.
    """
    if create_parents:
        _make_directories(path.parent)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            if sys.platform != "win32":  # Windows: the directory's ACLs decide
                # Set explicitly: mkstemp creates 0600, and a umask must not matter.
                os.fchmod(file.fileno(), FILE_MODE)
                if os.geteuid() == 0:
                    os.fchown(file.fileno(), 0, 0)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _make_directories(directory: Path) -> None:
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for created in reversed(missing):
        created.mkdir()
        if sys.platform != "win32":
            os.chmod(created, DIRECTORY_MODE)  # not the umask's choice either


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX: fsync the directory)."""
    if sys.platform == "win32":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
