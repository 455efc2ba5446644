"""The zero-copy extension of our uvicorn protocol (``http.zerocopy``), over raw sockets.

A small ASGI app sends files with ``http.response.zerocopy`` messages through
``LimitedHttpTools``, served by uvicorn in a thread on each loop ``imagegate serve`` may
run (uvloop, asyncio's own). uvicorn refuses any body message but its own, so every
byte checked here went through the protocol's ``sendfile``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast
from urllib.parse import parse_qs

import pytest
import uvicorn
import uvloop
from starlette.types import Message, Receive, Scope, Send
from uvicorn.protocols.http.flow_control import FlowControl

from imagegate.core.digests import Digest
from imagegate.http.limits import LimitedHttpTools
from imagegate.http.zerocopy import ZEROCOPY, BlobResponse, send_file
from imagegate.proxy.interfaces import BlobStream, ByteRange
from tests.support.process import free_port
from tests.support.rawhttp import exchange, read_reply, request

MIB = 1024 * 1024
FILE_BYTES = 24 * MIB  # more than loopback's socket buffers hold: the sender must wait
STREAMED_BYTES = 8 * MIB
CONTENT = random.Random(10).randbytes(FILE_BYTES)


@dataclass
class FileApp:
    """``/file?offset=&count=``: a zero-copy body; ``/copy``: the same from a copy of the
    file, deleted once open; ``/stream?size=``: an ordinary body; ``/extensions``."""

    path: Path
    errors: list[BaseException] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await self._answer(scope, send)
        except BaseException as exc:
            self.errors.append(exc)
            raise

    async def _answer(self, scope: Scope, send: Send) -> None:
        query = {
            name: int(values[0])
            for name, values in parse_qs(scope["query_string"].decode()).items()
        }
        if scope["path"] == "/extensions":
            body = json.dumps(sorted(scope.get("extensions", {}))).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body))],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope["path"] == "/stream":
            size = query["size"]
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"%d" % size)],
                }
            )
            await send({"type": "http.response.body", "body": CONTENT[:size]})
            return
        path = self.path
        if scope["path"] == "/copy":
            path = self.path.with_name(f"copy-{time.monotonic_ns()}")
            path.write_bytes(CONTENT)
        offset, count = query.get("offset", 0), query.get("count", FILE_BYTES)
        with path.open("rb", buffering=0) as file:
            if path != self.path:
                path.unlink()  # as garbage collection may, while the body is sent
            headers = [(b"content-length", b"%d" % count)]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": ZEROCOPY, "file": file, "offset": offset, "count": count})


@dataclass
class Served:
    port: int
    app: FileApp

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)


LOOPS = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


@pytest.fixture(scope="module", params=sorted(LOOPS))
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    path = tmp_path_factory.mktemp("zerocopy") / "blob"
    path.write_bytes(CONTENT)
    app = FileApp(path)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=free_port(),
        http=LimitedHttpTools,
        log_config=None,
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(config)

    def run() -> None:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
            runner.run(server.serve())

    thread = threading.Thread(target=run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield Served(config.port, app)
    server.should_exit = True
    thread.join(30)
    assert app.errors == [], "the app failed"


def test_the_protocol_offers_zero_copy(served: Served) -> None:
    (reply,) = exchange(served.port, ("GET", "/extensions"))
    assert json.loads(reply.body) == [ZEROCOPY]


def test_whole_file_then_ranges_on_one_connection(served: Served) -> None:
    whole, middle, end = exchange(
        served.port,
        ("GET", "/file"),
        ("GET", f"/file?offset={3 * MIB + 5}&count={MIB + 7}"),
        ("GET", f"/file?offset={FILE_BYTES - 10}&count=10"),
    )
    assert (whole.status, len(whole.body)) == (200, FILE_BYTES)
    assert whole.body == CONTENT
    assert middle.body == CONTENT[3 * MIB + 5 : 4 * MIB + 12]
    assert end.body == CONTENT[-10:]
    assert "transfer-encoding" not in whole.headers


def test_head_sends_no_body_and_the_connection_goes_on(served: Served) -> None:
    head, body = exchange(served.port, ("HEAD", "/file?count=1000"), ("GET", "/file?count=1000"))
    assert (head.status, head.headers["content-length"], head.body) == (200, "1000", b"")
    assert body.body == CONTENT[:1000]


def test_pipelined_after_a_body_still_buffered(served: Served) -> None:
    """A zero-copy body waits for the bytes the transport still holds: unread by the
    client, most of the first (ordinary) body is in the transport's buffer when the
    second request's answer starts."""
    with served.connect() as connection, connection.makefile("rb") as reader:
        connection.sendall(
            request("GET", f"/stream?size={STREAMED_BYTES}") + request("GET", "/file")
        )
        time.sleep(0.5)
        streamed, sent = read_reply(reader), read_reply(reader)
    assert streamed.body == CONTENT[:STREAMED_BYTES]
    assert sent.body == CONTENT


