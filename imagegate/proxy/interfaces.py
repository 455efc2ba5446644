"""What the HTTP layer needs from registry content, whatever serves it.

Authorization is decided before these are called; implementations enforce only that a
digest is served under a repository it belongs to (a digest never opens a door).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from imagegate.core.digests import Digest
from imagegate.core.names import Reference, RepositoryName

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Manifest:
    digest: Digest
    media_type: str
    body: bytes  # manifests are small (at most 4 MiB); the exact bytes, never re-encoded


@dataclass(frozen=True)
class ByteRange:
    """An inclusive, already-validated byte range within a blob of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass
class BlobStream:
    """A blob (or a range of it) ready to stream.

    ``size`` is the full blob size; ``byte_range`` is set for a 206 answer. Iterating
    ``chunks`` yields at most CHUNK_SIZE bytes at a time; if the content turns out
    corrupt while streaming, iteration raises and the response must be aborted.
    ``open_file``, set when the blob is stored whole, opens it for the kernel to send
    instead (the range at its offset); the caller closes it. A blob still being fetched
    has only its chunks.
    """

    digest: Digest
    size: int
    chunks: AsyncIterator[bytes]
    byte_range: ByteRange | None = None
    open_file: Callable[[], Awaitable[BinaryIO]] | None = None


@dataclass(frozen=True)
class TagPage:
    name: RepositoryName
    tags: list[str]
    next_last: str | None  # set when more tags follow: the ``last`` for the next page


class RegistryContent(Protocol):
    async def get_manifest(
        self, repository: RepositoryName, reference: Reference, accept: Sequence[str]
    ) -> Manifest:
        """The manifest for a tag or digest; ManifestUnknown if there is none."""
        ...

    async def head_blob(self, repository: RepositoryName, digest: Digest) -> int:
        """The size of a blob of ``repository``; BlobUnknown if it has none by that digest."""
        ...

    async def open_blob(
        self, repository: RepositoryName, digest: Digest, range_header: str | None
    ) -> BlobStream:
        """A blob of ``repository``, whole or the range asked for; RangeInvalid if unsatisfiable."""
        ...

    async def list_tags(
        self, repository: RepositoryName, n: int | None, last: str | None
    ) -> TagPage:
        """Tags in lexical order, strictly after ``last``, at most ``n``."""
        ...

    async def referrers(
        self, repository: RepositoryName, digest: Digest, artifact_type: str | None
    ) -> tuple[bytes, bool]:
        """An OCI image index of the referrers; the flag says the artifactType filter applied."""
        ...

    async def ready(self) -> bool:
        """True when the store is writable (for /readyz)."""
        ...

    async def close(self) -> None:
        """Release connections and stop background work."""
        ...
