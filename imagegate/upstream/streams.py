"""Reading upstream response bodies: bounded for small documents, chunked for blobs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from imagegate.core.errors import UpstreamError
from imagegate.upstream.errors import UpstreamUnreachable


def media_type_of(response: aiohttp.ClientResponse, body: bytes | None = None) -> str:
    """The upstream's ``Content-Type`` without parameters; else the body's ``mediaType``."""
    header = response.headers.get("Content-Type", "").split(";")[0].strip()
    if header or body is None:
        return header
    try:
        parsed: Any = json.loads(body)
        return str(parsed.get("mediaType") or "")
    except (ValueError, AttributeError):
        return ""


async def read_limited(
    response: aiohttp.ClientResponse, limit: int, *, truncate: bool = False
) -> bytes:
    """The whole body if at most ``limit`` bytes; else its start (``truncate``) or an error."""
    data = bytearray()
    async for piece in response.content.iter_any():
        data += piece
        if len(data) > limit:
            if truncate:
                return bytes(data[:limit])
            raise UpstreamError(
                f"upstream {response.url} sent more than {limit} bytes for a document"
            )
    return bytes(data)


class UpstreamBlob:
    """A blob response being streamed from the upstream.

    ``chunks()`` yields pieces of exactly ``chunk_size`` bytes (the last may be shorter),
    holding at most two chunks in memory; a broken or truncated body raises
    ``UpstreamUnreachable``. The response is released when iteration ends or on ``close()``.
    """

    def __init__(self, response: aiohttp.ClientResponse, upstream: str, chunk_size: int) -> None:
        self._response = response
        self._upstream = upstream
        self._chunk_size = chunk_size

    @property
    def size(self) -> int | None:
        """The ``Content-Length`` the upstream announced, if any."""
        return self._response.content_length

    async def chunks(self) -> AsyncIterator[bytes]:
        buffer = bytearray()
        size = self._chunk_size
        try:
            async for piece in self._response.content.iter_chunked(size):
                buffer += piece
                while len(buffer) >= size:
                    yield bytes(buffer[:size])
                    del buffer[:size]
            if buffer:
                yield bytes(buffer)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise UpstreamUnreachable(
                f"upstream {self._upstream} broke off a blob: {exc or type(exc).__name__}",
                {"upstream": self._upstream},
            ) from exc
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection if the body was not read to the end."""
        self._response.close()
