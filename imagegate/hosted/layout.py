"""Where hosted repositories live on disk, next to the pull-through cache (one root).

The root is ``Settings.cache_dir``; blobs are shared by digest with the cache, while the
repository metadata of hosted repositories is kept apart, so a name such as ``acme/app``
that also has cached upstream content never serves one as the other::

    <root>/
      blobs/<algorithm>/<first 2 hex>/<hex>   content by digest, shared (storage.layout)
      repositories/...                        the cache's metadata (storage.layout)
      tmp/<random>                            small atomic writes in progress
      hosted/
        gc.gate, gc.lock                      flock files: pushes (shared) against gc
        repositories/<namespace>/<path...>/
          _blobs/<algorithm>/<hex>            empty: the blob was pushed or mounted here
          _manifests/<algorithm>/<hex>        the manifest's media type
          _referrers/<algorithm>/<subject hex>/<algorithm>/<hex>
                                              media type of a manifest whose subject is
                                              <subject hex> (the referrers index)
          _tags/<tag>                         the digest the tag points at
        uploads/<id>/                         one upload session (id: 32 hex digits)
          info                                JSON: repository and hash algorithm
          data                                the bytes received so far; its mtime is the
                                              session's last activity (for expiry)

An upload's ``data`` becomes a blob by a rename into ``blobs/`` (same filesystem) after
its digest checks out; every metadata file is written whole (temp file, fsync, rename).
So a crash leaves either the old state or the new one, plus at worst an orphan blob that
garbage collection removes. Repository components and tags never start with ``_``, so the
``_`` directories cannot collide with a nested repository name.
"""

from __future__ import annotations

from pathlib import Path

from imagegate.core.digests import Digest
from imagegate.core.names import RepositoryName
from imagegate.storage.blobs import FilesystemBlobStore
from imagegate.storage.interfaces import ContentStore
from imagegate.storage.layout import Layout


class HostedLayout:
    """Paths of hosted metadata and uploads under one store root; pure, no I/O."""

    def __init__(self, store: Layout) -> None:
        self.store = store  # blobs, cache metadata and tmp
        self.root = store.root / "hosted"
        self.repositories = self.root / "repositories"
        self.uploads = self.root / "uploads"
        self.gc_gate = self.root / "gc.gate"
        self.gc_lock = self.root / "gc.lock"

    def repository(self, repository: RepositoryName) -> Path:
        return self.repositories / repository.namespace / repository.path

    def blob_links(self, repository: RepositoryName) -> Path:
        return self.repository(repository) / "_blobs"

    def blob_link(self, repository: RepositoryName, digest: Digest) -> Path:
        return self.blob_links(repository) / digest.algorithm / digest.encoded

    def manifest_links(self, repository: RepositoryName) -> Path:
        return self.repository(repository) / "_manifests"

    def manifest_link(self, repository: RepositoryName, digest: Digest) -> Path:
        return self.manifest_links(repository) / digest.algorithm / digest.encoded

    def referrers(self, repository: RepositoryName, subject: Digest) -> Path:
        return self.repository(repository) / "_referrers" / subject.algorithm / subject.encoded

    def referrer_link(self, repository: RepositoryName, subject: Digest, digest: Digest) -> Path:
        return self.referrers(repository, subject) / digest.algorithm / digest.encoded

    def tags(self, repository: RepositoryName) -> Path:
        return self.repository(repository) / "_tags"

    def tag(self, repository: RepositoryName, tag: str) -> Path:
        return self.tags(repository) / tag

    def upload(self, upload_id: str) -> Path:
        return self.uploads / upload_id


def hosted_layout(store: ContentStore) -> HostedLayout:
    """The hosted layout of a filesystem store (hosted content renames into its blobs)."""
    if not isinstance(store.blobs, FilesystemBlobStore):
        raise TypeError(
            "hosted repositories need the filesystem store "
            "(imagegate.storage.filesystem.open_filesystem_store)"
        )
    return HostedLayout(store.blobs.layout)
