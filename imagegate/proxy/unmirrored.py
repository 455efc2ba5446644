"""``Unmirrored``: what a name in an organization's namespace serves when it is neither
hosted here nor mirrored from the upstream. Nothing: manifests, tags and blobs are
unknown, with a message saying how to change that; referrers are an empty index (that
API never answers 404). Nor does a mount find anything there (``Decision.location``).

The upstream's namespace of the same name is someone else's until the organization's
owners say it is theirs (``imagegate org set ORG --upstream-namespace NAME``); serving it
as the organization's own image would be dependency confusion.
"""

from __future__ import annotations

from collections.abc import Sequence

from imagegate.core.digests import Digest
from imagegate.core.errors import BlobUnknown, NameUnknown
from imagegate.core.names import Reference, RepositoryName
from imagegate.proxy.interfaces import BlobStream, Manifest, TagPage
from imagegate.proxy.referrers import referrers_index


def not_mirrored_message(repository: RepositoryName) -> str:
    org = repository.namespace
    return (
        f"repository {repository.full} is not hosted here, and organization {org}'s "
        f"namespace is not mirrored from the upstream registry: push it, or an owner of "
        f"{org} can mirror an upstream namespace of {org}'s own with "
        f"`imagegate org set {org} --upstream-namespace NAME`"
    )


class Unmirrored:
    """``RegistryContent`` that holds nothing: unknown names and blobs, no referrers."""

    async def get_manifest(
        self, repository: RepositoryName, reference: Reference, accept: Sequence[str]
    ) -> Manifest:
        raise NameUnknown(not_mirrored_message(repository), detail={"name": repository.full})

    async def head_blob(self, repository: RepositoryName, digest: Digest) -> int:
        # BLOB_UNKNOWN, as for any blob a repository lacks: a pushing client asks this
        # before each upload and then uploads.
        raise _blob_unknown(repository, digest)

    async def open_blob(
        self, repository: RepositoryName, digest: Digest, range_header: str | None
    ) -> BlobStream:
        raise _blob_unknown(repository, digest)

    async def list_tags(
        self, repository: RepositoryName, n: int | None, last: str | None
    ) -> TagPage:
        raise NameUnknown(not_mirrored_message(repository), detail={"name": repository.full})

    async def referrers(
        self, repository: RepositoryName, digest: Digest, artifact_type: str | None
    ) -> tuple[bytes, bool]:
        return referrers_index([], artifact_type)  # the referrers API never 404s

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        """Nothing to release."""


def _blob_unknown(repository: RepositoryName, digest: Digest) -> BlobUnknown:
    detail = {"name": repository.full, "digest": str(digest)}
    return BlobUnknown(not_mirrored_message(repository), detail=detail)
