"""Storage quotas: hosted content counting against a real ledger (``QuotaService``) on
both database backends. Each digest counts once per organization; a push that would go
past the quota is refused with DENIED naming the quota and the usage, and leaves nothing
behind (no upload session, no stored or linked blob, nothing counted)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest

from imagegate.auth.passwords import PasswordHasher
from imagegate.core.digests import Digest
from imagegate.core.errors import BlobUnknown, Denied, ManifestUnknown
from imagegate.core.names import Reference, parse_repository
from imagegate.db import Database
from imagegate.hosted.gc import collect_garbage
from imagegate.hosted.registry import HostedContent
from imagegate.proxy.descriptors import OCI_MANIFEST
from imagegate.services import AccountService, OrganizationService, QuotaService
from imagegate.storage.interfaces import ContentStore
from tests.db.fixtures import database, database_url
from tests.hosted.helpers import APP, OTHER, body, hosted_in, image_manifest, push_blob

__all__ = ["database", "database_url"]

GLOBEX = parse_repository("globex/app")
KIB = 1024


@pytest.fixture
async def quotas(database: Database) -> AsyncIterator[QuotaService]:
    accounts = AccountService(database, hasher=PasswordHasher.fast_for_tests())
    for user in ("alice", "gina"):
        await accounts.create_user(user, None, f"{user}-password-long-enough")
    orgs = OrganizationService(database)
    await orgs.add_org("acme", "alice")
    await orgs.add_org("globex", "gina")
    yield QuotaService(database)


@pytest.fixture
def hosted(store: ContentStore, quotas: QuotaService) -> HostedContent:
    return HostedContent(store, ledger=quotas)


def _sessions(hosted: HostedContent) -> list[str]:
    uploads = hosted.layout.uploads
    return sorted(os.listdir(uploads)) if uploads.exists() else []


async def test_each_digest_counts_once_per_organization(
    hosted: HostedContent, quotas: QuotaService
) -> None:
    layer, config = os.urandom(3 * KIB), os.urandom(KIB)
    await push_blob(hosted, APP, layer)
    await push_blob(hosted, OTHER, layer)  # the same layer in a second repository
    assert (await quotas.usage("acme")).used == len(layer)
    await push_blob(hosted, APP, config)
    manifest = image_manifest(config, layer)
    await hosted.put_manifest(APP, Reference(tag="1"), OCI_MANIFEST, manifest)
    assert (await quotas.usage("acme")).used == len(layer) + len(config) + len(manifest)
    assert await hosted.mount(
        GLOBEX, Digest.of(layer), hosted_in(APP)
    )  # another organization: its own
    assert (await quotas.usage("globex")).used == len(layer)


async def test_a_blob_past_the_quota_is_refused_and_leaves_nothing(
    hosted: HostedContent, quotas: QuotaService, store: ContentStore
) -> None:
    await push_blob(hosted, APP, os.urandom(6 * KIB))
    await quotas.set_quota("acme", 10 * KIB)
    big = os.urandom(3 * KIB)
    upload = await hosted.start_upload(APP, by="alice")
    # Under what is left while it streams, over once counted by the final PUT: PUT
    # without a body, so only the count at the end can refuse it.
    await hosted.append(APP, upload.upload_id, body(big), 0, len(big))
    await quotas.charge("acme", Digest.of(b"meanwhile"), 2 * KIB)  # a concurrent push won
    with pytest.raises(Denied) as refused:
        await hosted.finish(APP, upload.upload_id, Digest.of(big), None, None, None)
    assert refused.value.code == "DENIED"
    assert refused.value.message == (
        "storage quota of acme exceeded: this push needs 3.0 KiB more, and acme uses "
        "8.0 KiB of its 10.0 KiB quota; delete images acme no longer needs (their layers are "
        "freed at the next garbage collection) or ask the gateway's administrator for more "
        "(imagegate org set acme --quota SIZE)"
    )
    assert _sessions(hosted) == []
    assert await store.blobs.size(Digest.of(big)) is None
    with pytest.raises(BlobUnknown):
        await hosted.head_blob(APP, Digest.of(big))
    assert (await quotas.usage("acme")).used == 8 * KIB


async def test_an_upload_is_refused_as_soon_as_it_outgrows_the_quota(
    hosted: HostedContent, quotas: QuotaService
) -> None:
    await quotas.set_quota("acme", 4 * KIB)
    upload = await hosted.start_upload(APP, by="alice")
    await hosted.append(APP, upload.upload_id, body(os.urandom(3 * KIB)), 0, 3 * KIB)
    with pytest.raises(Denied) as refused:
        await hosted.append(APP, upload.upload_id, body(os.urandom(2 * KIB)), 3 * KIB, None)
    assert "this push needs 5.0 KiB more, and acme uses 0 bytes of its 4.0 KiB quota" in (
        refused.value.message
    )
    assert _sessions(hosted) == []  # its 3 KiB on disk are gone too
    with pytest.raises(Denied) as used_up:  # a monolithic push of a blob bigger than all
        await hosted.finish(
            APP,
            (await hosted.start_upload(APP)).upload_id,
            Digest.of(b"x" * 5 * KIB),
            body(b"x" * 5 * KIB),
            None,
            None,
        )
    assert "needs 5.0 KiB more" in used_up.value.message
    assert _sessions(hosted) == []


async def test_once_the_quota_is_used_up_no_upload_starts(
    hosted: HostedContent, quotas: QuotaService
) -> None:
    await push_blob(hosted, APP, os.urandom(2 * KIB))
    await quotas.set_quota("acme", 2 * KIB)
    with pytest.raises(Denied) as refused:
        await hosted.start_upload(OTHER, by="alice")
    assert refused.value.message.startswith(
        "storage quota of acme used up: acme uses 2.0 KiB of its 2.0 KiB quota;"
    )
    assert await hosted.start_upload(GLOBEX, by="gina")  # other organizations push on


async def test_content_the_organization_holds_costs_nothing_more(
    hosted: HostedContent, quotas: QuotaService
) -> None:
    layer = os.urandom(3 * KIB)
    await push_blob(hosted, APP, layer)
    await quotas.set_quota("acme", 3 * KIB + 1)  # full but for one byte
    assert await hosted.mount(OTHER, Digest.of(layer), hosted_in(APP))
    with pytest.raises(Denied):
        await push_blob(hosted, APP, os.urandom(2))
    assert (await quotas.usage("acme")).used == 3 * KIB


async def test_a_manifest_past_the_quota_is_refused(
    hosted: HostedContent, quotas: QuotaService
) -> None:
    config = os.urandom(KIB)
    await push_blob(hosted, APP, config)
    await quotas.set_quota("acme", KIB + 10)
    manifest = image_manifest(config)
    with pytest.raises(Denied):
        await hosted.put_manifest(APP, Reference(tag="1"), OCI_MANIFEST, manifest)
    with pytest.raises(ManifestUnknown):
        await hosted.get_manifest(APP, Reference(tag="1"), [])
    assert (await quotas.usage("acme")).used == KIB


async def test_concurrent_pushes_cannot_overshoot(
    hosted: HostedContent, quotas: QuotaService
) -> None:
    await quotas.set_quota("acme", 5 * KIB)
    blobs = [os.urandom(2 * KIB) for _ in range(6)]
    results = await asyncio.gather(
        *(push_blob(hosted, APP, blob) for blob in blobs), return_exceptions=True
    )
    assert sum(1 for r in results if isinstance(r, Digest)) == 2
    assert all(isinstance(r, Denied) for r in results if not isinstance(r, Digest))
    assert (await quotas.usage("acme")).used == 4 * KIB


async def test_usage_drops_when_the_last_repository_lets_a_digest_go(
    hosted: HostedContent, quotas: QuotaService
) -> None:
    layer = os.urandom(2 * KIB)
    digest = await push_blob(hosted, APP, layer)
    await push_blob(hosted, OTHER, layer)
    await hosted.delete_blob(APP, digest)
    assert (await quotas.usage("acme")).used == 2 * KIB  # acme/other still holds it
    await hosted.delete_blob(OTHER, digest)
    assert (await quotas.usage("acme")).used == 0


async def test_garbage_collection_counts_usage_anew(
    hosted: HostedContent, quotas: QuotaService, store: ContentStore
) -> None:
    older_version = HostedContent(store)  # pushes that were never counted
    kept = os.urandom(2 * KIB)
    await push_blob(older_version, APP, kept)
    manifest = image_manifest(kept)
    await older_version.put_manifest(APP, Reference(tag="1"), OCI_MANIFEST, manifest)
    await push_blob(hosted, APP, os.urandom(3 * KIB))  # counted, never referenced: collected
    assert (await quotas.usage("acme")).used == 3 * KIB
    old = time.time() - 7200
    for path in store.blobs.layout.blobs.rglob("*"):  # type: ignore[attr-defined]
        os.utime(path, (old, old))
    report = await collect_garbage(store, grace_seconds=3600)
    assert report.blobs_removed == 1 and report.held is not None
    held = {Digest.of(kept): len(kept), Digest.of(manifest): len(manifest)}
    assert report.held.by_org == {"acme": held}
    counted = await quotas.recount_all(report.held.by_org, report.held.looked_at)
    assert [(usage.org, usage.used) for usage in counted] == [
        ("acme", len(kept) + len(manifest)),
        ("globex", 0),
    ]
