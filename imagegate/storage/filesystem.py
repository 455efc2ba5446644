"""The filesystem store: both halves under one root (``Settings.cache_dir``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from imagegate.storage import files
from imagegate.storage.blobs import STALE_TEMP_SECONDS, FilesystemBlobStore
from imagegate.storage.interfaces import ContentStore
from imagegate.storage.layout import Layout
from imagegate.storage.repositories import FilesystemRepositoryStore


def open_filesystem_store(
    root: Path, stale_after_seconds: float = STALE_TEMP_SECONDS
) -> ContentStore:
    """Open (creating if needed) the store at ``root``, removing a crash's leftover temp
    files and, once, blob links an older release may have made unconfirmed; blocking,
    meant for startup."""
    blobs = FilesystemBlobStore.open(root, stale_after_seconds)
    drop_unconfirmed_blob_links(blobs.layout)
    return ContentStore(blobs, FilesystemRepositoryStore(blobs.layout))


def drop_unconfirmed_blob_links(layout: Layout) -> int:
    """Remove every cached repository's blob links, once per store; how many went.

    Releases before issue 9 linked each digest a cached manifest named to its repository,
    so a hostile upstream could plant a link to any digest (a private hosted layer). Links
    made since are the upstream's own word; the old ones cannot be told apart, so they
    all go, and each comes back with one upstream HEAD the first time it is asked for.
    """
    if layout.links_confirmed.exists():
        return 0
    dropped = 0
    for links in sorted(layout.repositories.rglob("_blobs")):
        # Repository components never start with "_": this is a link directory.
        dropped += sum(1 for entry in links.rglob("*") if entry.is_file())
        shutil.rmtree(links, ignore_errors=True)
    files.write_atomic(layout.tmp, layout.links_confirmed, b"")
    return dropped
