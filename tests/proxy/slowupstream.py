"""A slow upstream registry serving one blob: throttled, pausable, counting its GETs.

It runs its own event loop in a thread, so that worker processes under test can pull
from it while the test blocks on them. The body goes out in small pieces at a bounded
pace; with ``pause_at`` it stops after that many bytes until ``proceed`` is set, so a
test can look at what clients got while the upstream had not yet sent the whole blob.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from types import TracebackType
from typing import Self

from aiohttp import web

from tests.proxy.faults import _Server

PIECE = 256 * 1024
PIECE_PAUSE_SECONDS = 0.005  # about 50 MB/s: a slow upstream, beside loopback's GB/s


class SlowUpstream(_Server):
    """Serves ``blob`` (or, with ``corrupt``, wrong bytes of its length) under any repository."""

    def __init__(self, blob: bytes, *, pause_at: int | None = None, corrupt: bool = False) -> None:
        super().__init__()
        self.blob = blob
        self.digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        self.body = blob[:-1] + bytes([blob[-1] ^ 0xFF]) if corrupt else blob
        self.pause_at = pause_at
        self.proceed = threading.Event()
        self.paused = threading.Event()  # the body stopped at ``pause_at``
        self.blob_gets = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(self._handle), self._loop).result(10)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.proceed.set()
        asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/v2/":
            return web.json_response({})
        if not request.path.endswith(f"/blobs/{self.digest}"):
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)
        headers = {"Docker-Content-Digest": self.digest}
        response = web.StreamResponse(headers=headers)
        response.content_length = len(self.body)
        response.content_type = "application/octet-stream"
        if request.method == "HEAD":
            await response.prepare(request)
            return response
        self.blob_gets += 1
        await response.prepare(request)
        for offset in range(0, len(self.body), PIECE):
            if self.pause_at is not None and offset >= self.pause_at and not self.proceed.is_set():
                self.paused.set()
                await asyncio.to_thread(self.proceed.wait, 120)
            await response.write(self.body[offset : offset + PIECE])
            await asyncio.sleep(PIECE_PAUSE_SECONDS)
        await response.write_eof()
        return response
