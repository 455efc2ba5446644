"""``HostedContent`` as the gateway builds it: the contract, the factory, cancellation."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imagegate.config import Settings, load_settings
from imagegate.core.digests import Digest
from imagegate.core.errors import TooManyRequests
from imagegate.hosted.interfaces import HostedRegistry
from imagegate.hosted.registry import HostedContent
from imagegate.storage.filesystem import open_filesystem_store
from imagegate.storage.interfaces import ContentStore
from tests.hosted.helpers import APP, body, push_blob


def test_it_is_a_hosted_registry(store: ContentStore) -> None:
    registry: HostedRegistry = HostedContent(store)  # checked by mypy
    assert registry is not None


async def test_from_settings_shares_the_cache_dir_and_purges_at_startup(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = HostedContent.from_settings(settings)
    idle = await first.start_upload(APP)
    os.utime(first.layout.upload(idle.upload_id) / "data", (0, 0))
    digest = await push_blob(first, APP, b"shared")

    second = HostedContent.from_settings(settings)
    assert not first.layout.upload(idle.upload_id).exists()
    assert await second.head_blob(APP, digest) == 6
    cache = open_filesystem_store(settings.cache_dir)
    assert await cache.blobs.size(digest) == 6  # one store, shared by digest
    assert await second.ready()
    await second.close()


async def test_from_settings_takes_the_upload_limits(tmp_path: Path) -> None:
    settings = load_settings(
        {"IMAGEGATE_DATA_DIR": str(tmp_path), "IMAGEGATE_UPLOAD_SESSIONS_PER_USER": "1"}
    )
    hosted = HostedContent.from_settings(settings)
    await hosted.start_upload(APP, by="mallory")
    with pytest.raises(TooManyRequests, match="mallory has 1 blob uploads in progress"):
        await hosted.start_upload(APP, by="mallory")


async def test_a_cancelled_request_keeps_what_arrived(hosted: HostedContent) -> None:
    upload = await hosted.start_upload(APP)
    sent = asyncio.Event()
    never = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        sent.set()
        await never.wait()
        yield b"never"

    task = asyncio.create_task(hosted.append(APP, upload.upload_id, stalled(), 0, None))
    await sent.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert (await hosted.upload_status(APP, upload.upload_id)).offset == 1000
    await hosted.append(APP, upload.upload_id, body(b"b" * 10), 1000, 10)
    digest = Digest.of(b"a" * 1000 + b"b" * 10)
    assert await hosted.finish(APP, upload.upload_id, digest, None, None, None) == digest