class _Connection(asyncio.Protocol):
    """The server's end of a connection, its flow control as uvicorn's protocol keeps it."""

    def __init__(self, accepted: asyncio.Future[_Connection]) -> None:
        self._accepted = accepted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.flow = FlowControl(self.transport)
        self._accepted.set_result(self)

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_send_file_waits_for_what_the_transport_still_holds(loop: str, tmp_path: Path) -> None:
    """Bytes written to the transport before a file (the headers, or an earlier answer
    the client has not read) reach the client first, whole."""
    path = tmp_path / "file"
    path.write_bytes(CONTENT)
    before = CONTENT[::-1][:STREAMED_BYTES]

    async def run() -> bytes:
        event_loop = asyncio.get_running_loop()
        accepted: asyncio.Future[_Connection] = event_loop.create_future()
        server = await event_loop.create_server(lambda: _Connection(accepted), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connection = await accepted
        connection.transport.write(before)  # the client reads nothing yet
        assert connection.transport.get_write_buffer_size() > 0
        with path.open("rb", buffering=0) as file:
            sending = asyncio.create_task(
                send_file(connection.transport, connection.flow, file.fileno(), 5, FILE_BYTES - 5)
            )
            received = await reader.readexactly(len(before) + FILE_BYTES - 5)
            await sending
        writer.close()
        connection.transport.close()
        server.close()
        return received

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        received = runner.run(run())
    assert received == before + CONTENT[5:]


def test_a_client_leaving_mid_body_breaks_nothing(served: Served) -> None:
    for linger in (False, True):  # a close, then a reset
        with served.connect() as connection:
            connection.sendall(request("GET", "/file"))
            assert len(connection.recv(MIB)) > 0
            if linger:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    (reply,) = exchange(served.port, ("GET", "/file"))
    assert reply.body == CONTENT


def test_a_file_deleted_while_sent_is_sent_whole(served: Served) -> None:
    (reply,) = exchange(served.port, ("GET", "/copy"))
    assert reply.body == CONTENT
    assert [name for name in os.listdir(served.app.path.parent) if name.startswith("copy-")] == []


# --- the app's end: BlobResponse ----------------------------------------------------------


def _blob_response(path: Path, byte_range: ByteRange | None) -> BlobResponse:
    start, end = (0, FILE_BYTES - 1) if byte_range is None else (byte_range.start, byte_range.end)

    async def chunks() -> AsyncIterator[bytes]:
        yield CONTENT[start : end + 1]

    async def open_file() -> BinaryIO:
        return path.open("rb", buffering=0)

    blob = BlobStream(
        Digest.parse("sha256:" + "0" * 64), FILE_BYTES, chunks(), byte_range, open_file
    )
    return BlobResponse(
        blob, 200 if byte_range is None else 206, {"Content-Length": str(end - start + 1)}
    )


def _call(response: BlobResponse, extensions: dict[str, object]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "extensions": extensions,
        "asgi": {"spec_version": "2.4"},
    }
    asyncio.run(response(scope, receive, send))
    return sent


def test_a_blob_response_hands_the_kernel_its_range_when_offered(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(CONTENT)
    start, body = _call(_blob_response(path, ByteRange(10, 19, FILE_BYTES)), {ZEROCOPY: {}})
    assert (start["type"], start["status"]) == ("http.response.start", 206)
    assert (body["type"], body["offset"], body["count"]) == (ZEROCOPY, 10, 10)
    assert body["file"].closed, "the response closes the file once it is sent"


def test_a_blob_response_streams_its_chunks_otherwise(tmp_path: Path) -> None:
    sent = _call(_blob_response(tmp_path / "absent", None), {})
    assert sent[0]["type"] == "http.response.start"
    assert b"".join(message.get("body", b"") for message in sent[1:]) == CONTENT
    assert {message["type"] for message in sent[1:]} == {"http.response.body"}
