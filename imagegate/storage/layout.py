"""Where the filesystem store keeps things (after distribution's ``storage/paths.go``)::

    <root>/
      blobs/<algorithm>/<first 2 hex>/<hex>     content of a blob or manifest, by digest
      repositories/<namespace>/<path...>/
        _blobs/<algorithm>/<hex>                 empty file: the digest belongs here
        _manifests/<algorithm>/<hex>             the manifest's media type
        _referrers/<algorithm>/<subject hex>/<algorithm>/<hex>
                                                 media type of a manifest whose subject is
                                                 <subject hex> (the referrers index)
        _tags/<tag>                              the digest the tag last resolved to
      tmp/<random>                               writes in progress (renamed into place)
      tmp/fetch-<algorithm>-<hex>                a blob being fetched from the upstream, one
                                                 per digest for every worker process: its
                                                 writer holds an flock on it (see ``claims``)
      tmp/fetch-<algorithm>-<hex>.size           that fetch's announced size, for followers
      blob-links-confirmed                       empty: the blob links older releases
                                                 made from manifests are gone (filesystem)

Repository components and tags never start with ``_`` or ``.`` (the OCI grammar forbids
it), so the ``_`` directories cannot collide with a repository name, and no name can
climb out of its directory.
"""

from __future__ import annotations

from pathlib import Path

from imagegate.core.digests import Digest
from imagegate.core.names import RepositoryName

FETCH_PREFIX = "fetch-"  # temp names of shared fetches; random temp names are hex only
NOTE_SUFFIX = ".size"


class Layout:
    """Paths under one root directory; pure, no I/O."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.repositories = root / "repositories"
        self.tmp = root / "tmp"
        self.links_confirmed = root / "blob-links-confirmed"

    def blob(self, digest: Digest) -> Path:
        return self.blobs / digest.algorithm / digest.encoded[:2] / digest.encoded

    def fetch(self, digest: Digest) -> Path:
        return self.tmp / f"{FETCH_PREFIX}{digest.algorithm}-{digest.encoded}"

    def fetch_note(self, digest: Digest) -> Path:
        return self.tmp / f"{FETCH_PREFIX}{digest.algorithm}-{digest.encoded}{NOTE_SUFFIX}"

    def repository(self, repository: RepositoryName) -> Path:
        return self.repositories / repository.namespace / repository.path

    def blob_link(self, repository: RepositoryName, digest: Digest) -> Path:
        return self.repository(repository) / "_blobs" / digest.algorithm / digest.encoded

    def manifest_link(self, repository: RepositoryName, digest: Digest) -> Path:
        return self.repository(repository) / "_manifests" / digest.algorithm / digest.encoded

    def referrers(self, repository: RepositoryName, subject: Digest) -> Path:
        return self.repository(repository) / "_referrers" / subject.algorithm / subject.encoded

    def referrer_link(self, repository: RepositoryName, subject: Digest, digest: Digest) -> Path:
        return self.referrers(repository, subject) / digest.algorithm / digest.encoded

    def tags(self, repository: RepositoryName) -> Path:
        return self.repository(repository) / "_tags"

    def tag(self, repository: RepositoryName, tag: str) -> Path:
        return self.tags(repository) / tag
