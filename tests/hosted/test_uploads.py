"""Upload sessions: every flow and error of the spec's push section, resume and limits."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator

import pytest

from imagegate.core.digests import Digest
from imagegate.core.errors import (
    BlobUnknown,
    BlobUploadUnknown,
    DigestInvalid,
    RangeInvalid,
    SizeInvalid,
    TooManyRequests,
)
from imagegate.hosted.registry import HostedContent
from imagegate.proxy.interfaces import CHUNK_SIZE
from imagegate.storage.interfaces import ContentStore
from tests.hosted.helpers import APP, OTHER, BodyBroke, body, read_all

DATA = os.urandom(42)
DIGEST = Digest.of(DATA)
BIG = os.urandom(2 * CHUNK_SIZE + 12345)


async def _assert_stored(hosted: HostedContent, data: bytes) -> None:
    digest = Digest.of(data)
    assert await hosted.head_blob(APP, digest) == len(data)
    stream = await hosted.open_blob(APP, digest, None)
    assert await read_all(stream.chunks) == data


def _sessions(hosted: HostedContent) -> list[str]:
    uploads = hosted.layout.uploads
    return sorted(os.listdir(uploads)) if uploads.exists() else []


async def test_monolithic_post_then_put(hosted: HostedContent) -> None:
    upload = await hosted.start_upload(APP)
    assert upload.offset == 0 and upload.repository == APP
    assert len(upload.upload_id) == 32
    with pytest.raises(BlobUnknown):
        await hosted.head_blob(APP, DIGEST)
    stored = await hosted.finish(APP, upload.upload_id, DIGEST, body(DATA), None, len(DATA))
    assert stored == DIGEST
    await _assert_stored(hosted, DATA)
    with pytest.raises(BlobUploadUnknown):  # finished sessions are gone
        await hosted.upload_status(APP, upload.upload_id)
    assert _sessions(hosted) == []


async def test_session_ids_are_unique(hosted: HostedContent) -> None:
    ids = {(await hosted.start_upload(APP)).upload_id for _ in range(20)}
    assert len(ids) == 20


async def test_chunked_upload_in_order(hosted: HostedContent) -> None:
    upload = await hosted.start_upload(APP)
    first = await hosted.append(APP, upload.upload_id, body(DATA[:22]), 0, 22)
    assert first.offset == 22
    second = await hosted.append(APP, upload.upload_id, body(DATA[22:]), 22, 20)
    assert second.offset == 42
    assert (await hosted.upload_status(APP, upload.upload_id)).offset == 42
    assert await hosted.finish(APP, upload.upload_id, DIGEST, None, None, None) == DIGEST
    await _assert_stored(hosted, DATA)


async def test_out_of_order_chunk_is_416_and_keeps_the_session(hosted: HostedContent) -> None:
    upload = await hosted.start_upload(APP)
    with pytest.raises(RangeInvalid) as caught:
        await hosted.append(APP, upload.upload_id, body(DATA[22:]), 22, 20)
    assert caught.value.status == 416
    assert caught.value.detail["offset"] == 0
    await hosted.append(APP, upload.upload_id, body(DATA[:22]), 0, 22)
    with pytest.raises(RangeInvalid):  # the same chunk again
        await hosted.append(APP, upload.upload_id, body(DATA[:22]), 0, 22)
    assert (await hosted.upload_status(APP, upload.upload_id)).offset == 22
    with pytest.raises(RangeInvalid):  # a final chunk out of order on the PUT
        await hosted.finish(APP, upload.upload_id, DIGEST, body(DATA[30:]), 30, 12)
    await hosted.finish(APP, upload.upload_id, DIGEST, body(DATA[22:]), 22, 20)
    await _assert_stored(hosted, DATA)


@pytest.mark.parametrize("length", [10, 50])
async def test_content_length_that_disagrees_is_size_invalid(
    hosted: HostedContent, length: int
) -> None:
    upload = await hosted.start_upload(APP)
    await hosted.append(APP, upload.upload_id, body(DATA[:22]), 0, 22)
    with pytest.raises(SizeInvalid) as caught:
        await hosted.append(APP, upload.upload_id, body(DATA[22:32], DATA[32:]), 22, length)
    assert caught.value.status == 400
    # The bad chunk is rolled back whole: the client can send it again.
    assert (await hosted.upload_status(APP, upload.upload_id)).offset == 22
    await hosted.append(APP, upload.upload_id, body(DATA[22:]), 22, 20)
    await hosted.finish(APP, upload.upload_id, DIGEST, None, None, None)
    await _assert_stored(hosted, DATA)


async def test_streamed_patch_without_content_range(hosted: HostedContent) -> None:
    """Bodies arrive in small pieces (and one oversized); they are written in 1 MiB pieces."""
    upload = await hosted.start_upload(APP)
    pieces = [BIG[n : n + 65536] for n in range(0, CHUNK_SIZE, 65536)]
    pieces.append(BIG[CHUNK_SIZE:])  # more than a CHUNK_SIZE at once
    status = await hosted.append(APP, upload.upload_id, body(*pieces), None, None)
    assert status.offset == len(BIG)
    await hosted.finish(APP, upload.upload_id, Digest.of(BIG), body(), None, 0)
    await _assert_stored(hosted, BIG)


async def test_final_chunk_on_the_put(hosted: HostedContent) -> None:
    upload = await hosted.start_upload(APP)
    await hosted.append(APP, upload.upload_id, body(DATA[:22]), 0, 22)
    await hosted.finish(APP, upload.upload_id, DIGEST, body(DATA[22:]), 22, 20)
    await _assert_stored(hosted, DATA)


async def test_empty_blob(hosted: HostedContent) -> None:
    upload = await hosted.start_upload(APP)
    empty = Digest.of(b"")
    assert await hosted.finish(APP, upload.upload_id, empty, body(), None, 0) == empty
    assert await hosted.head_blob(APP, empty) == 0


async def test_wrong_digest_keeps_the_session_for_a_retry(hosted: HostedContent) -> None:
    upload = await hosted.start_upload(APP)
    await hosted.append(APP, upload.upload_id, body(DATA), 0, len(DATA))
    wrong = Digest.of(b"something else")
    with pytest.raises(DigestInvalid) as caught:
        await hosted.finish(APP, upload.upload_id, wrong, None, None, None)
    assert caught.value.detail == {"expected": str(wrong), "actual": str(DIGEST)}
    with pytest.raises(BlobUnknown):
        await hosted.head_blob(APP, wrong)
    assert (await hosted.upload_status(APP, upload.upload_id)).offset == len(DATA)
    assert await hosted.finish(APP, upload.upload_id, DIGEST, None, None, None) == DIGEST


async def test_cancel_drops_the_session_and_its_bytes(hosted: HostedContent) -> None:
    upload = await hosted.start_upload(APP)
    await hosted.append(APP, upload.upload_id, body(DATA), 0, len(DATA))
    await hosted.cancel(APP, upload.upload_id)
    assert _sessions(hosted) == []
    for call in (
        hosted.upload_status(APP, upload.upload_id),
        hosted.cancel(APP, upload.upload_id),
        hosted.append(APP, upload.upload_id, body(DATA), None, None),
        hosted.finish(APP, upload.upload_id, DIGEST, None, None, None),
    ):
        with pytest.raises(BlobUploadUnknown):
            await call


@pytest.mark.parametrize("upload_id", ["../../blobs", "", "ABCDEF", "0" * 31, "g" * 32])
async def test_malformed_ids_are_unknown(hosted: HostedContent, upload_id: str) -> None:
    with pytest.raises(BlobUploadUnknown):
        await hosted.upload_status(APP, upload_id)


async def test_a_session_belongs_to_its_repository(hosted: HostedContent) -> None:
    upload = await hosted.start_upload(APP)
    with pytest.raises(BlobUploadUnknown):
        await hosted.upload_status(OTHER, upload.upload_id)
    with pytest.raises(BlobUploadUnknown):
        await hosted.finish(OTHER, upload.upload_id, DIGEST, body(DATA), None, None)


async def test_resume_after_a_dropped_connection(hosted: HostedContent) -> None:
    upload = await hosted.start_upload(APP)
    pieces = [BIG[:CHUNK_SIZE], BIG[CHUNK_SIZE : CHUNK_SIZE + 1000], BIG[CHUNK_SIZE + 1000 :]]
    with pytest.raises(BodyBroke):
        await hosted.append(APP, upload.upload_id, body(*pieces, fail_after=2), 0, len(BIG))
    kept = (await hosted.upload_status(APP, upload.upload_id)).offset
    assert kept == CHUNK_SIZE + 1000  # everything received, including the unflushed tail
    await hosted.append(APP, upload.upload_id, body(BIG[kept:]), kept, len(BIG) - kept)
    assert await hosted.finish(APP, upload.upload_id, Digest.of(BIG), None, None, None)
    await _assert_stored(hosted, BIG)


async def test_resume_after_a_restart_rehashes_from_disk(store: ContentStore) -> None:
    before = HostedContent(store)
    upload = await before.start_upload(APP)
    await before.append(APP, upload.upload_id, body(BIG[:1000]), 0, 1000)

    after = HostedContent(store)  # a new process: no hash in memory
    assert (await after.upload_status(APP, upload.upload_id)).offset == 1000
    await after.append(APP, upload.upload_id, body(BIG[1000:]), 1000, len(BIG) - 1000)
    with pytest.raises(DigestInvalid):
        await after.finish(APP, upload.upload_id, Digest.of(b"nope"), None, None, None)
    assert await after.finish(APP, upload.upload_id, Digest.of(BIG), None, None, None)
    await _assert_stored(after, BIG)


async def test_sha512_uploads(hosted: HostedContent) -> None:
    sha512 = Digest("sha512", hashlib.sha512(DATA).hexdigest())
    upload = await hosted.start_upload(APP, "sha512")  # ?digest-algorithm=sha512
    await hosted.append(APP, upload.upload_id, body(DATA), 0, len(DATA))
    assert await hosted.finish(APP, upload.upload_id, sha512, None, None, None) == sha512
    assert await hosted.head_blob(APP, sha512) == len(DATA)
    other = os.urandom(100)  # a sha256 session finished with sha512: hashed again
    upload = await hosted.start_upload(APP)
    digest = Digest("sha512", hashlib.sha512(other).hexdigest())
    assert await hosted.finish(APP, upload.upload_id, digest, body(other), None, None) == digest
    with pytest.raises(DigestInvalid):
        await hosted.start_upload(APP, "md5")


def _age(hosted: HostedContent, upload_id: str, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(hosted.layout.upload(upload_id) / "data", (old, old))


async def test_idle_sessions_expire_at_startup(store: ContentStore) -> None:
    before = HostedContent(store)
    idle = await before.start_upload(APP)
    active = await before.start_upload(APP)
    _age(before, idle.upload_id, 25 * 3600)

    after = HostedContent(store)
    assert after.purge_expired_uploads() == 1  # as from_settings does at startup
    with pytest.raises(BlobUploadUnknown):
        await after.upload_status(APP, idle.upload_id)
    assert (await after.upload_status(APP, active.upload_id)).offset == 0
    assert _sessions(after) == [active.upload_id]


async def test_idle_sessions_expire_lazily(store: ContentStore) -> None:
    hosted = HostedContent(store, upload_ttl_seconds=0.2)
    upload = await hosted.start_upload(APP)
    await hosted.append(APP, upload.upload_id, body(DATA[:10]), 0, 10)
    await asyncio.sleep(0.3)
    with pytest.raises(BlobUploadUnknown):
        await hosted.append(APP, upload.upload_id, body(DATA[10:]), 10, None)
    assert _sessions(hosted) == []


async def test_open_sessions_are_bounded(store: ContentStore) -> None:
    hosted = HostedContent(store, max_uploads=2, rescan_seconds=0)
    first = await hosted.start_upload(APP)
    await hosted.start_upload(OTHER)
    with pytest.raises(TooManyRequests) as caught:
        await hosted.start_upload(APP)
    assert caught.value.status == 429 and "too many blob uploads" in caught.value.message
    await hosted.cancel(APP, first.upload_id)
    third = await hosted.start_upload(APP)
    _age(hosted, third.upload_id, 25 * 3600)  # idle ones make room
    assert await hosted.start_upload(APP)


async def test_the_bound_counts_sessions_left_by_an_earlier_process(store: ContentStore) -> None:
    before = HostedContent(store, max_uploads=2)
    for _ in range(2):
        await before.start_upload(APP)
    with pytest.raises(TooManyRequests):
        await HostedContent(store, max_uploads=2).start_upload(APP)


# -- one writer cannot block every push: bounds per user and per repository, short expiry


async def test_one_user_cannot_hold_every_session(store: ContentStore) -> None:
    hosted = HostedContent(store, max_uploads_per_user=2)
    first = await hosted.start_upload(APP, by="mallory")
    await hosted.start_upload(OTHER, by="mallory")
    with pytest.raises(TooManyRequests) as caught:
        await hosted.start_upload(APP, by="mallory")
    assert caught.value.status == 429
    assert caught.value.message == (
        "mallory has 2 blob uploads in progress, as many as one user may: finish or cancel "
        "some, or retry later (idle uploads expire after 15 minutes)"
    )
    assert await hosted.start_upload(APP, by="wendy")  # everyone else pushes on
    await hosted.cancel(APP, first.upload_id)
    assert await hosted.start_upload(APP, by="mallory")


async def test_one_repository_cannot_hold_every_session(store: ContentStore) -> None:
    hosted = HostedContent(store, max_uploads_per_repository=2)
    await hosted.start_upload(APP, by="wendy")
    await hosted.start_upload(APP, by="mallory")
    with pytest.raises(TooManyRequests) as caught:
        await hosted.start_upload(APP, by="rita")
    assert caught.value.message.startswith(
        "acme/app has 2 blob uploads in progress, as many as one repository may"
    )
    assert await hosted.start_upload(OTHER, by="rita")


async def test_the_bounds_count_each_users_sessions_left_by_an_earlier_process(
    store: ContentStore,
) -> None:
    before = HostedContent(store, max_uploads_per_user=2)
    for _ in range(2):
        await before.start_upload(APP, by="mallory")
    after = HostedContent(store, max_uploads_per_user=2)  # a restart: only the disk knows
    with pytest.raises(TooManyRequests):
        await after.start_upload(OTHER, by="mallory")
    assert await after.start_upload(OTHER, by="wendy")


async def test_idle_sessions_expire_after_fifteen_minutes(store: ContentStore) -> None:
    before = HostedContent(store)
    abandoned = await before.start_upload(APP, by="mallory")
    paused = await before.start_upload(APP, by="wendy")
    _age(before, abandoned.upload_id, 16 * 60)
    _age(before, paused.upload_id, 10 * 60)
    after = HostedContent(store)
    assert after.purge_expired_uploads() == 1
    assert _sessions(after) == [paused.upload_id]
    with pytest.raises(BlobUploadUnknown):
        await after.upload_status(APP, abandoned.upload_id)


async def test_a_bound_looks_for_expired_sessions_again_only_now_and_then(
    store: ContentStore,
) -> None:
    # Each look reads every session on disk under the lock all starts share: a user
    # retrying at their bound must not make every start wait for it.
    hosted = HostedContent(store, max_uploads_per_user=1, rescan_seconds=0.3)
    held = await hosted.start_upload(APP, by="mallory")
    _age(hosted, held.upload_id, 16 * 60)
    with pytest.raises(TooManyRequests):
        await hosted.start_upload(APP, by="mallory")  # looked a moment ago: not again
    await asyncio.sleep(0.35)
    assert await hosted.start_upload(APP, by="mallory")  # looked again: it had expired
    assert held.upload_id not in _sessions(hosted)


# -- several worker processes: each a HostedContent of its own on the same directory --


async def test_a_patch_or_put_may_land_on_any_worker(store: ContentStore) -> None:
    one, two = HostedContent(store), HostedContent(store)
    upload = await one.start_upload(APP)
    pieces = (BIG[:1000], BIG[1000:CHUNK_SIZE], BIG[CHUNK_SIZE:])
    await one.append(APP, upload.upload_id, body(pieces[0]), 0, 1000)
    await two.append(APP, upload.upload_id, body(pieces[1]), 1000, len(pieces[1]))
    assert (await one.upload_status(APP, upload.upload_id)).offset == CHUNK_SIZE
    # ``one`` must not trust the offset and hash it kept: ``two`` wrote since.
    await one.append(APP, upload.upload_id, body(pieces[2]), CHUNK_SIZE, len(pieces[2]))
    assert (await two.upload_status(APP, upload.upload_id)).offset == len(BIG)
    with pytest.raises(DigestInvalid):
        await two.finish(APP, upload.upload_id, Digest.of(BIG[:-1]), None, None, None)
    assert await one.finish(APP, upload.upload_id, Digest.of(BIG), None, None, None)
    await _assert_stored(two, BIG)
    with pytest.raises(BlobUploadUnknown):  # finished by the other worker
        await two.upload_status(APP, upload.upload_id)
    with pytest.raises(BlobUploadUnknown):
        await two.append(APP, upload.upload_id, body(b"late"), len(BIG), 4)


async def test_requests_on_one_session_take_turns_across_workers(store: ContentStore) -> None:
    one, two = HostedContent(store), HostedContent(store)
    upload = await one.start_upload(APP)
    halfway, go_on = asyncio.Event(), asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield BIG[:CHUNK_SIZE]
        halfway.set()
        await go_on.wait()
        yield BIG[CHUNK_SIZE:]

    first = asyncio.create_task(one.append(APP, upload.upload_id, slow(), 0, len(BIG)))
    await halfway.wait()
    # The same chunk from another worker (a client's retry) waits for the first to end,
    # then finds the offset moved on.
    second = asyncio.create_task(two.append(APP, upload.upload_id, body(DATA), 0, len(DATA)))
    await asyncio.sleep(0.1)
    assert not second.done()
    go_on.set()
    assert (await first).offset == len(BIG)
    with pytest.raises(RangeInvalid):
        await second
    assert await two.finish(APP, upload.upload_id, Digest.of(BIG), None, None, None)
    await _assert_stored(one, BIG)


async def test_startup_purge_keeps_a_session_another_worker_holds(store: ContentStore) -> None:
    one = HostedContent(store, upload_ttl_seconds=60)
    upload = await one.start_upload(APP)
    halfway, go_on = asyncio.Event(), asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield DATA
        halfway.set()
        await go_on.wait()

    writing = asyncio.create_task(one.append(APP, upload.upload_id, stalled(), 0, len(DATA)))
    await halfway.wait()
    data = one.layout.upload(upload.upload_id) / "data"
    os.utime(data, (time.time() - 3600, time.time() - 3600))  # idle by its file's age
    restarted = HostedContent(store, upload_ttl_seconds=60)  # a worker replaced meanwhile
    assert await asyncio.to_thread(restarted.purge_expired_uploads) == 1
    go_on.set()
    assert (await writing).offset == len(DATA)
