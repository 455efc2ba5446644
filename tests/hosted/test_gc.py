"""Garbage collection: what is kept, what goes, and nothing referenced lost to a race."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagegate.core.digests import Digest
from imagegate.core.errors import BlobUnknown, ManifestBlobUnknown
from imagegate.core.names import Reference, parse_repository
from imagegate.hosted import gc as gc_module
from imagegate.hosted.gc import GcReport, collect_garbage
from imagegate.hosted.locking import GcLock
from imagegate.hosted.registry import HostedContent
from imagegate.proxy.descriptors import OCI_MANIFEST, references
from imagegate.storage.interfaces import ContentStore, ManifestLink
from tests.hosted.helpers import (
    APP,
    OTHER,
    hosted_in,
    image_manifest,
    push_blob,
    push_image,
    read_all,
)

CONFIG, KEPT, UNTAGGED, ORPHAN, DELETED = (os.urandom(1000 + n) for n in range(5))
CACHED_REPOSITORY = parse_repository("library/alpine")


def _age_everything(store: ContentStore, seconds: float = 7200) -> None:
    old = time.time() - seconds
    for directory, _, names in os.walk(store.blobs.layout.blobs):  # type: ignore[attr-defined]
        for name in names:
            os.utime(os.path.join(directory, name), (old, old))


async def _cache_blob(store: ContentStore, data: bytes) -> Digest:
    digest = Digest.of(data)
    writer = await store.blobs.create()
    await writer.write(data)
    await writer.commit(digest, len(data))
    await store.repositories.link_blob(CACHED_REPOSITORY, digest)
    return digest


async def _populate(hosted: HostedContent, store: ContentStore) -> tuple[dict[str, Digest], int]:
    """Content of every kind; also the bytes a collection should free."""
    _, tagged = await push_image(hosted, APP, "1.0", CONFIG, KEPT)
    _, untagged = await push_image(hosted, OTHER, None, CONFIG, UNTAGGED)
    orphan = await push_blob(hosted, APP, ORPHAN)
    deleted_body, deleted = await push_image(hosted, APP, "old", CONFIG, DELETED)
    await hosted.delete_manifest(APP, deleted.digest)
    cached = await _cache_blob(store, b"cached layer")
    cached_manifest = await _cache_blob(store, b'{"schemaVersion":2}')
    await store.repositories.link_manifest(
        CACHED_REPOSITORY, ManifestLink(cached_manifest, OCI_MANIFEST)
    )
    garbage = len(ORPHAN) + len(DELETED) + len(deleted_body)
    return {
        "tagged": tagged.digest,
        "untagged": untagged.digest,
        "orphan": orphan,
        "deleted": deleted.digest,
        "cached": cached,
        "cached_manifest": cached_manifest,
    }, garbage


async def test_keeps_referenced_and_removes_the_rest(
    hosted: HostedContent, store: ContentStore
) -> None:
    digests, garbage = await _populate(hosted, store)
    _age_everything(store)

    report = await collect_garbage(store, grace_seconds=3600)

    gone = [digests["orphan"], Digest.of(DELETED), digests["deleted"]]
    assert report.blobs_removed == 3 and not report.dry_run
    assert report.bytes_removed == garbage
    for digest in gone:
        assert await store.blobs.size(digest) is None
    assert report.links_removed == 2  # APP's links to the orphan and the deleted layer
    with pytest.raises(BlobUnknown):
        await hosted.head_blob(APP, digests["orphan"])
    for digest in (Digest.of(CONFIG), Digest.of(KEPT), Digest.of(UNTAGGED)):
        assert await store.blobs.size(digest) is not None
    for name in ("tagged", "untagged", "cached", "cached_manifest"):
        assert await store.blobs.size(digests[name]) is not None
    manifest = await hosted.get_manifest(APP, Reference(tag="1.0"), [])
    assert await read_all((await hosted.open_blob(APP, Digest.of(KEPT), None)).chunks) == KEPT
    assert references(manifest.body).blobs == [Digest.of(CONFIG), Digest.of(KEPT)]

    again = await collect_garbage(store, grace_seconds=3600)
    assert (again.blobs_removed, again.links_removed) == (0, 0)


async def test_dry_run_changes_nothing(hosted: HostedContent, store: ContentStore) -> None:
    digests, garbage = await _populate(hosted, store)
    _age_everything(store)
    report = await collect_garbage(store, grace_seconds=3600, dry_run=True)
    assert report.bytes_removed == garbage
    assert report.dry_run and report.blobs_removed == 3 and report.links_removed == 2
    assert await store.blobs.size(digests["orphan"]) == len(ORPHAN)
    assert await hosted.head_blob(APP, digests["orphan"]) == len(ORPHAN)
    real = await collect_garbage(store, grace_seconds=3600)
    assert (real.blobs_removed, real.bytes_removed) == (3, report.bytes_removed)


async def test_young_blobs_wait_for_their_manifest(
    hosted: HostedContent, store: ContentStore
) -> None:
    """A blob pushed just now (its manifest still to come) outlives the grace period."""
    fresh = await push_blob(hosted, APP, ORPHAN)
    report = await collect_garbage(store, grace_seconds=3600)
    assert (report.blobs_removed, report.blobs_young) == (0, 1)
    assert await hosted.head_blob(APP, fresh) == len(ORPHAN)
    assert (await collect_garbage(store, grace_seconds=0)).blobs_removed == 1


async def test_pushing_a_stored_blob_again_restarts_its_grace(
    hosted: HostedContent, store: ContentStore
) -> None:
    old = await push_blob(hosted, APP, ORPHAN)
    _age_everything(store)
    await push_blob(hosted, OTHER, ORPHAN)  # already stored: kept, with a fresh mtime
    assert (await collect_garbage(store, grace_seconds=3600)).blobs_young == 1
    assert await hosted.head_blob(OTHER, old) == len(ORPHAN)
    _age_everything(store)
    assert await hosted.mount(APP, old, hosted_in(OTHER))  # a mount too
    assert (await collect_garbage(store, grace_seconds=3600)).blobs_young == 1


async def test_links_to_blobs_already_gone_are_dropped(
    hosted: HostedContent, store: ContentStore
) -> None:
    digest = await push_blob(hosted, APP, ORPHAN)
    store.blobs.layout.blob(digest).unlink()  # type: ignore[attr-defined]
    report = await collect_garbage(store, grace_seconds=3600)
    assert report.held is not None and report.held.by_org == {"acme": {}}  # nothing left
    assert dataclasses.replace(report, held=None) == GcReport(
        manifests=0,
        blobs_referenced=0,
        blobs_removed=0,
        bytes_removed=0,
        blobs_young=0,
        links_removed=1,
        dry_run=False,
    )


async def test_gc_racing_concurrent_pushes_loses_nothing_referenced(
    hosted: HostedContent, store: ContentStore
) -> None:
    """Grace 0, collections back to back until 40 pushes sharing a base layer are done:
    every manifest accepted keeps every blob it names through every later round. A push whose
    blob was swept before its manifest arrived gets ManifestBlobUnknown (never a dangling
    manifest) and pushes what is missing again, as a client would."""
    base = os.urandom(200_000)
    pushing = 40
    reports: list[GcReport] = []
    accepted_during_gc = 0
    attempt_seconds = 0.05  # the last push attempt's duration: gaps follow the machine's pace

    async def collect() -> None:
        while pushing and len(reports) < 300:  # the cap only guards against a stall
            reports.append(await collect_garbage(store, grace_seconds=0))
            await asyncio.sleep(random.uniform(0, 2 * attempt_seconds))

    async def push(number: int) -> str:
        nonlocal pushing, accepted_during_gc, attempt_seconds
        repository = parse_repository(f"acme/app{number % 4}")
        config, layer = os.urandom(500), os.urandom(50_000 + number)
        blobs = {Digest.of(data): data for data in (config, base, layer)}
        manifest = image_manifest(config, base, layer)
        missing = list(blobs)
        while missing:
            started = time.monotonic()
            for digest in missing:
                await push_blob(hosted, repository, blobs[digest])
            try:
                await hosted.put_manifest(
                    repository, Reference(tag=f"v{number}"), OCI_MANIFEST, manifest
                )
                missing = []
            except ManifestBlobUnknown as exc:
                missing = [Digest.parse(value) for value in exc.detail["missing"]]
            attempt_seconds = time.monotonic() - started
        accepted_during_gc += not collector.done()
        pushing -= 1
        return f"v{number}"

    collector = asyncio.create_task(collect())
    tags = await asyncio.gather(*(push(number) for number in range(40)))
    await collector
    reports.append(await collect_garbage(store, grace_seconds=0))

    assert sum(report.blobs_removed for report in reports) > 0  # it did race
    assert accepted_during_gc > 0
    for number, tag in enumerate(tags):
        repository = parse_repository(f"acme/app{number % 4}")
        manifest = await hosted.get_manifest(repository, Reference(tag=tag), [])
        assert Digest.of(manifest.body) == manifest.digest
        for blob in references(manifest.body).blobs:
            stream = await hosted.open_blob(repository, blob, None)
            assert Digest.of(await read_all(stream.chunks)) == blob


async def test_a_manifest_committed_between_mark_and_sweep_is_seen(
    hosted: HostedContent, store: ContentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep marks again under the lock: a push that lands after the first mark (here
    made to land exactly there) keeps its blobs, even with a grace of 0."""
    loop = asyncio.get_running_loop()
    real = gc_module.stored_blobs

    def push_then_list(blobs: Path) -> Iterator[Digest]:
        push = push_image(hosted, APP, "late", CONFIG, KEPT)
        asyncio.run_coroutine_threadsafe(push, loop).result()
        return real(blobs)

    monkeypatch.setattr(gc_module, "stored_blobs", push_then_list)
    report = await collect_garbage(store, grace_seconds=0)
    assert report.blobs_removed == 0
    manifest = await hosted.get_manifest(APP, Reference(tag="late"), [])
    for blob in (*references(manifest.body).blobs, manifest.digest):
        assert await store.blobs.size(blob) is not None


async def test_the_sweep_waits_for_a_push_step_in_progress(
    hosted: HostedContent, store: ContentStore
) -> None:
    gc_lock = GcLock(hosted.layout.gc_gate, hosted.layout.gc_lock)
    async with gc_lock.shared():
        collection = asyncio.create_task(collect_garbage(store, grace_seconds=0))
        await asyncio.sleep(0.3)
        assert not collection.done()
    await asyncio.wait_for(collection, 10)
    async with gc_lock.shared():  # and pushes go on after it
        pass
