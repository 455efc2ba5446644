"""Zero-copy bodies: the kernel sends a stored blob's bytes to the client (``sendfile``).

Python copying a cached blob 1 MiB at a time (a read in a worker thread, then a socket
write) costs a core about a second per few GiB; ``sendfile`` hands the file's pages to
the socket without them ever entering the process. Both ends of ASGI's "Zero Copy Send"
extension live here:

- the server's (``ZeroCopySend``): our uvicorn protocol (``http.limits``) offers
  ``http.response.zerocopy`` in the scope of plain-HTTP requests and wraps each
  request's ``send``: a ``{"type": "http.response.zerocopy", "file", "offset",
  "count", "more_body"}`` message is sent by ``send_file``, and uvicorn's own ``send``
  then ends the body (so keep-alive, ``Connection: close``, HEAD and pipelining behave
  as for any body). uvicorn has no such extension of its own.
- the app's (``BlobResponse``): a blob that is stored whole goes out that way, Range
  requests too (the file at an offset); otherwise (a blob still being fetched, a server
  that does not offer the extension, TLS some day) its chunks stream as before.

``send_file`` uses ``os.sendfile`` on a duplicate of the socket's descriptor,
non-blocking, waiting for room with ``add_writer`` on the duplicate (the loop already
watches the socket's own descriptor for the transport, and a second watcher on it is
refused). Each run of ``sendfile`` calls, until the socket is full, is one hop to a
worker thread, as the store's reads are: a file not in the page cache is read from disk
inside ``sendfile``, which the event loop must not wait for, and the connections' sends
(and the kernel's TCP work they carry) spread over the cores. Measured with
``wrk -t1 -c4`` on a 200 MiB file on this 2-core machine, that sent 1.8 times what
``sendfile`` on the loop itself did (median of five runs each, interleaved), for about
a fifth more CPU per byte; either costs about a quarter of the CPU per byte of streaming
the chunks. Before the first call, the bytes the transport still buffers (the headers)
are written first, and reading is paused, so nothing else writes to the socket meanwhile and a
pipelined request waits its turn. ``loop.sendfile`` would do the same on asyncio's
loop, but uvloop, the loop ``imagegate serve`` runs, does not implement it. A client
that goes away (``EPIPE``, ``ECONNRESET``) closes the connection, as a streamed
body's would; the app's ``send`` then returns, as uvicorn's does for a disconnected
client. The file is the app's and open until ``send`` returns: a blob that garbage
collection deletes meanwhile is still sent whole (an open file keeps its inode).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from imagegate.proxy.interfaces import BlobStream

ZEROCOPY = "http.response.zerocopy"

logger = logging.getLogger("imagegate.http")


# --- the server's end -------------------------------------------------------------------


class FileEndedEarly(RuntimeError):
    """The file held fewer bytes than the response promised."""


async def send_file(
    transport: asyncio.Transport, flow: FlowControl, fd: int, offset: int, count: int
) -> None:
    """Send ``count`` bytes of file ``fd`` from ``offset`` on ``transport``'s socket.

    Raises ``ConnectionError`` when the client is gone, ``FileEndedEarly`` when the file
    is shorter than ``offset + count``.
    """
    await _drained(transport, flow)
    if transport.is_closing():
        raise ConnectionResetError("the connection closed before the body")
    loop = asyncio.get_running_loop()
    sock = os.dup(transport.get_extra_info("socket").fileno())
    was_paused = flow.read_paused
    flow.pause_reading()
    try:
        while count > 0:
            sent, full = await _send_in_thread(loop, sock, fd, offset, count)
            offset += sent
            count -= sent
            if full:
                await _writable(loop, sock)
    finally:
        os.close(sock)
        if not was_paused and not transport.is_closing():
            flow.resume_reading()


def _send_until_full(sock: int, fd: int, offset: int, count: int) -> tuple[int, bool]:
    """``sendfile`` until ``count`` bytes are sent or the socket is full (blocking: in a
    worker thread); how many were sent, and whether the socket is full."""
    sent = 0
    while sent < count:
        try:
            more = os.sendfile(sock, fd, offset + sent, count - sent)
        except BlockingIOError:
            return sent, True
        if more == 0:
            raise FileEndedEarly(f"the file ended {count - sent} bytes before the body's end")
        sent += more
    return sent, False


async def _send_in_thread(
    loop: asyncio.AbstractEventLoop, sock: int, fd: int, offset: int, count: int
) -> tuple[int, bool]:
    """``_send_until_full`` in a worker thread. Cancelled, it still waits for the thread:
    the descriptors it uses are closed once it returns, and a number closed under it
    could be reused for another file or socket."""
    work = loop.run_in_executor(None, _send_until_full, sock, fd, offset, count)
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise


async def _drained(transport: asyncio.Transport, flow: FlowControl) -> None:
    """Wait until the transport has written everything it buffers."""
    if transport.get_write_buffer_size() == 0:
        return  # the usual case: the headers went out at once
    low, high = transport.get_write_buffer_limits()
    # With a high-water mark of 0 the transport pauses the protocol now and resumes it
    # once its buffer is empty (or the connection is lost).
    transport.set_write_buffer_limits(high=0)
    try:
        await flow.drain()
    finally:
        transport.set_write_buffer_limits(high=high, low=low)


async def _writable(loop: asyncio.AbstractEventLoop, sock: int) -> None:
    room: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not room.done():
            room.set_result(None)

    loop.add_writer(sock, ready)
    try:
        await room
    finally:
        loop.remove_writer(sock)


class ZeroCopySend:
    """One request's app, offered ``http.response.zerocopy`` in its scope and given a
    ``send`` that takes it."""

    def __init__(self, app: ASGIApp, cycle: RequestResponseCycle) -> None:
        self._app = app
        self._cycle = cycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_or_send_file(message: Message) -> None:
            if message["type"] == ZEROCOPY:
                await self._send_file(message, send)
            else:
                await send(message)

        scope.setdefault("extensions", {})[ZEROCOPY] = {}
        await self._app(scope, receive, send_or_send_file)

    async def _send_file(self, message: Message, send: Send) -> None:
        cycle = self._cycle
        if cycle.disconnected:
            return
        if not cycle.response_started or cycle.response_complete:
            raise RuntimeError(f"Unexpected ASGI message {ZEROCOPY!r} outside a response body")
        if cycle.scope["method"] != "HEAD":
            if cycle.chunked_encoding:
                raise RuntimeError("a zero-copy body needs a Content-Length")
            fd = message["file"].fileno()
            offset = message.get("offset")
            if offset is None:
                offset = os.lseek(fd, 0, os.SEEK_CUR)
            count = message.get("count")
            if count is None:
                count = os.fstat(fd).st_size - offset
            if count > cycle.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            try:
                await send_file(cycle.transport, cycle.flow, fd, offset, count)
            except ConnectionError:
                cycle.disconnected = True
                cycle.transport.close()
                return
            cycle.expected_content_length -= count
            logger.debug(
                "zero-copy body sent",
                extra={"event": "zero_copy", "offset": offset, "bytes": count},
            )
        # uvicorn ends the body: the response is complete, the connection kept or closed.
        await send(
            {
                "type": "http.response.body",
                "body": b"",
                "more_body": message.get("more_body", False),
            }
        )


# --- the app's end -----------------------------------------------------------------------


class BlobResponse(StreamingResponse):
    """A blob (or the range of it ``blob.byte_range`` says): sent by the kernel from the
    stored file when the server offers zero-copy and ``blob.open_file`` is set, else
    streamed from ``blob.chunks``."""

    def __init__(self, blob: BlobStream, status_code: int, headers: Mapping[str, str]) -> None:
        super().__init__(blob.chunks, status_code, headers=headers)
        self._blob = blob

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        open_file = self._blob.open_file
        if open_file is None or ZEROCOPY not in scope.get("extensions", {}):
            await super().__call__(scope, receive, send)
            return
        byte_range = self._blob.byte_range
        offset, count = (
            (0, self._blob.size) if byte_range is None else (byte_range.start, byte_range.length)
        )
        file = await open_file()  # before the headers: a blob gone meanwhile is still a 404
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await send(
                {
                    "type": ZEROCOPY,
                    "file": file,
                    "offset": offset,
                    "count": count,
                    "more_body": False,
                }
            )
        finally:
            file.close()
