"""Reading upstream response bodies: bounded for small documents, chunked for blobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from imagegate.core.errors import UpstreamError
from imagegate.core.inputs import load_json
from imagegate.upstream.errors import UpstreamUnreachable


def media_type_of(response: aiohttp.ClientResponse, body: bytes | None = None) -> str:
    """The upstream's ``Content-Type`` without parameters; else the body's ``mediaType``."""
    header = response.headers.get("Content-Type", "").split(";")[0].strip()
    if header or body is None:
        return header
    try:
        parsed: Any = load_json(body)
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
    each a new object the caller may keep; a broken or truncated body raises
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
        size = self._chunk_size
        # Up to ``size`` bytes a read; aiohttp buffers up to two chunks before it stops
        # reading the socket, so the download runs ahead of a slower consumer, bounded.
        pieces: list[memoryview] = []  # the next chunk so far, copied once, when complete
        held = 0
        try:
            async for piece in self._response.content.iter_chunked(size):
                if not held and len(piece) == size:  # whole already (the consumer lags)
                    yield piece
                    continue
                view = memoryview(piece)
                while held + len(view) >= size:
                    take = size - held
                    pieces.append(view[:take])
                    yield b"".join(pieces)
                    pieces.clear()
                    held = 0
                    view = view[take:]
                if view:
                    pieces.append(view)
                    held += len(view)
            if pieces:
                yield b"".join(pieces)
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
