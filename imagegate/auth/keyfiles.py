"""Key files in the keys directory: created once, atomically, readable by the owner only.

Several gateway processes may start at once on one data directory; the first to create
a key wins and every process then reads that one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

SECRET_BYTES = 32


def load_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The content of ``path``, first written from ``make()`` (mode 0600) if absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(make())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails if another process made it first: theirs wins
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_bytes()


def load_or_create_secret(path: Path) -> bytes:
    """A random secret key (HMAC) in ``path``, made on first use."""
    key = load_or_create(path, lambda: secrets.token_bytes(SECRET_BYTES))
    if len(key) < SECRET_BYTES:
        raise ValueError(
            f"{path} is shorter than {SECRET_BYTES} bytes; delete it to make a new one"
        )
    return key
