"""The data directory is private to the user the gateway runs as.

It holds the database (password hashes, access token digests), the signing keys and every
layer pushed to a private repository. So every command runs with a 077 umask (whatever it
creates is its user's alone: files 0600, directories 0700), creates the data directory
0700 when it is missing, and ``serve`` warns at startup about what others may already
read: a data directory, keys or database made by an older version, or copied in with
other modes. It warns and does not change modes itself: an administrator may have chosen
them (a group that backs the directory up), and the log line says how to fix it.
"""

from __future__ import annotations

import logging
import os
import shlex
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from imagegate.config import Settings
from imagegate.db.database import sqlite_path

PRIVATE_UMASK = 0o077
logger = logging.getLogger("imagegate.datadir")


@dataclass(frozen=True)
class Exposed:
    """A path of the data directory that users other than its owner may read or write."""

    path: Path
    mode: int  # permission bits, e.g. 0o644
    holds: str  # what it holds, for the warning
    directory: bool

    @property
    def fix(self) -> str:
        private = 0o700 if self.directory else 0o600
        return f"chmod {private:o} {shlex.quote(str(self.path))}"

    @property
    def message(self) -> str:
        return (
            f"{self.path} ({self.holds}) has mode {self.mode:04o}: other users may read it; "
            f"fix it with: {self.fix}"
        )


def use_private_umask() -> int:
    """Make everything this process creates private to its user; the previous umask."""
    return os.umask(PRIVATE_UMASK)


def create(directory: Path) -> None:
    """Create ``directory`` with mode 0700 unless it exists (an existing one is left as
    it is: ``exposed`` reports it). Missing parents get the umask's mode."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        return
    os.chmod(directory, 0o700)  # exactly, whatever the umask


def _sensitive(settings: Settings) -> Iterator[tuple[Path, str]]:
    yield settings.data_dir, "the database, signing keys and stored layers"
    keys = settings.keys_dir
    yield keys, "the signing keys"
    if keys.is_dir():
        for entry in sorted(os.scandir(keys), key=lambda entry: entry.name):
            if entry.is_file():
                yield Path(entry.path), "a signing key"
    database = sqlite_path(settings.effective_database_url)
    if database is not None:
        for suffix in ("", "-wal", "-shm"):  # SQLite's write-ahead log holds the same data
            yield Path(f"{database}{suffix}"), "password hashes and access token digests"


def exposed(settings: Settings) -> list[Exposed]:
    """The data directory, keys and database file(s) that others may read or write."""
    found = []
    for path, holds in _sensitive(settings):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            found.append(Exposed(path, mode, holds, stat.S_ISDIR(info.st_mode)))
    return found


def warn_exposed(settings: Settings) -> list[Exposed]:
    """Log a warning for each path ``exposed`` finds; returns them."""
    found = exposed(settings)
    for item in found:
        logger.warning(
            item.message,
            extra={
                "event": "data_permissions",
                "path": str(item.path),
                "mode": f"{item.mode:04o}",
                "fix": item.fix,
            },
        )
    return found
