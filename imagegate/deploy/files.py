"""Putting a file an admin command writes (``--output``, ``--install``) in place.

Docker Desktop trusts registry.json because only an administrator can write it (REFERENCE.md
section 2), so a deployment file is owned by root with mode 0644 whatever the caller's
umask; an export of the audit trail stays private to its owner (0600). Either is replaced
atomically: Desktop (or the gateway, which re-reads its registry.json while running) sees
the old file or the new one, never half of one. A destination that cannot be written is
reported by its own name, never by the name of the temporary file beside it.
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


def write_atomically(
    path: Path, data: bytes, *, create_parents: bool = False, private: bool = False
) -> None:
    """Replace ``path`` with ``data``: a temporary file in the same directory, synced,
    then renamed over it. Mode 0644, and owner root:root when run as root; ``private``
    keeps it 0600 and owned by the caller (an export of the audit trail).

    ``create_parents`` makes missing parent directories (mode 0755), as installing into
    a path Desktop reads needs before Desktop itself is installed. Without it, a missing
    directory is an error naming it (``OSError``, as for any other unwritable ``path``).
    """
    if create_parents:
        _make_directories(path.parent)
    descriptor, temporary = _temporary(path)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            if sys.platform != "win32" and not private:  # Windows: the directory's ACLs
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


def _temporary(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path``; an error says what is wrong with ``path``."""
    directory = path.parent
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a directory; give a file name")
    if not directory.exists():
        raise FileNotFoundError(
            f"cannot write {path}: the directory {directory} does not exist; "
            f"create it first (mkdir -p {directory})"
        )
    if not directory.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {directory} is not a directory")
    try:
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except PermissionError:
        raise PermissionError(
            f"cannot write {path}: no permission to create files in {directory}"
        ) from None


def _make_directories(directory: Path) -> None:
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    if missing and not directory.is_dir():
        raise NotADirectoryError(f"cannot create {missing[-1]}: {directory} is not a directory")
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
