"""Blobs through the cache: served under a repository only if it holds them.

Repository R links a blob once the upstream has served or confirmed it for R: a GET for
R that fetched it, or a HEAD for R that found it. (R's manifests are linked as they are
fetched, so each can be read as a blob too; the digests a manifest names are not: see
``manifests``.) A blob the store has and R links is served from the store. Otherwise the
upstream is asked for R: a HEAD for a HEAD request; a HEAD to confirm a blob the store
has for another repository (or a hosted one), then served from the store, or one being
fetched for another repository, whose fetch it then joins; else a single-flight GET
that fills the store while requesters stream behind it. An upstream that is down, or
limits us, confirms nothing: a blob R does not link is then refused (503, or the
upstream's 429), even when the store has it. A digest never opens a door the
repository name would not.
"""

from __future__ import annotations

from imagegate.core.digests import Digest
from imagegate.core.errors import UpstreamError
from imagegate.core.names import RepositoryName
from imagegate.proxy.errors import FALLBACK_ERRORS, not_cached
from imagegate.proxy.interfaces import BlobStream
from imagegate.proxy.ranges import parse_range, stored_blob
from imagegate.proxy.singleflight import BlobSource, FlightGroup
from imagegate.storage.interfaces import ContentStore
from imagegate.upstream.client import UpstreamClient


class ProxyBlobs:
    def __init__(self, store: ContentStore, upstream: UpstreamClient) -> None:
        self._store = store
        self._upstream = upstream
        self.flights = FlightGroup(store.blobs)

    async def _local_size(self, repository: RepositoryName, digest: Digest) -> int | None:
        """The size if the store has the blob and ``repository`` holds it."""
        size = await self._store.blobs.size(digest)
        if size is None or not await self._store.repositories.is_linked(repository, digest):
            return None
        return size

    async def _confirm(self, repository: RepositoryName, digest: Digest) -> int | None:
        """Ask the upstream whether it serves ``digest`` for ``repository`` (its refusal is
        raised); link it if so, and return the size it gave (None if unsaid)."""
        try:
            size = await self._upstream.head_blob(repository, digest)
        except FALLBACK_ERRORS as exc:
            raise not_cached(
                self._upstream.url,
                f"blob {digest}",
                exc,
                missing=f"is not known to belong to {repository}",
            ) from exc
        await self._store.repositories.link_blob(repository, digest)
        return size

    async def head(self, repository: RepositoryName, digest: Digest) -> int:
        size = await self._local_size(repository, digest)
        if size is not None:
            return size
        upstream_size = await self._confirm(repository, digest)
        size = upstream_size if upstream_size is not None else await self._store.blobs.size(digest)
        if size is None:
            raise UpstreamError(
                f"upstream {self._upstream.url} gave no size for blob {repository}@{digest}"
            )
        return size

    async def open(
        self, repository: RepositoryName, digest: Digest, range_header: str | None
    ) -> BlobStream:
        size = await self._local_size(repository, digest)
        if size is not None:
            return self._from_store(digest, size, range_header)
        if self.flights.get(digest) is None and await self._store.blobs.size(digest) is not None:
            await self._confirm(repository, digest)  # stored for another repository
            return await self._stored(digest, range_header)
        fetch = self.flights.get(digest)  # looked up again: the awaits above let others in
        if fetch is None:
            fetch = self.flights.start(digest, repository, lambda: self._fetch(repository, digest))
        elif fetch.repository != repository:
            await self._confirm(repository, digest)
        announced = await fetch.started()
        # A range (or an unknown size) waits for the verified blob: a complete 206 of
        # unverified bytes could not be taken back.
        if announced is None or parse_range(range_header, announced) is not None:
            await fetch.finished()
            return await self._stored(digest, range_header)
        return BlobStream(digest, announced, fetch.chunks())

    async def _fetch(self, repository: RepositoryName, digest: Digest) -> BlobSource:
        try:
            source = await self._upstream.open_blob(repository, digest)
        except FALLBACK_ERRORS as exc:
            raise not_cached(self._upstream.url, f"blob {repository}@{digest}", exc) from exc
        await self._store.repositories.link_blob(repository, digest)
        return source

    async def _stored(self, digest: Digest, range_header: str | None) -> BlobStream:
        size = await self._store.blobs.size(digest)
        if size is None:  # removed meanwhile; never expected of a cache
            raise UpstreamError(f"blob {digest} vanished from the cache")
        return self._from_store(digest, size, range_header)

    def _from_store(self, digest: Digest, size: int, range_header: str | None) -> BlobStream:
        return stored_blob(self._store.blobs, digest, size, range_header)

    async def close(self) -> None:
        await self.flights.close()
