"""Manifests through the cache: tags re-resolved upstream, digests served locally.

A tag is resolved with an upstream HEAD (free of Docker Hub's rate limit) on every
request; its digest is then served from the cache when this repository already holds it,
else fetched, verified and stored. When the upstream is down (or limiting us), the tag
falls back to the digest it last resolved to. A digest is served from the cache only
if this repository holds it; otherwise the upstream must serve it for this repository.

Storing a manifest links the manifest alone, never the blobs it names: its bytes are
the upstream's word, and a hostile one could name any digest (a private hosted layer
among them). A blob joins the repository when the upstream serves or confirms it for
that repository (``blobs``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from imagegate.core.digests import Digest
from imagegate.core.errors import RegistryError, UpstreamError
from imagegate.core.names import Reference, RepositoryName
from imagegate.proxy.descriptors import ALL_MANIFEST_TYPES, media_type_in, references
from imagegate.proxy.errors import FALLBACK_ERRORS, not_cached
from imagegate.proxy.interfaces import Manifest
from imagegate.storage.interfaces import ContentStore, ManifestLink
from imagegate.upstream.client import MANIFEST_LIMIT, UpstreamClient, UpstreamManifest

logger = logging.getLogger("imagegate.proxy.manifests")


class ProxyManifests:
    def __init__(self, store: ContentStore, upstream: UpstreamClient) -> None:
        self._store = store
        self._upstream = upstream

    async def get(
        self, repository: RepositoryName, reference: Reference, accept: Sequence[str]
    ) -> Manifest:
        accept = list(accept) or list(ALL_MANIFEST_TYPES)
        if reference.digest is not None:
            return await self._by_digest(repository, reference.digest, accept)
        assert reference.tag is not None
        return await self._by_tag(repository, reference.tag, accept)

    async def cached(self, repository: RepositoryName, digest: Digest) -> Manifest | None:
        """The manifest if ``repository`` holds it and its bytes are stored."""
        link = await self._store.repositories.manifest(repository, digest)
        if link is None:
            return None
        body = await self._store.blobs.read_bytes(digest, MANIFEST_LIMIT)
        return None if body is None else Manifest(digest, link.media_type, body)

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

    async def _by_tag(self, repository: RepositoryName, tag: str, accept: list[str]) -> Manifest:
        try:
            head = await self._upstream.head_manifest(repository, tag, accept)
            manifest = await self.cached(repository, head.digest) if head.digest else None
            if manifest is None:
                # By digest when we know it, so a tag moved meanwhile cannot mix answers.
                reference = str(head.digest) if head.digest else tag
                fetched = await self._upstream.get_manifest(repository, reference, accept)
                digest = head.digest or Digest.of(fetched.body)
                manifest = await self._keep(repository, digest, fetched)
        except FALLBACK_ERRORS as exc:
            return await self._fallback(repository, tag, exc)
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
        return Manifest(digest, media_type, fetched.body)
