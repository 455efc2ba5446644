"""Request limits over raw sockets, against a gateway served as ``imagegate serve`` serves
it (``bootstrap.server_config``), with a header timeout of a second so the test is quick.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import uvicorn

from imagegate.bootstrap import running_gateway, server_config
from imagegate.config import load_settings
from imagegate.hosted.interfaces import MAX_MANIFEST_BYTES
from imagegate.http.limits import RequestLimits
from tests.support.gateway import Gateway as ServedGateway
from tests.support.process import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIMITS = RequestLimits(header_seconds=1.0)
BODY_LIMIT = LIMITS.body_bytes
CLOSE = b"Connection: close\r\n"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def port(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[int]:
    settings = load_settings(
        {
            "IMAGEGATE_DATA_DIR": str(tmp_path_factory.mktemp("limits") / "data"),
            "IMAGEGATE_UPSTREAM_URL": "http://127.0.0.1:9",
            "IMAGEGATE_HUB_API_URL": "",
        },
        port=free_port(),
    )
    async with running_gateway(settings) as app:
        server = uvicorn.Server(server_config(app, settings, LIMITS))
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.02)
        yield settings.port
        server.should_exit = True
        await task


async def exchange(port: int, *pieces: bytes, pause: float = 0.0) -> Reply | None:
    """Send ``pieces`` (``pause`` s apart) while reading until the server ends its output;
    the reply, or None when it closed without one. A server that never ends it fails the
    test on the timeout."""
    return parse(await converse(port, pieces, [pause] * len(pieces)))


async def converse(port: int, pieces: Sequence[bytes], pauses: Sequence[float]) -> bytes:
    """Send each piece then wait its pause, until the server ends its output; all of it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    reading = asyncio.create_task(reader.read())
    try:
        for piece, pause in zip(pieces, pauses, strict=True):
            if reading.done():
                break  # answered (and closed) before we were done: stop sending
            try:
                writer.write(piece)
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(pause)
        return await asyncio.wait_for(reading, timeout=30)
    finally:
        writer.close()


def parse(raw: bytes) -> Reply | None:
    if not raw:
        return None
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(lines[0].split()[1]), headers, body)


def size_invalid(message: str, limit: int) -> dict[str, object]:
    """The registry's JSON error for a request over a limit."""
    return {"errors": [{"code": "SIZE_INVALID", "message": message, "detail": {"limit": limit}}]}


def request(method: str, path: str, *headers: bytes, body: bytes = b"") -> bytes:
    length = b"Content-Length: %d\r\n" % len(body) if body or method in ("POST", "PUT") else b""
    return b"%s %s HTTP/1.1\r\nHost: gateway\r\n%s%s%s\r\n%s" % (
        method.encode(),
        path.encode(),
        b"".join(headers),
        length,
        CLOSE,
        body,
    )


def chunked(method: str, path: str, content_type: bytes, body: bytes) -> bytes:
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 8192]), body[i : i + 8192])
        for i in range(0, len(body), 8192)
    )
    return (
        b"%s %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
        b"%s\r\n%s0\r\n\r\n" % (method.encode(), path.encode(), content_type, CLOSE, chunks)
    )


# --- headers ------------------------------------------------------------------------------


async def test_headers_up_to_the_limit_are_served(port: int) -> None:
    big = b"X-Padding: " + b"a" * (LIMITS.header_bytes - 200) + b"\r\n"
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(LIMITS.headers - 3))
    for extra in (big, many):
        reply = await exchange(port, request("GET", "/healthz", extra))
        assert reply is not None and reply.status == 200


async def test_oversize_headers_get_431_and_the_connection_is_closed(port: int) -> None:
    for size in (LIMITS.header_bytes + 100, 4 * 1024 * 1024):
        big = b"X-Padding: " + b"a" * size + b"\r\n"
        reply = await exchange(port, request("GET", "/healthz", big))
        assert reply is not None and reply.status == 431
        assert reply.headers["connection"] == "close"
        assert reply.json() == size_invalid(
            "the request line and headers are larger than 65536 bytes", 65536
        )


async def test_too_many_headers_get_431(port: int) -> None:
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(LIMITS.headers + 1))
    reply = await exchange(port, request("GET", "/healthz", many))
    assert reply is not None and reply.status == 431
    assert reply.json() == size_invalid("the request has more than 100 headers", 100)


async def test_a_client_sending_its_headers_slowly_is_cut_off(port: int) -> None:
    drip = [b"GET /healthz HTTP/1.1\r\n", *(b"X-Slow-%d: v\r\n" % n for n in range(100))]
    reply = await exchange(port, *drip, pause=0.1)  # 10 s of headers; the limit is 1 s
    assert reply is not None and reply.status == 408
    assert reply.headers["connection"] == "close"
    error = reply.json()["errors"][0]  # type: ignore[index]
    assert error["message"] == "the request headers did not arrive within 1 seconds"


