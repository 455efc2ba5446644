"""What a content store offers, whatever keeps the bytes.

Two halves, like distribution's storage: a ``BlobStore`` of immutable content addressed by
digest (manifests are blobs too), shared by every repository; and a ``RepositoryStore`` of
per-repository facts: which digests belong to a repository (its links), manifest media
types, subjects (for referrers) and cached tags. Content is served under a repository only
when both agree: the bytes exist and the repository links them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from imagegate.core.digests import Digest
from imagegate.core.names import RepositoryName


class WriterClosed(Exception):
    """The writer was committed or aborted; its bytes are no longer readable through it."""


class PartialReader(Protocol):
    """One reader's own handle on a blob still being written (see ``BlobWriter.open_reader``)."""

    async def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``, which the writer has already written."""
        ...

    def close(self) -> None:
        """Release the handle; safe while a read is still in flight."""
        ...


class BlobWriter(Protocol):
    """A blob being written: invisible until ``commit`` verifies and publishes it.

    ``verify`` then ``commit`` lets a caller act on verified bytes (hand them to readers)
    before they are durable and visible in the store.
    """

    @property
    def written(self) -> int:
        """How many bytes were written so far."""
        ...

    async def write(self, chunk: bytes) -> None:
        """Append ``chunk`` (hashing it on the way)."""
        ...

    async def open_reader(self) -> PartialReader:
        """A handle for a reader that follows the write in progress.

        It keeps reading the bytes written so far, whatever becomes of the writer. Raises
        ``WriterClosed`` once the writer is committed or aborted: readers then read the
        committed blob from the store (or give up).
        """
        ...

    async def verify(self, digest: Digest, size: int | None = None) -> None:
        """Check the content against ``digest`` (and ``size``); no more writes after it.

        On a mismatch the content is discarded and ``DigestInvalid`` (or ``SizeInvalid``) is
        raised. Verified content is still invisible: ``commit`` or ``abort`` follows.
        """
        ...

    async def commit(self, digest: Digest, size: int | None = None) -> None:
        """Verify the content (unless ``verify`` did), make it durable and visible.

        On a mismatch, as ``verify``. If publishing fails the content is discarded and the
        error raised: nothing is visible. Committing content that already exists keeps the
        existing blob.
        """
        ...

    async def abort(self) -> None:
        """Discard everything written; harmless after ``commit`` or a previous ``abort``."""
        ...


class BlobStore(Protocol):
    """Immutable content addressed by digest."""

    async def size(self, digest: Digest) -> int | None:
        """The size of a stored blob, or None when it is not stored."""
        ...

    def read(self, digest: Digest, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes ``start`` to ``end`` (inclusive; default the last) in chunks.

        Raises ``BlobUnknown`` when iteration starts and the blob is not stored.
        """
        ...

    async def open_file(self, digest: Digest) -> BinaryIO:
        """A stored blob opened for reading (for the kernel to send); the caller closes it.

        Raises ``BlobUnknown`` when it is not stored. The open file reads the same bytes
        whatever happens to the blob afterwards.
        """
        ...

    async def read_bytes(self, digest: Digest, limit: int) -> bytes | None:
        """A small blob (a manifest) whole, or None if not stored; refuses more than ``limit``."""
        ...

    async def create(self, algorithm: str = "sha256") -> BlobWriter:
        """Start writing a blob whose digest will be checked at ``commit``."""
        ...

    async def writable(self) -> bool:
        """True when new content can be written (for readiness checks)."""
        ...


@dataclass(frozen=True)
class ManifestLink:
    """A manifest a repository holds: its digest and the media type it was served with."""

    digest: Digest
    media_type: str


class RepositoryStore(Protocol):
    """Per-repository metadata: links, manifest media types, referrers and cached tags."""

    async def link_blob(self, repository: RepositoryName, digest: Digest) -> None:
        """Record that ``digest`` belongs to ``repository`` (a layer, config or child)."""
        ...

    async def link_manifest(
        self,
        repository: RepositoryName,
        link: ManifestLink,
        subject: Digest | None = None,
    ) -> None:
        """Record a manifest of ``repository``; with ``subject``, also as one of its referrers."""
        ...

    async def is_linked(self, repository: RepositoryName, digest: Digest) -> bool:
        """True when ``digest`` belongs to ``repository`` as a blob or a manifest."""
        ...

    async def manifest(self, repository: RepositoryName, digest: Digest) -> ManifestLink | None:
        """The manifest link of ``digest`` in ``repository``, if it is one of its manifests."""
        ...

    async def referrers(self, repository: RepositoryName, subject: Digest) -> list[ManifestLink]:
        """Manifests of ``repository`` whose ``subject`` is ``subject``."""
        ...

    async def set_tag(self, repository: RepositoryName, tag: str, digest: Digest) -> None:
        """Remember that ``tag`` last resolved to ``digest``."""
        ...

    async def tag(self, repository: RepositoryName, tag: str) -> Digest | None:
        """The digest ``tag`` last resolved to, if known."""
        ...

    async def tags(self, repository: RepositoryName) -> list[str]:
        """Every remembered tag of ``repository``, sorted."""
        ...


@dataclass(frozen=True)
class ContentStore:
    """Both halves of a store, as the proxy (and later hosted repositories) use them."""

    blobs: BlobStore
    repositories: RepositoryStore
