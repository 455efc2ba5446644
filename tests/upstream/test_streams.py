"""Blob bodies re-cut into fixed-size chunks, whatever pieces the network delivers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from imagegate.upstream.errors import UpstreamUnreachable
from imagegate.upstream.streams import UpstreamBlob
from tests.proxy.faults import Fault, FaultyUpstream

CHUNK = 64 * 1024
# Pieces smaller than, equal to, larger than and straddling a chunk, with pauses between
# them so that they arrive apart.
PIECES = [1, CHUNK - 1, CHUNK, 3 * CHUNK + 5, 7, CHUNK, 2 * CHUNK - 7, 100]
BODY = os.urandom(sum(PIECES))


@pytest.fixture
async def server() -> AsyncIterator[FaultyUpstream]:
    server = await FaultyUpstream("http://127.0.0.1:9").start()
    yield server
    await server.stop()


def _send(pieces: list[int], announced: int) -> Fault:
    async def fault(request: web.Request, _: FaultyUpstream) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = announced
        await response.prepare(request)
        offset = 0
        for length in pieces:
            await response.write(BODY[offset : offset + length])
            offset += length
            await asyncio.sleep(0.005)
        if offset < announced:
            assert request.transport is not None
            request.transport.close()
        return response

    return fault


async def _chunks(url: str) -> AsyncIterator[bytes]:
    async with aiohttp.ClientSession() as session:
        response = await session.get(url + "/blob")
        blob = UpstreamBlob(response, url, CHUNK)
        assert blob.size is not None
        async for chunk in blob.chunks():
            yield chunk


@pytest.mark.parametrize("pieces", [PIECES, [len(BODY)]], ids=["ragged", "whole"])
async def test_chunks_are_exactly_the_chunk_size_but_the_last(
    server: FaultyUpstream, pieces: list[int]
) -> None:
    server.fault = _send(pieces, len(BODY))
    chunks = [chunk async for chunk in _chunks(server.url)]
    assert b"".join(chunks) == BODY
    assert all(len(chunk) == CHUNK for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= CHUNK
    assert all(isinstance(chunk, bytes) for chunk in chunks)


async def test_a_truncated_body_raises(server: FaultyUpstream) -> None:
    server.fault = _send(PIECES[:4], len(BODY))
    with pytest.raises(UpstreamUnreachable, match="broke off a blob"):
        async for _ in _chunks(server.url):
            pass