async def test_the_next_request_on_a_kept_alive_connection_is_timed_too(port: int) -> None:
    first = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"
    drip = [first, b"GET /healthz HTTP/1.1\r\n", *(b"X-Slow-%d: v\r\n" % n for n in range(100))]
    raw = await converse(port, drip, [0.3] + [0.1] * (len(drip) - 1))
    assert raw.startswith(b"HTTP/1.1 200 OK")  # the first request was answered...
    assert b"HTTP/1.1 408 Request Timeout" in raw  # ...the slow second one was not


async def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert await asyncio.wait_for(reader.read(), timeout=30) == b""  # closed, unanswered
    finally:
        writer.close()


# --- bodies ---------------------------------------------------------------------------------

TOO_LARGE = b"x" * (BODY_LIMIT + 1)


async def test_an_oversize_body_on_the_api_is_413_in_the_apis_shape(port: int) -> None:
    for raw in (
        request("POST", "/v2/users/login", b"Content-Type: application/json\r\n", body=TOO_LARGE),
        chunked("POST", "/v2/users/login", b"application/json", TOO_LARGE),
    ):
        reply = await exchange(port, raw)
        assert reply is not None and reply.status == 413
        body = reply.json()
        assert isinstance(body, dict) and body["errinfo"] is None
        assert body["message"].startswith("the request body ")
        assert body["message"].endswith(f"at most {BODY_LIMIT} bytes are accepted here")


async def test_an_oversize_body_on_the_console_is_413_on_its_problem_page(port: int) -> None:
    form = b"Content-Type: application/x-www-form-urlencoded\r\n"
    for raw in (
        request("POST", "/console/sign-in", form, body=b"username=" + TOO_LARGE),
        chunked(
            "POST",
            "/console/sign-in",
            b"application/x-www-form-urlencoded",
            b"username=" + TOO_LARGE,
        ),
    ):
        reply = await exchange(port, raw)
        assert reply is not None and reply.status == 413
        assert reply.headers["content-type"].startswith("text/html")
        assert re.search(r"<h1>[^<]*too large</h1>", reply.body.decode(), re.IGNORECASE)


async def test_a_console_form_sent_in_chunks_is_read_like_any_other(port: int) -> None:
    # A small form without Content-Length reaches the form's own checks (here: no CSRF
    # token), not a "too large" page.
    raw = chunked("POST", "/console/sign-in", b"application/x-www-form-urlencoded", b"a=b")
    reply = await exchange(port, raw)
    assert reply is not None and reply.status == 403
    assert "Form expired" in reply.body.decode()


async def test_an_oversize_body_at_the_token_endpoint_is_a_registry_error(port: int) -> None:
    form = b"Content-Type: application/x-www-form-urlencoded\r\n"
    declared = request("POST", "/token", form, body=b"scope=" + TOO_LARGE)
    reply = await exchange(port, declared)
    assert reply is not None and reply.status == 413
    assert reply.json() == size_invalid(
        f"the request body is {len(TOO_LARGE) + 6} bytes; "
        f"at most {BODY_LIMIT} bytes are accepted here",
        BODY_LIMIT,
    )
    streamed = chunked("POST", "/token", b"application/x-www-form-urlencoded", TOO_LARGE)
    reply = await exchange(port, streamed)
    assert reply is not None and reply.status == 413
    error = reply.json()["errors"][0]  # type: ignore[index]
    assert error["message"] == (
        f"the request body has more than {BODY_LIMIT} bytes; "
        f"at most {BODY_LIMIT} bytes are accepted here"
    )


async def test_a_manifest_declared_past_its_limit_is_refused_before_it_is_sent(
    port: int,
) -> None:
    head = (
        b"PUT /v2/acme/app/manifests/1 HTTP/1.1\r\nHost: gateway\r\n"
        b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
        b"Content-Length: %d\r\n\r\n" % (MAX_MANIFEST_BYTES + 1)
    )
    reply = await exchange(port, head)  # and not a byte of the body
    assert reply is not None and reply.status == 413
    assert reply.json()["errors"][0]["code"] == "SIZE_INVALID"  # type: ignore[index]


async def test_imagegate_serve_applies_the_limits(tmp_path: Path) -> None:
    with ServedGateway(tmp_path, upstream_url="http://127.0.0.1:9") as gateway:
        big = b"X-Padding: " + b"a" * (LIMITS.header_bytes + 100) + b"\r\n"
        reply = await exchange(gateway.port, request("GET", "/healthz", big))
        assert reply is not None and reply.status == 431


# --- malformed headers ----------------------------------------------------------------------


async def test_basic_credentials_that_are_not_ascii_are_a_401(port: int) -> None:
    # A byte above 0x7f is no base64: a clear 401 like any malformed credentials (was a 500).
    reply = await exchange(port, request("GET", "/token", b"Authorization: Basic \xe9\r\n"))
    assert reply is not None and reply.status == 401
    error = reply.json()["errors"][0]  # type: ignore[index]
    assert (error["code"], error["message"]) == ("UNAUTHORIZED", "malformed Basic credentials")
