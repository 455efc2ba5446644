"""Garbage collection of the shared blob store, safe while the server takes pushes.

Mark: every manifest of a hosted repository (tagged or not) and every blob it names
(config, layers, child manifests), every manifest the cache holds and what it names, and
every digest the cache links. Sweep: a blob nothing marks and whose mtime is older than
the grace period. Then hosted blob links whose blob is gone are dropped, so a later push
uploads the bytes again instead of mounting or referencing nothing.

The race with a push in another process, and why nothing referenced is lost:

1. The mark runs without a lock and may be stale by the time it ends.
2. The sweep holds ``gc.lock`` exclusive (see ``locking``) and first marks again: it
   lists every manifest link and reads the manifests it had not read. Each push step that
   makes a blob referenced holds the lock shared from its check to its commit (an upload
   renaming its blob and linking it; a mount; a manifest put checking its blobs exist and
   writing its link), so the sweep sees it either complete, and keeps what it names, or
   not begun: the step then finds a swept blob missing (ManifestBlobUnknown) rather than
   referencing nothing.
3. A blob pushed before its manifest is referenced by nothing yet. Committing or mounting
   it sets its mtime to now (also when the bytes were already stored), so the grace
   period keeps it until the manifest arrives; uploads in flight are not in ``blobs/`` at
   all. With a grace of 0 such a blob may go, and its manifest put then fails cleanly.

The cache writes without the lock; a cache link or manifest made during the sweep may
lose its blob, which the cache notices (the blob is absent) and fetches again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from imagegate.core.digests import Digest
from imagegate.hosted.interfaces import MAX_MANIFEST_BYTES
from imagegate.hosted.layout import HostedLayout, hosted_layout
from imagegate.hosted.locking import GcLock
from imagegate.hosted.metadata import list_links, parse_link, remove, repository_dirs
from imagegate.hosted.usage import Held, held_now
from imagegate.proxy.descriptors import references
from imagegate.storage import files
from imagegate.storage.interfaces import ContentStore

logger = logging.getLogger("imagegate.gc")


@dataclass(frozen=True)
class GcReport:
    """What a collection found and did (in a dry run: would have done)."""

    manifests: int  # hosted and cached manifests marked
    blobs_referenced: int  # distinct digests something references
    blobs_removed: int
    bytes_removed: int
    blobs_young: int  # unreferenced but within the grace period: kept this time
    links_removed: int  # hosted blob links to blobs that are gone
    dry_run: bool
    # What each organization's repositories hold once the sweep is done (not in a dry
    # run), seen while no push could change it, and when: for ``QuotaService.recount``.
    held: Held | None = None


def stored_blobs(blobs: Path) -> Iterator[Digest]:
    for algorithm in files.list_directories(blobs):
        for prefix in files.list_directories(blobs / algorithm):
            for encoded in files.list_names(blobs / algorithm / prefix):
                digest = parse_link(algorithm, encoded)
                if digest is not None:
                    yield digest


class _Marks:
    """The referenced set, grown by repeated scans; each manifest is read only once."""

    def __init__(self, layout: HostedLayout) -> None:
        self._layout = layout
        self.referenced: set[Digest] = set()
        self._read: set[tuple[Path, Digest]] = set()

    @property
    def manifests(self) -> int:
        return len(self._read)

    def _manifest(self, repository: Path, digest: Digest) -> None:
        self.referenced.add(digest)
        if (repository, digest) in self._read:
            return
        self._read.add((repository, digest))
        try:
            with open(self._layout.store.blob(digest), "rb") as handle:
                body = handle.read(MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            return
        self.referenced.update(references(body).blobs)

    def scan(self) -> None:
        for repository in repository_dirs(self._layout.repositories):
            for digest in list_links(repository / "_manifests"):
                self._manifest(repository, digest)
        for repository in repository_dirs(self._layout.store.repositories):
            self.referenced.update(list_links(repository / "_blobs"))
            for digest in list_links(repository / "_manifests"):
                self._manifest(repository, digest)


def _collect(layout: HostedLayout, grace_seconds: float, dry_run: bool) -> GcReport:
    marks = _Marks(layout)
    marks.scan()
    candidates = [d for d in stored_blobs(layout.store.blobs) if d not in marks.referenced]
    removed, removed_bytes, young = set(), 0, 0
    with GcLock(layout.gc_gate, layout.gc_lock).exclusive():
        marks.scan()  # what pushes committed since the first scan
        cutoff = time.time() - grace_seconds
        for digest in candidates:
            if digest in marks.referenced:
                continue
            path = layout.store.blob(digest)
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if stat.st_mtime > cutoff:
                young += 1
                continue
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            removed.add(digest)
            removed_bytes += stat.st_size
        links = 0
        for repository in repository_dirs(layout.repositories):
            for digest in list_links(repository / "_blobs"):
                if digest in removed or not layout.store.blob(digest).exists():
                    links += 1
                    if not dry_run:
                        remove(repository / "_blobs" / digest.algorithm / digest.encoded)
        held = None if dry_run else held_now(layout)
    return GcReport(
        manifests=marks.manifests,
        blobs_referenced=len(marks.referenced),
        blobs_removed=len(removed),
        bytes_removed=removed_bytes,
        blobs_young=young,
        links_removed=links,
        dry_run=dry_run,
        held=held,
    )


async def collect_garbage(
    store: ContentStore, *, grace_seconds: float = 3600, dry_run: bool = False
) -> GcReport:
    """Remove blobs nothing references that are older than ``grace_seconds``.

    Safe while a server pushes to the same store (see the module docstring). Runs in one
    worker thread: the sweep's exclusive lock blocks that thread, never the event loop.
    """
    layout = hosted_layout(store)
    report = await asyncio.to_thread(_collect, layout, grace_seconds, dry_run)
    logger.info(
        "garbage collection %s",
        "dry run" if dry_run else "done",
        extra={
            "blobs_removed": report.blobs_removed,
            "bytes_removed": report.bytes_removed,
            "blobs_young": report.blobs_young,
            "links_removed": report.links_removed,
        },
    )
    return report
