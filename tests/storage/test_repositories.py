"""Per-repository links, referrers and cached tags on the filesystem."""

from __future__ import annotations

from pathlib import Path

from imagegate.core.digests import Digest
from imagegate.core.names import parse_repository
from imagegate.storage.filesystem import open_filesystem_store
from imagegate.storage.interfaces import ManifestLink

A = parse_repository("library/a")
B = parse_repository("acme/team/b")
ONE, TWO, THREE = (Digest.of(bytes([n])) for n in range(3))
OCI = "application/vnd.oci.image.manifest.v1+json"


async def test_links_belong_to_one_repository(tmp_path: Path) -> None:
    repositories = open_filesystem_store(tmp_path).repositories
    await repositories.link_blob(A, ONE)
    await repositories.link_manifest(A, ManifestLink(TWO, OCI))

    assert await repositories.is_linked(A, ONE) and await repositories.is_linked(A, TWO)
    assert not await repositories.is_linked(B, ONE)
    assert await repositories.manifest(A, TWO) == ManifestLink(TWO, OCI)
    assert await repositories.manifest(A, ONE) is None  # a blob link is not a manifest
    assert await repositories.manifest(B, TWO) is None


async def test_referrers_by_subject(tmp_path: Path) -> None:
    repositories = open_filesystem_store(tmp_path).repositories
    await repositories.link_manifest(A, ManifestLink(TWO, OCI), subject=ONE)
    await repositories.link_manifest(A, ManifestLink(THREE, OCI), subject=ONE)
    found = await repositories.referrers(A, ONE)
    assert sorted(link.digest for link in found) == sorted([TWO, THREE])
    assert await repositories.referrers(B, ONE) == []
    assert await repositories.referrers(A, TWO) == []


async def test_cached_tags(tmp_path: Path) -> None:
    repositories = open_filesystem_store(tmp_path).repositories
    assert await repositories.tags(A) == []
    await repositories.set_tag(A, "latest", ONE)
    await repositories.set_tag(A, "1.0", TWO)
    await repositories.set_tag(A, "latest", THREE)
    assert await repositories.tag(A, "latest") == THREE
    assert await repositories.tag(A, "missing") is None
    assert await repositories.tags(A) == ["1.0", "latest"]
    assert await repositories.tags(B) == []
    assert list((tmp_path / "tmp").iterdir()) == []  # every write was renamed into place


async def test_blob_links_of_an_older_release_go_once(tmp_path: Path) -> None:
    """Links an older release made from manifests may be a hostile upstream's: the first
    open drops every blob link (manifests, tags and referrers stay); later ones keep all."""
    store = open_filesystem_store(tmp_path)
    store.blobs.layout.links_confirmed.unlink()  # type: ignore[attr-defined]
    await store.repositories.link_blob(A, ONE)
    await store.repositories.link_blob(B, TWO)
    await store.repositories.link_manifest(A, ManifestLink(THREE, OCI), subject=ONE)
    await store.repositories.set_tag(A, "1", THREE)

    reopened = open_filesystem_store(tmp_path).repositories
    assert not await reopened.is_linked(A, ONE) and not await reopened.is_linked(B, TWO)
    assert await reopened.manifest(A, THREE) == ManifestLink(THREE, OCI)
    assert [link.digest for link in await reopened.referrers(A, ONE)] == [THREE]
    assert await reopened.tag(A, "1") == THREE

    await reopened.link_blob(A, ONE)  # confirmed by the upstream since
    assert await open_filesystem_store(tmp_path).repositories.is_linked(A, ONE)
