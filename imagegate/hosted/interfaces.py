"""What the HTTP layer needs to write to hosted repositories (reads: ``RegistryContent``).

Authorization is decided before these are called. Every method raises the registry
errors of ``imagegate.core.errors`` with messages a person can act on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from imagegate.core.digests import Digest
from imagegate.core.names import Reference, RepositoryName
from imagegate.core.policy import Location
from imagegate.core.quota import StorageUsage
from imagegate.proxy.interfaces import RegistryContent

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class UploadStatus:
    upload_id: str
    repository: RepositoryName
    offset: int  # bytes received so far; the ``Range`` header is ``0-(offset-1)``


@dataclass(frozen=True)
class PushedManifest:
    digest: Digest
    subject: Digest | None  # for the ``OCI-Subject`` header
    tags: list[str] = field(default_factory=list)  # tags now pointing at it


class StorageLedger(Protocol):
    """What each organization stores, against its quota (``services.quotas``)."""

    async def usage(self, org: str) -> StorageUsage:
        """Bytes ``org``'s repositories hold, and its quota (``None``: no limit)."""
        ...

    async def charge(self, org: str, digest: Digest, size: int) -> None:
        """Count ``digest`` for ``org`` unless it is counted already; ``Denied`` (and
        nothing counted) when that would take ``org`` past its quota."""
        ...

    async def release(self, org: str, digest: Digest) -> None:
        """No repository of ``org`` holds ``digest`` any more."""
        ...


class Unmetered:
    """A ledger with no quotas that counts nothing (hosted content without a database)."""

    async def usage(self, org: str) -> StorageUsage:
        return StorageUsage(org, 0, None)

    async def charge(self, org: str, digest: Digest, size: int) -> None:
        return None

    async def release(self, org: str, digest: Digest) -> None:
        return None


class HostedRegistry(RegistryContent, Protocol):
    """Reads as ``RegistryContent`` (all local, no upstream) plus the writes below."""

    async def start_upload(self, repository: RepositoryName, *, by: str = "") -> UploadStatus:
        """A new upload session for user ``by``: ``TooManyRequests`` past the open sessions
        allowed in all, per user and per repository (idle ones expire); ``Denied`` when
        the organization's storage quota is used up."""
        ...

    async def upload_status(self, repository: RepositoryName, upload_id: str) -> UploadStatus:
        """BlobUploadUnknown for an unknown, finished, cancelled or expired session."""
        ...

    async def append(
        self,
        repository: RepositoryName,
        upload_id: str,
        body: AsyncIterator[bytes],
        start: int | None,
        length: int | None,
    ) -> UploadStatus:
        """Append a chunk. ``start`` (from Content-Range) must equal the current offset,
        else RangeInvalid (416); ``length`` (Content-Length), when given, must match the
        bytes received, else SizeInvalid. Bytes received before a dropped connection are
        kept, so the client can ask the status and resume. An upload that outgrows what
        the organization's quota leaves is dropped with ``Denied``."""
        ...

    async def finish(
        self,
        repository: RepositoryName,
        upload_id: str,
        digest: Digest,
        body: AsyncIterator[bytes] | None,
        start: int | None,
        length: int | None,
    ) -> Digest:
        """Append the optional final chunk, verify ``digest`` (DigestInvalid, session
        kept), count it against the organization's quota (``Denied``, session dropped),
        store the blob atomically and link it to ``repository``."""
        ...

    async def cancel(self, repository: RepositoryName, upload_id: str) -> None:
        """Drop the session and its bytes."""
        ...

    async def mount(self, repository: RepositoryName, digest: Digest, source: Location) -> bool:
        """Link ``digest`` into ``repository`` from where the mount's source name keeps its
        content (its pull decision's ``location``: a hosted repository, or the cache of
        an upstream name), looked up there only; False if it does not hold it. The
        caller decided that the pusher may read the source. ``Denied`` when it would take
        the organization past its quota."""
        ...

    async def put_manifest(
        self, repository: RepositoryName, reference: Reference, media_type: str, body: bytes
    ) -> PushedManifest:
        """Store the exact bytes. ManifestInvalid for bad JSON or a media type that does not
        match; SizeInvalid (413) over MAX_MANIFEST_BYTES; DigestInvalid when pushed by a
        digest the bytes do not have; ManifestBlobUnknown naming each missing blob or child
        manifest of this repository (a missing ``subject`` is accepted); ``Denied`` when
        the organization's quota leaves no room for the manifest's bytes."""
        ...

    async def delete_manifest(self, repository: RepositoryName, digest: Digest) -> None:
        """Remove the manifest from the repository and every tag pointing at it."""
        ...

    async def delete_tag(self, repository: RepositoryName, tag: str) -> None:
        """Remove one tag; the manifest stays reachable by digest."""
        ...

    async def delete_blob(self, repository: RepositoryName, digest: Digest) -> None:
        """Unlink a blob from the repository (the bytes go at the next garbage collection)."""
        ...
