"""Hosted repository metadata on disk: blob and manifest links, referrers, tags.

Kept apart from the cache's metadata (see ``layout``), and read from disk on every call
with no in-memory copy, so a delete is visible at once and ``imagegate gc`` (another
process) sees what the server wrote. Writes are whole-file atomic; removals fsync the
directory so a delete survives a crash once it was answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from imagegate.core.digests import Digest
from imagegate.core.errors import DigestInvalid
from imagegate.core.names import RepositoryName
from imagegate.hosted.layout import HostedLayout
from imagegate.storage import files
from imagegate.storage.interfaces import ManifestLink


def parse_link(algorithm: str, encoded: str) -> Digest | None:
    """The digest a link file's path names, or None for a stray file."""
    try:
        return Digest.parse(f"{algorithm}:{encoded}")
    except DigestInvalid:
        return None


def list_links(directory: Path) -> list[Digest]:
    """Digests linked under ``directory`` (``<algorithm>/<encoded>`` files); blocking."""
    found = []
    for algorithm in files.list_directories(directory):
        for encoded in files.list_names(directory / algorithm):
            digest = parse_link(algorithm, encoded)
            if digest is not None:
                found.append(digest)
    return found


def repository_dirs(base: Path) -> Iterator[Path]:
    """Every directory under ``base`` holding repository metadata (``_``-named children);
    nested repositories (``acme/app`` and ``acme/app/sub``) are both found. Blocking."""
    pending = [base]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if any(entry.name.startswith("_") for entry in entries):
            yield directory
        pending.extend(
            Path(entry.path)
            for entry in entries
            if entry.is_dir() and not entry.name.startswith(("_", "."))
        )


def remove(path: Path) -> bool:
    """Remove a file durably; False if it was not there. Blocking."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    with contextlib.suppress(FileNotFoundError):
        files.fsync_directory(path.parent)
    return True


class HostedMetadata:
    """What each hosted repository holds; every method runs its I/O in a worker thread."""

    def __init__(self, layout: HostedLayout) -> None:
        self.layout = layout

    def _write(self, path: Path, content: str) -> None:
        if files.read_text(path) != content:
            files.write_atomic(self.layout.store.tmp, path, content.encode())

    async def exists(self, repository: RepositoryName) -> bool:
        """True once anything was pushed to ``repository`` (even if since deleted)."""

        def check() -> bool:
            return any(
                path.is_dir()
                for path in (
                    self.layout.blob_links(repository),
                    self.layout.manifest_links(repository),
                    self.layout.tags(repository),
                )
            )

        return await asyncio.to_thread(check)

    async def link_blob(self, repository: RepositoryName, digest: Digest) -> None:
        await asyncio.to_thread(self._write, self.layout.blob_link(repository, digest), "")

    async def unlink_blob(self, repository: RepositoryName, digest: Digest) -> bool:
        return await asyncio.to_thread(remove, self.layout.blob_link(repository, digest))

    async def has_blob(self, repository: RepositoryName, digest: Digest) -> bool:
        """True when ``digest`` was pushed or mounted into ``repository`` as a blob."""
        return await asyncio.to_thread(self.layout.blob_link(repository, digest).exists)

    async def is_linked(self, repository: RepositoryName, digest: Digest) -> bool:
        """True for a blob or a manifest of ``repository`` (both may be read as blobs)."""

        def check() -> bool:
            return (
                self.layout.blob_link(repository, digest).exists()
                or self.layout.manifest_link(repository, digest).exists()
            )

        return await asyncio.to_thread(check)

    async def link_manifest(
        self, repository: RepositoryName, link: ManifestLink, subject: Digest | None
    ) -> None:
        """The referrer entry first, the manifest link last: a crash in between leaves an
        entry that ``referrers`` skips (it needs the manifest link)."""

        def write() -> None:
            if subject is not None:
                path = self.layout.referrer_link(repository, subject, link.digest)
                self._write(path, link.media_type)
            self._write(self.layout.manifest_link(repository, link.digest), link.media_type)

        await asyncio.to_thread(write)

    async def manifest(self, repository: RepositoryName, digest: Digest) -> ManifestLink | None:
        path = self.layout.manifest_link(repository, digest)
        media_type = await asyncio.to_thread(files.read_text, path)
        return None if media_type is None else ManifestLink(digest, media_type)

    async def unlink_manifest(
        self, repository: RepositoryName, digest: Digest, subject: Digest | None
    ) -> bool:
        """Remove the manifest, every tag pointing at it, then its referrer entry."""

        def unlink() -> bool:
            for tag in files.list_names(self.layout.tags(repository)):
                path = self.layout.tag(repository, tag)
                if (files.read_text(path) or "").strip() == str(digest):
                    remove(path)
            removed = remove(self.layout.manifest_link(repository, digest))
            if subject is not None:
                remove(self.layout.referrer_link(repository, subject, digest))
            return removed

        return await asyncio.to_thread(unlink)

    async def referrers(self, repository: RepositoryName, subject: Digest) -> list[ManifestLink]:
        """Manifests of ``repository`` whose subject is ``subject`` (still linked)."""

        def scan() -> list[ManifestLink]:
            found = []
            for digest in list_links(self.layout.referrers(repository, subject)):
                media_type = files.read_text(self.layout.manifest_link(repository, digest))
                if media_type is not None:
                    found.append(ManifestLink(digest, media_type))
            return found

        return await asyncio.to_thread(scan)

    async def set_tag(self, repository: RepositoryName, tag: str, digest: Digest) -> None:
        await asyncio.to_thread(self._write, self.layout.tag(repository, tag), str(digest))

    async def tag(self, repository: RepositoryName, tag: str) -> Digest | None:
        text = await asyncio.to_thread(files.read_text, self.layout.tag(repository, tag))
        if text is None:
            return None
        algorithm, _, encoded = text.strip().partition(":")
        return parse_link(algorithm, encoded)

    async def remove_tag(self, repository: RepositoryName, tag: str) -> bool:
        return await asyncio.to_thread(remove, self.layout.tag(repository, tag))

    async def tags(self, repository: RepositoryName) -> list[str]:
        """Every tag, in byte order."""
        return await asyncio.to_thread(files.list_names, self.layout.tags(repository))


def touch(path: Path) -> bool:
    """Refresh a blob's mtime (its grace period against gc); False if it is gone."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True
