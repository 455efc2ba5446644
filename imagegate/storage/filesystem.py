"""The filesystem store: both halves under one root (``Settings.cache_dir``)."""

from __future__ import annotations

from pathlib import Path

from imagegate.storage.blobs import STALE_TEMP_SECONDS, FilesystemBlobStore
from imagegate.storage.interfaces import ContentStore
from imagegate.storage.repositories import FilesystemRepositoryStore


def open_filesystem_store(
    root: Path, stale_after_seconds: float = STALE_TEMP_SECONDS
) -> ContentStore:
    """Open (creating if needed) the store at ``root``, removing a crash's leftover temp
    files; blocking, meant for startup."""
    blobs = FilesystemBlobStore.open(root, stale_after_seconds)
    return ContentStore(blobs, FilesystemRepositoryStore(blobs.layout))
