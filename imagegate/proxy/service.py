"""``ProxyContent``: the pull side of ``RegistryContent``, a cache in front of an upstream.

It composes the local store (``imagegate.storage``) with the upstream client
(``imagegate.upstream``), like distribution's ``registry/proxy``: manifests and blobs
come from the cache when the repository holds them and from the upstream otherwise (a
blob stored for another repository once the upstream confirms it for this one); tags
are resolved upstream, remembered for a while (``tagmemory``), and fall back to what is
cached when the upstream is down or limits us; referrers fall back to what is cached on
any upstream error.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Sequence

from imagegate.config import Settings
from imagegate.core.digests import Digest
from imagegate.core.errors import RegistryError
from imagegate.core.names import Reference, RepositoryName
from imagegate.proxy.blobs import ProxyBlobs
from imagegate.proxy.errors import FALLBACK_ERRORS, not_cached
from imagegate.proxy.interfaces import BlobStream, Manifest, TagPage
from imagegate.proxy.manifests import ProxyManifests
from imagegate.proxy.referrers import local_referrers
from imagegate.proxy.tagmemory import TagFreshness
from imagegate.storage.filesystem import open_filesystem_store
from imagegate.storage.interfaces import ContentStore
from imagegate.upstream.client import UpstreamClient

logger = logging.getLogger("imagegate.proxy")

MIB = 1024 * 1024
# The settings' defaults (``IMAGEGATE_TAG_TTL_SECONDS``, ``IMAGEGATE_TAG_STALE_SECONDS``,
# ``IMAGEGATE_MANIFEST_CACHE_MIB``).
DEFAULT_TAG_FRESHNESS = TagFreshness(Settings.tag_ttl_seconds, Settings.tag_stale_seconds)
DEFAULT_MANIFEST_CACHE_BYTES = Settings.manifest_cache_mib * MIB


def tag_page(
    repository: RepositoryName, tags: Sequence[str], n: int | None, last: str | None
) -> TagPage:
    """One page of ``tags`` (sorted) strictly after ``last``, at most ``n``."""
    ordered = sorted(tags)
    start = bisect.bisect_right(ordered, last) if last is not None else 0
    end = len(ordered) if n is None else start + n
    page = ordered[start:end]
    return TagPage(repository, page, page[-1] if page and end < len(ordered) else None)


class ProxyContent:
    """Registry content for pulls: ``store`` as a cache of ``upstream``."""

    def __init__(
        self,
        store: ContentStore,
        upstream: UpstreamClient,
        tags: TagFreshness = DEFAULT_TAG_FRESHNESS,
        manifest_cache_bytes: int = DEFAULT_MANIFEST_CACHE_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._upstream = upstream
        self._manifests = ProxyManifests(store, upstream, tags, manifest_cache_bytes, clock)
        self._blobs = ProxyBlobs(store, upstream)

    @property
    def store(self) -> ContentStore:
        """The cache this content fills; hosted repositories share its blobs (by digest;
        their links are kept apart, ``hosted.layout``)."""
        return self._store

    @property
    def manifest_memory_bytes(self) -> int:
        """What manifests kept in memory cost, within ``manifest_cache_bytes``."""
        return self._manifests.memory_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> ProxyContent:
        """The store at ``settings.cache_dir`` in front of ``settings.upstream_url``.

        Blocking (it prepares the cache directory): call it at startup.
        """
        upstream = UpstreamClient(
            settings.upstream_url,
            settings.upstream_credentials,
            settings.upstream_timeout_seconds,
        )
        return cls(
            open_filesystem_store(settings.cache_dir),
            upstream,
            TagFreshness(settings.tag_ttl_seconds, settings.tag_stale_seconds),
            settings.manifest_cache_mib * MIB,
        )

    async def get_manifest(
        self, repository: RepositoryName, reference: Reference, accept: Sequence[str]
    ) -> Manifest:
        return await self._manifests.get(repository, reference, accept)

    async def head_blob(self, repository: RepositoryName, digest: Digest) -> int:
        return await self._blobs.head(repository, digest)

    async def open_blob(
        self, repository: RepositoryName, digest: Digest, range_header: str | None
    ) -> BlobStream:
        return await self._blobs.open(repository, digest, range_header)

    async def list_tags(
        self, repository: RepositoryName, n: int | None, last: str | None
    ) -> TagPage:
        if n == 0:
            return TagPage(repository, [], None)
        try:
            page = await self._upstream.list_tags(repository, n, last)
        except FALLBACK_ERRORS as exc:
            cached = await self._store.repositories.tags(repository)
            if not cached:
                raise not_cached(self._upstream.url, f"the tags of {repository}", exc) from exc
            logger.warning(
                "serving cached tags: %s", exc.message, extra={"repository": str(repository)}
            )
            return tag_page(repository, cached, n, last)
        if page.next_last is not None:
            return page
        # Without a Link the page may be everything (distribution 2.8 ignores n and last
        # and does not sort): cut it to what was asked; a no-op for a registry that obeyed.
        return tag_page(repository, page.tags, n, last)

    async def referrers(
        self, repository: RepositoryName, digest: Digest, artifact_type: str | None
    ) -> tuple[bytes, bool]:
        try:
            answer = await self._upstream.referrers(repository, digest, artifact_type)
        except RegistryError as exc:  # the referrers API never 404s: use what we have
            logger.info(
                "referrers from cache: %s", exc.message, extra={"repository": str(repository)}
            )
            answer = None
        if answer is not None:
            return answer
        return await local_referrers(self._store, repository, digest, artifact_type)

    async def ready(self) -> bool:
        return await self._store.blobs.writable()

    async def close(self) -> None:
        await self._manifests.close()
        await self._blobs.close()
        await self._upstream.close()
