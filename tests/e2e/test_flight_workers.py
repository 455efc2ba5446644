"""Two ``imagegate serve`` processes on one data directory, as ``--workers 2`` runs them:
50 concurrent cold pulls of one blob, half on each, cost one upstream GET, and every
client streams while the upstream is still sending."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import aiohttp

from imagegate.proxy.interfaces import CHUNK_SIZE
from tests.proxy.slowupstream import SlowUpstream
from tests.support.gateway import Gateway
from tests.support.oci import OciClient

BLOB = os.urandom(6 * CHUNK_SIZE + 123)
HALF = 3 * CHUNK_SIZE + CHUNK_SIZE // 2  # the upstream pauses here
PULLS = 50
WAIT_SECONDS = 60.0  # generous; only a failing test waits this long


async def _pull_all(gateways: list[Gateway], upstream: SlowUpstream) -> list[tuple[int, str]]:
    path = f"/v2/library/slow/blobs/{upstream.digest}"
    scope = ("repository:library/slow:pull",)
    tokens = [OciClient(gateway.url).token(scope) for gateway in gateways]
    streaming = asyncio.Semaphore(0)

    async def pull(session: aiohttp.ClientSession, index: int) -> tuple[int, str]:
        which = index % len(gateways)
        headers = {"Authorization": f"Bearer {tokens[which]}"}
        async with session.get(gateways[which].url + path, headers=headers) as response:
            hasher, received = hashlib.sha256(), 0
            async for piece in response.content.iter_any():
                if not received:
                    streaming.release()  # this client's first bytes
                hasher.update(piece)
                received += len(piece)
            return response.status, "sha256:" + hasher.hexdigest()

    timeout = aiohttp.ClientTimeout(total=WAIT_SECONDS)
    async with aiohttp.ClientSession(auto_decompress=False, timeout=timeout) as session:
        pulls = [asyncio.create_task(pull(session, index)) for index in range(PULLS)]

        async def all_streaming() -> None:
            for _ in range(PULLS):
                await streaming.acquire()

        await asyncio.wait_for(all_streaming(), WAIT_SECONDS)
        assert upstream.paused.is_set() and not upstream.proceed.is_set()
        upstream.proceed.set()
        return list(await asyncio.gather(*pulls))


def test_fifty_pulls_on_two_serve_processes_make_one_upstream_get(tmp_path: Path) -> None:
    with SlowUpstream(BLOB, pause_at=HALF) as upstream:
        first = Gateway(tmp_path / "first", upstream_url=upstream.url)
        second = Gateway(tmp_path / "second", upstream_url=upstream.url)
        second.data_dir = first.data_dir  # one database, one cache, one signing key
        with first, second:
            results = asyncio.run(_pull_all([first, second], upstream))
        assert results == [(200, upstream.digest)] * PULLS
        assert upstream.blob_gets == 1
