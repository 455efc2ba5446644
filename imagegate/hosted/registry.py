"""``HostedContent``: ``HostedRegistry`` on the filesystem store shared with the cache.

Reads are local only: a hosted repository never asks the upstream, and sees only what
was pushed (or mounted) into it, never what the cache holds under the same name. Blobs
are stored once by digest for both; see ``layout`` for the tree and ``gc`` for how they
are collected while pushes go on. What each organization's repositories hold counts
against its storage quota (``StorageLedger``): uploads, mounts and manifests are charged
before they are linked, and a digest that leaves the organization's last repository that
held it is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from imagegate.config import Settings
from imagegate.core.digests import Digest
from imagegate.core.errors import BlobUnknown
from imagegate.core.names import Reference, RepositoryName
from imagegate.core.policy import Location
from imagegate.hosted import usage
from imagegate.hosted.interfaces import PushedManifest, StorageLedger, Unmetered, UploadStatus
from imagegate.hosted.layout import hosted_layout
from imagegate.hosted.locking import GcLock
from imagegate.hosted.manifests import HostedManifests, name_unknown
from imagegate.hosted.metadata import HostedMetadata, touch
from imagegate.hosted.uploads import (
    MAX_UPLOADS,
    MAX_UPLOADS_PER_REPOSITORY,
    MAX_UPLOADS_PER_USER,
    RESCAN_SECONDS,
    UPLOAD_TTL_SECONDS,
    UploadSessions,
)
from imagegate.proxy.interfaces import BlobStream, Manifest, TagPage
from imagegate.proxy.ranges import stored_blob
from imagegate.proxy.service import tag_page
from imagegate.storage.filesystem import open_filesystem_store
from imagegate.storage.interfaces import ContentStore


class HostedContent:
    """Hosted repositories in ``store``; construction does no I/O."""

    def __init__(
        self,
        store: ContentStore,
        *,
        ledger: StorageLedger | None = None,
        max_uploads: int = MAX_UPLOADS,
        max_uploads_per_user: int = MAX_UPLOADS_PER_USER,
        max_uploads_per_repository: int = MAX_UPLOADS_PER_REPOSITORY,
        upload_ttl_seconds: float = UPLOAD_TTL_SECONDS,
        rescan_seconds: float = RESCAN_SECONDS,
    ) -> None:
        self._store = store
        self.layout = hosted_layout(store)
        self._ledger = ledger or Unmetered()
        self._metadata = HostedMetadata(self.layout)
        self._gc_lock = GcLock(self.layout.gc_gate, self.layout.gc_lock)
        self._manifests = HostedManifests(store.blobs, self._metadata, self._gc_lock, self._ledger)
        self._uploads = UploadSessions(
            self.layout,
            self._metadata,
            self._gc_lock,
            ledger=self._ledger,
            max_uploads=max_uploads,
            max_per_user=max_uploads_per_user,
            max_per_repository=max_uploads_per_repository,
            ttl_seconds=upload_ttl_seconds,
            rescan_seconds=rescan_seconds,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: ContentStore | None = None,
        ledger: StorageLedger | None = None,
    ) -> HostedContent:
        """Hosted content in ``store`` (default: the one at ``settings.cache_dir``, the
        cache's), with the settings' bounds on uploads; expired uploads purged.

        Blocking: call it at startup.
        """
        content = cls(
            store or open_filesystem_store(settings.cache_dir),
            ledger=ledger,
            max_uploads_per_user=settings.upload_sessions_per_user,
            max_uploads_per_repository=settings.upload_sessions_per_repository,
            upload_ttl_seconds=settings.upload_idle_minutes * 60,
        )
        content.purge_expired_uploads()
        return content

    def purge_expired_uploads(self) -> int:
        """Remove expired or half-created upload sessions; the number left. Blocking."""
        return len(self._uploads.purge_expired())

    async def exists(self, repository: RepositoryName) -> bool:
        """True once anything was pushed to ``repository``."""
        return await self._metadata.exists(repository)

    # Reads (``RegistryContent``), all local.

    async def get_manifest(
        self, repository: RepositoryName, reference: Reference, accept: Sequence[str]
    ) -> Manifest:
        return await self._manifests.get(repository, reference)  # served as pushed

    async def _blob_size(self, repository: RepositoryName, digest: Digest) -> int:
        if await self._metadata.is_linked(repository, digest):
            size = await self._store.blobs.size(digest)
            if size is not None:
                return size
        raise _blob_unknown(repository, digest)  # BLOB_UNKNOWN, as the spec says, even
        # for a repository never pushed to: a digest never tells what a name holds

    async def head_blob(self, repository: RepositoryName, digest: Digest) -> int:
        return await self._blob_size(repository, digest)

    async def open_blob(
        self, repository: RepositoryName, digest: Digest, range_header: str | None
    ) -> BlobStream:
        size = await self._blob_size(repository, digest)
        return stored_blob(self._store.blobs, digest, size, range_header)

    async def list_tags(
        self, repository: RepositoryName, n: int | None, last: str | None
    ) -> TagPage:
        tags = await self._metadata.tags(repository)
        if not tags and not await self._metadata.exists(repository):
            raise name_unknown(repository)
        return tag_page(repository, tags, n, last)

    async def referrers(
        self, repository: RepositoryName, digest: Digest, artifact_type: str | None
    ) -> tuple[bytes, bool]:
        return await self._manifests.referrers(repository, digest, artifact_type)

    async def ready(self) -> bool:
        return await self._store.blobs.writable()

    async def close(self) -> None:
        """Nothing to release: upload sessions live on disk and survive a restart."""

    # Writes.

    async def start_upload(
        self, repository: RepositoryName, algorithm: str = "sha256", *, by: str = ""
    ) -> UploadStatus:
        """A new session of user ``by``; ``algorithm`` (``?digest-algorithm=``) is hashed as
        chunks arrive."""
        return await self._uploads.start(repository, algorithm, by=by)

    async def upload_status(self, repository: RepositoryName, upload_id: str) -> UploadStatus:
        return await self._uploads.status(repository, upload_id)

    async def append(
        self,
        repository: RepositoryName,
        upload_id: str,
        body: AsyncIterator[bytes],
        start: int | None,
        length: int | None,
    ) -> UploadStatus:
        return await self._uploads.append(repository, upload_id, body, start, length)

    async def finish(
        self,
        repository: RepositoryName,
        upload_id: str,
        digest: Digest,
        body: AsyncIterator[bytes] | None,
        start: int | None,
        length: int | None,
    ) -> Digest:
        return await self._uploads.finish(repository, upload_id, digest, body, start, length)

    async def cancel(self, repository: RepositoryName, upload_id: str) -> None:
        await self._uploads.cancel(repository, upload_id)

    async def mount(self, repository: RepositoryName, digest: Digest, source: Location) -> bool:
        if source.hosted:
            held = await self._metadata.has_blob(source.name, digest)
        else:
            held = await self._store.repositories.is_linked(source.name, digest)
        if not held:
            return False
        async with self._gc_lock.shared():
            # A fresh mtime gives the blob its grace period again, as an upload would.
            if not await asyncio.to_thread(touch, self.layout.store.blob(digest)):
                return False  # linked, but the bytes are gone: upload them instead
            size = await self._store.blobs.size(digest)
            await self._ledger.charge(repository.namespace, digest, size or 0)
            await self._metadata.link_blob(repository, digest)
        return True

    async def put_manifest(
        self,
        repository: RepositoryName,
        reference: Reference,
        media_type: str,
        body: bytes,
        tags: Sequence[str] = (),
    ) -> PushedManifest:
        """``tags`` are the extra ``?tag=`` of a push by digest (OCI 1.1)."""
        return await self._manifests.put(repository, reference, media_type, body, tags)

    async def delete_manifest(self, repository: RepositoryName, digest: Digest) -> None:
        await self._manifests.delete(repository, digest)
        await self._released(repository, digest)

    async def delete_tag(self, repository: RepositoryName, tag: str) -> None:
        await self._manifests.delete_tag(repository, tag)

    async def delete_blob(self, repository: RepositoryName, digest: Digest) -> None:
        if not await self._metadata.unlink_blob(repository, digest):
            raise _blob_unknown(repository, digest)
        await self._released(repository, digest)

    async def _released(self, repository: RepositoryName, digest: Digest) -> None:
        """Uncount ``digest`` once no repository of the organization holds it. (A push of
        the same digest to another of its repositories at this very moment may be
        uncounted too; the next recount, at ``imagegate gc``, counts it again.)"""
        org = repository.namespace
        if not await asyncio.to_thread(usage.holds, self.layout, org, digest):
            await self._ledger.release(org, digest)


def _blob_unknown(repository: RepositoryName, digest: Digest) -> BlobUnknown:
    return BlobUnknown(
        f"blob {digest} is not in {repository}",
        detail={"name": repository.full, "digest": str(digest)},
    )
