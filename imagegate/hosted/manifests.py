"""Manifests of hosted repositories: put (validated, exact bytes), get, delete, referrers.

A put checks, while holding the gc lock shared, that every blob the manifest names is
linked to this repository and still stored, and every child of an index is a manifest
of this repository; then it counts the bytes against the organization's quota, stores
them as a blob, writes the manifest link and finally the tags. Holding the lock across
check and commit means the collector's sweep either sees the new manifest (and keeps
what it names) or runs before the check.
"""

from __future__ import annotations

from collections.abc import Sequence

from imagegate.core.digests import Digest
from imagegate.core.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
)
from imagegate.core.names import Reference, RepositoryName
from imagegate.hosted.interfaces import MAX_MANIFEST_BYTES, PushedManifest, StorageLedger
from imagegate.hosted.locking import GcLock
from imagegate.hosted.metadata import HostedMetadata
from imagegate.hosted.validation import Descriptor, ValidManifest, validate_manifest
from imagegate.proxy.descriptors import references
from imagegate.proxy.interfaces import Manifest
from imagegate.proxy.referrers import referrers_index
from imagegate.storage.interfaces import BlobStore, ManifestLink


def name_unknown(repository: RepositoryName) -> NameUnknown:
    return NameUnknown(
        f"repository {repository} has nothing pushed to it", detail={"name": repository.full}
    )


class HostedManifests:
    def __init__(
        self, blobs: BlobStore, metadata: HostedMetadata, gc_lock: GcLock, ledger: StorageLedger
    ) -> None:
        self._blobs = blobs
        self._metadata = metadata
        self._gc_lock = gc_lock
        self._ledger = ledger

    async def put(
        self,
        repository: RepositoryName,
        reference: Reference,
        media_type: str,
        body: bytes,
        tags: Sequence[str] = (),
    ) -> PushedManifest:
        manifest = validate_manifest(media_type, body)
        algorithm = reference.digest.algorithm if reference.digest else "sha256"
        digest = Digest.of(body, algorithm)
        if reference.digest is not None and reference.digest != digest:
            raise DigestInvalid(
                f"manifest bytes have digest {digest}, not {reference.digest}",
                detail={"expected": str(reference.digest), "actual": str(digest)},
            )
        all_tags = list(dict.fromkeys([*([reference.tag] if reference.tag else []), *tags]))
        async with self._gc_lock.shared():
            await self._check_references(repository, manifest)
            await self._ledger.charge(repository.namespace, digest, len(body))
            writer = await self._blobs.create(algorithm)
            try:
                await writer.write(body)
                await writer.commit(digest, len(body))
            finally:
                await writer.abort()  # a no-op once committed
            link = ManifestLink(digest, manifest.media_type)
            await self._metadata.link_manifest(repository, link, manifest.subject)
            for tag in all_tags:
                await self._metadata.set_tag(repository, tag, digest)
        return PushedManifest(digest, manifest.subject, all_tags)

    async def _check_references(self, repository: RepositoryName, manifest: ValidManifest) -> None:
        missing: list[str] = []
        for blob in manifest.blobs:
            if await self._metadata.has_blob(repository, blob.digest):
                await self._check_size(blob, missing)
            elif not blob.external:  # foreign layers are fetched from their urls
                missing.append(str(blob.digest))
        for child in manifest.children:
            if await self._metadata.manifest(repository, child.digest) is None:
                missing.append(str(child.digest))
            else:
                await self._check_size(child, missing)
        if missing:
            raise ManifestBlobUnknown(
                f"manifest references content not pushed to {repository}: "
                f"{', '.join(missing)}; push (or mount) the blobs and child manifests first",
                detail={"missing": missing},
            )

    async def _check_size(self, descriptor: Descriptor, missing: list[str]) -> None:
        size = await self._blobs.size(descriptor.digest)
        if size is None:  # linked but gone (garbage collected): as good as never pushed
            missing.append(str(descriptor.digest))
        elif size != descriptor.size:
            raise ManifestInvalid(
                f"descriptor of {descriptor.digest} says {descriptor.size} bytes; "
                f"the stored content is {size}",
                detail={"digest": str(descriptor.digest), "size": descriptor.size, "stored": size},
            )

    async def _resolve(self, repository: RepositoryName, reference: Reference) -> Digest:
        if reference.digest is not None:
            return reference.digest
        assert reference.tag is not None
        digest = await self._metadata.tag(repository, reference.tag)
        if digest is None:
            if not await self._metadata.exists(repository):
                raise name_unknown(repository)
            raise ManifestUnknown(
                f"tag {reference.tag} is not known in {repository}",
                detail={"name": repository.full, "tag": reference.tag},
            )
        return digest

    async def get(self, repository: RepositoryName, reference: Reference) -> Manifest:
        digest = await self._resolve(repository, reference)
        link = await self._metadata.manifest(repository, digest)
        body = (
            await self._blobs.read_bytes(digest, MAX_MANIFEST_BYTES) if link is not None else None
        )
        if link is None or body is None:
            if not await self._metadata.exists(repository):
                raise name_unknown(repository)
            raise ManifestUnknown(
                f"manifest {repository}@{reference} is not known",
                detail={"name": repository.full, "reference": str(reference)},
            )
        return Manifest(digest, link.media_type, body)

    async def delete(self, repository: RepositoryName, digest: Digest) -> None:
        manifest = await self.get(repository, Reference(digest=digest))
        subject = references(manifest.body).subject
        if not await self._metadata.unlink_manifest(repository, digest, subject):
            raise ManifestUnknown(f"manifest {repository}@{digest} is not known")

    async def delete_tag(self, repository: RepositoryName, tag: str) -> None:
        if not await self._metadata.remove_tag(repository, tag):
            if not await self._metadata.exists(repository):
                raise name_unknown(repository)
            raise ManifestUnknown(
                f"tag {tag} is not known in {repository}",
                detail={"name": repository.full, "tag": tag},
            )

    async def referrers(
        self, repository: RepositoryName, subject: Digest, artifact_type: str | None
    ) -> tuple[bytes, bool]:
        """An OCI index of this repository's manifests whose subject is ``subject`` (empty,
        never an error, for an unknown digest or repository)."""
        referrers = []
        for link in await self._metadata.referrers(repository, subject):
            body = await self._blobs.read_bytes(link.digest, MAX_MANIFEST_BYTES)
            if body is not None:
                referrers.append((link, body))
        return referrers_index(referrers, artifact_type)
