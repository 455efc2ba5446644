"""Manifests through the cache: tags resolved upstream and remembered, digests served locally.

A tag is resolved with an upstream HEAD (free of Docker Hub's rate limit) and then
remembered for a while (``tagmemory``): within its TTL it is answered without asking
upstream; after it, one request per tag revalidates it (conditionally, with the digest
it had), serving the old digest meanwhile for a bounded time. Its digest is then served
from the cache when this repository already holds it, else fetched, verified and stored.
When the upstream is down (or limiting us), the tag falls back to the digest it last
resolved to. A digest is served from the cache only if this repository holds it;
otherwise the upstream must serve it for this repository.

Memory keeps manifest bytes by digest (immutable), bounded by bytes, and which proxied
repository holds which manifest: safe to remember, since a proxied repository's links
are only ever added (hosted repositories, whose manifests may be deleted, are not served
here). Every request still asks whether this repository holds the digest.

Storing a manifest links the manifest alone, never the blobs it names: its bytes are
the upstream's word, and a hostile one could name any digest (a private hosted layer
among them). A blob joins the repository when the upstream serves or confirms it for
that repository (``blobs``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from imagegate.auth.cache import BoundedCache, digest_key
from imagegate.core.digests import Digest
from imagegate.core.errors import RegistryError, UpstreamError
from imagegate.core.names import Reference, RepositoryName
from imagegate.proxy.descriptors import ALL_MANIFEST_TYPES, media_type_in, references
from imagegate.proxy.errors import FALLBACK_ERRORS, not_cached
from imagegate.proxy.interfaces import Manifest
from imagegate.proxy.tagmemory import Age, RememberedTag, TagFreshness
from imagegate.storage.interfaces import ContentStore, ManifestLink
from imagegate.upstream.client import MANIFEST_LIMIT, UpstreamClient, UpstreamManifest

logger = logging.getLogger("imagegate.proxy.manifests")

# Remembered tags and links are small (a digest, a media type): a fixed budget each holds
# tens of thousands, and bounds what clients naming many tags or Accept lists can cost.
TAG_MEMORY_BYTES = 8 * 1024 * 1024
LINK_MEMORY_BYTES = 8 * 1024 * 1024
_REMEMBERED_TAG_BYTES = 200  # a RememberedTag and its Digest, by sys.getsizeof, rounded up
_LINK_BYTES = 100  # a media type string besides its characters


def _link_key(repository: RepositoryName, digest: Digest) -> bytes:
    return digest_key(repository.full, str(digest))


def _body_key(digest: Digest) -> bytes:
    return digest_key(str(digest))


@dataclass(frozen=True)
class _TagQuery:
    repository: RepositoryName
    tag: str
    accept: list[str]

    @property
    def key(self) -> bytes:
        # The upstream's answer for a tag depends on the Accept list (a manifest list or
        # one platform's manifest), so it is part of what is remembered.
        return digest_key(self.repository.full, self.tag, *sorted(set(self.accept)))


class ProxyManifests:
    def __init__(
        self,
        store: ContentStore,
        upstream: UpstreamClient,
        freshness: TagFreshness,
        cache_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._upstream = upstream
        self._freshness = freshness
        self._clock = clock
        self._tags: BoundedCache[RememberedTag] = BoundedCache(TAG_MEMORY_BYTES, clock)
        self._bodies: BoundedCache[bytes] = BoundedCache(cache_bytes, clock)  # by digest
        # The media type a proxied repository's link gives a manifest, by (repository, digest).
        self._links: BoundedCache[str] = BoundedCache(LINK_MEMORY_BYTES, clock)
        self._revalidations: dict[bytes, asyncio.Task[Manifest]] = {}

    async def get(
        self, repository: RepositoryName, reference: Reference, accept: Sequence[str]
    ) -> Manifest:
        accept = list(accept) or list(ALL_MANIFEST_TYPES)
        if reference.digest is not None:
            return await self._by_digest(repository, reference.digest, accept)
        assert reference.tag is not None
        query = _TagQuery(repository, reference.tag, accept)
        if not self._freshness.remembers:
            return await self._resolved_or_fallback(query)
        return await self._by_tag(query)

    async def cached(self, repository: RepositoryName, digest: Digest) -> Manifest | None:
        """The manifest if ``repository`` holds it and its bytes are stored."""
        link_key = _link_key(repository, digest)
        media_type = self._links.get(link_key)
        if media_type is None:
            link = await self._store.repositories.manifest(repository, digest)
            if link is None:
                return None
            media_type = link.media_type
            self._links.put(link_key, media_type, len(media_type) + _LINK_BYTES, math.inf)
        body_key = _body_key(digest)
        body = self._bodies.get(body_key)
        if body is None:
            body = await self._store.blobs.read_bytes(digest, MANIFEST_LIMIT)
            if body is None:
                return None
            self._bodies.put(body_key, body, len(body), math.inf)
        return Manifest(digest, media_type, body)

    @property
    def memory_bytes(self) -> int:
        """What the manifests kept in memory cost (at most the budget given)."""
        return self._bodies.nbytes

    async def close(self) -> None:
        """Stop revalidations in progress."""
        tasks = list(self._revalidations.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _by_digest(
        self, repository: RepositoryName, digest: Digest, accept: list[str]
    ) -> Manifest:
        cached = await self.cached(repository, digest)
        if cached is not None:
            return cached
        try:
            fetched = await self._upstream.get_manifest(repository, str(digest), accept)
        except FALLBACK_ERRORS as exc:
            raise not_cached(self._upstream.url, f"manifest {repository}@{digest}", exc) from exc
        return await self._keep(repository, digest, fetched)

    async def _by_tag(self, query: _TagQuery) -> Manifest:
        key = query.key
        remembered = self._tags.get(key)
        if remembered is not None:
            age = self._freshness.age(remembered.resolved_at, self._clock())
            manifest = (
                await self.cached(query.repository, remembered.digest)
                if age is not Age.EXPIRED
                else None
            )
            if manifest is not None:
                if age is Age.STALE:
                    self._revalidation(key, query, remembered.digest)
                return manifest
        task = self._revalidation(key, query, remembered.digest if remembered else None)
        await asyncio.wait([task])  # not cancelled with this request: others may wait on it
        error = task.exception()
        if error is None:
            return task.result()
        if isinstance(error, FALLBACK_ERRORS):
            return await self._fallback(query.repository, query.tag, error)
        # A copy per waiter: one exception object raised in many tasks piles up tracebacks.
        raise copy.copy(error) from error

    def _revalidation(
        self, key: bytes, query: _TagQuery, known: Digest | None
    ) -> asyncio.Task[Manifest]:
        """The one revalidation of this tag in progress, started if there is none."""
        task = self._revalidations.get(key)
        if task is None:
            task = asyncio.create_task(
                self._revalidate(key, query, known),
                name=f"revalidate {query.repository}:{query.tag}",
            )
            self._revalidations[key] = task
            task.add_done_callback(self._revalidated)
        return task

    async def _revalidate(self, key: bytes, query: _TagQuery, known: Digest | None) -> Manifest:
        try:
            manifest = await self._resolve(query, known)
        except FALLBACK_ERRORS:
            raise  # still remembered: the upstream may answer the next revalidation
        except RegistryError:
            self._tags.discard(key)  # gone upstream (or refused): ask again next time
            raise
        finally:
            if self._revalidations.get(key) is asyncio.current_task():
                del self._revalidations[key]
        self._tags.put(
            key, RememberedTag(manifest.digest, self._clock()), _REMEMBERED_TAG_BYTES, math.inf
        )
        return manifest

    @staticmethod
    def _revalidated(task: asyncio.Task[Manifest]) -> None:
        """Retrieve a failure nobody waited for (a stale tag's background revalidation)."""
        if not task.cancelled() and (error := task.exception()) is not None:
            if isinstance(error, RegistryError):
                logger.info("tag revalidation failed: %s", error.message)
            else:
                logger.error("tag revalidation failed", exc_info=error)

    async def _resolved_or_fallback(self, query: _TagQuery) -> Manifest:
        try:
            return await self._resolve(query, None)
        except FALLBACK_ERRORS as exc:
            return await self._fallback(query.repository, query.tag, exc)

    async def _resolve(self, query: _TagQuery, known: Digest | None) -> Manifest:
        """Ask the upstream what the tag is now (conditionally when ``known``), get its
        manifest, and record the tag on disk for the fallback."""
        repository, tag, accept = query.repository, query.tag, query.accept
        head = await self._upstream.head_manifest(repository, tag, accept, known)
        manifest = await self.cached(repository, head.digest) if head.digest else None
        if manifest is None:
            # By digest when we know it, so a tag moved meanwhile cannot mix answers.
            reference = str(head.digest) if head.digest else tag
            fetched = await self._upstream.get_manifest(repository, reference, accept)
            digest = head.digest or Digest.of(fetched.body)
            manifest = await self._keep(repository, digest, fetched)
        await self._store.repositories.set_tag(repository, tag, manifest.digest)
        return manifest

    async def _fallback(
        self, repository: RepositoryName, tag: str, cause: RegistryError
    ) -> Manifest:
        digest = await self._store.repositories.tag(repository, tag)
        cached = await self.cached(repository, digest) if digest is not None else None
        if cached is None:
            raise not_cached(self._upstream.url, f"{repository}:{tag}", cause) from cause
        logger.warning(
            "serving cached tag: %s",
            cause.message,
            extra={"repository": str(repository), "tag": tag, "digest": str(digest)},
        )
        return cached

    async def _keep(
        self, repository: RepositoryName, digest: Digest, fetched: UpstreamManifest
    ) -> Manifest:
        """Verify a fetched manifest, store it, and link it (with its subject, for
        referrers) to ``repository``."""
        for claimed in (digest, fetched.digest):
            if claimed is None:
                continue
            actual = Digest.of(fetched.body, claimed.algorithm)
            if actual != claimed:
                raise UpstreamError(
                    f"upstream {self._upstream.url} sent manifest bytes for "
                    f"{repository}@{claimed} whose digest is {actual}",
                    detail={"expected": str(claimed), "actual": str(actual)},
                )
        media_type = fetched.media_type or media_type_in(fetched.body) or "application/octet-stream"
        writer = await self._store.blobs.create(digest.algorithm)
        try:
            await writer.write(fetched.body)
            await writer.commit(digest, len(fetched.body))
        finally:
            await writer.abort()  # a no-op once committed
        link = ManifestLink(digest, media_type)
        await self._store.repositories.link_manifest(
            repository, link, references(fetched.body).subject
        )
        logger.info(
            "cached manifest",
            extra={"repository": str(repository), "digest": str(digest), "media_type": media_type},
        )
        self._links.put(
            _link_key(repository, digest), media_type, len(media_type) + _LINK_BYTES, math.inf
        )
        self._bodies.put(_body_key(digest), fetched.body, len(fetched.body), math.inf)
        return Manifest(digest, media_type, fetched.body)
