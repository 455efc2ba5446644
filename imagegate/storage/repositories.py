"""Per-repository metadata on a local filesystem: links, referrers and cached tags.

Every file is small and written atomically (temp file, fsync, rename), so a reader sees
the old or the new fact, never a torn one. See ``layout`` for the tree.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from imagegate.core.digests import Digest
from imagegate.core.errors import DigestInvalid
from imagegate.core.names import RepositoryName
from imagegate.storage import files
from imagegate.storage.interfaces import ManifestLink
from imagegate.storage.layout import Layout


def _parse_digest(algorithm: str, encoded: str) -> Digest | None:
    try:
        return Digest.parse(f"{algorithm}:{encoded}")
    except DigestInvalid:  # a stray file (say, a backup copy): not ours
        return None


class FilesystemRepositoryStore:
    """See ``RepositoryStore``; shares its root (and temp directory) with the blob store."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def _write_if_changed(self, path: Path, content: str) -> None:
        if files.read_text(path) != content:
            files.write_atomic(self.layout.tmp, path, content.encode())

    async def link_blob(self, repository: RepositoryName, digest: Digest) -> None:
        await asyncio.to_thread(
            self._write_if_changed, self.layout.blob_link(repository, digest), ""
        )

    async def link_manifest(
        self, repository: RepositoryName, link: ManifestLink, subject: Digest | None = None
    ) -> None:
        def write() -> None:
            self._write_if_changed(
                self.layout.manifest_link(repository, link.digest), link.media_type
            )
            if subject is not None:
                path = self.layout.referrer_link(repository, subject, link.digest)
                self._write_if_changed(path, link.media_type)

        await asyncio.to_thread(write)

    async def is_linked(self, repository: RepositoryName, digest: Digest) -> bool:
        def exists() -> bool:
            return (
                self.layout.blob_link(repository, digest).exists()
                or self.layout.manifest_link(repository, digest).exists()
            )

        return await asyncio.to_thread(exists)

    async def manifest(self, repository: RepositoryName, digest: Digest) -> ManifestLink | None:
        path = self.layout.manifest_link(repository, digest)
        media_type = await asyncio.to_thread(files.read_text, path)
        return None if media_type is None else ManifestLink(digest, media_type)

    async def referrers(self, repository: RepositoryName, subject: Digest) -> list[ManifestLink]:
        def scan() -> list[ManifestLink]:
            root = self.layout.referrers(repository, subject)
            found = []
            for algorithm in files.list_directories(root):
                for encoded in files.list_names(root / algorithm):
                    digest = _parse_digest(algorithm, encoded)
                    media_type = files.read_text(root / algorithm / encoded)
                    if digest is not None and media_type is not None:
                        found.append(ManifestLink(digest, media_type))
            return found

        return await asyncio.to_thread(scan)

    async def set_tag(self, repository: RepositoryName, tag: str, digest: Digest) -> None:
        await asyncio.to_thread(
            self._write_if_changed, self.layout.tag(repository, tag), str(digest)
        )

    async def tag(self, repository: RepositoryName, tag: str) -> Digest | None:
        text = await asyncio.to_thread(files.read_text, self.layout.tag(repository, tag))
        if text is None:
            return None
        algorithm, _, encoded = text.strip().partition(":")
        return _parse_digest(algorithm, encoded)

    async def tags(self, repository: RepositoryName) -> list[str]:
        return await asyncio.to_thread(files.list_names, self.layout.tags(repository))
