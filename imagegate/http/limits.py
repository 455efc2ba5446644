"""Request limits: header size, header count, time to send the headers, body size.

uvicorn limits none of these for httptools: it reads a header of any size into memory,
any number of headers, waits forever for a client that sends them a byte at a time
(slowloris), and hands the app bodies of any size. Two seams close that:

- ``LimitedHttpTools``, a small subclass of uvicorn's httptools protocol, counts the
  request line and headers as they arrive and answers ``431`` past ``header_bytes`` or
  ``headers``; a connection whose request headers are not complete ``header_seconds``
  after it opened (or, on a kept-alive connection, after the next request began) gets
  ``408`` and is closed. These answers are written before any route is known, so they
  are the registry's JSON error, which every client of the gateway can read. A
  connection closed while the client is still sending (a refused request, a body
  refused unread) closes gently: the answer, then end of output, then what the client
  still sends is read and dropped for ``LINGER_SECONDS`` before the socket closes.
  Closed at once, the kernel would answer the unread bytes with a reset, and the
  client would often lose the answer with them.
- ``BodyLimit``, an ASGI middleware, refuses a body larger than its route accepts with
  ``413`` before the app reads past the limit (at once, when ``Content-Length`` says so)
  and closes the connection, so the rest is never read. Blob uploads are unlimited; a
  manifest may be ``MAX_MANIFEST_BYTES``; everything else ``body_bytes``. Each part of
  the gateway answers in its own shape: the registry's JSON error, the API's, the
  console's problem page.

The protocol also sends zero-copy bodies (``http.zerocopy``): a seam of its own, hooked
in where uvicorn starts each request's app.

None of this is a setting: the limits are far above what any client of the gateway
sends (the largest registry token it issues is about 19 KiB), and a reverse proxy in
front may set stricter ones of its own.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import is_ssl

from imagegate.core.errors import RegistryError
from imagegate.hosted.interfaces import MAX_MANIFEST_BYTES
from imagegate.http.errors import error_body
from imagegate.http.zerocopy import ZeroCopySend

logger = logging.getLogger("imagegate.http")

# The part of a request line besides its method and target: " HTTP/1.1\r\n".
_REQUEST_LINE_BYTES = 11
# What a header line adds to its name and value: ": " and "\r\n".
_HEADER_LINE_BYTES = 4
# How long a client still sending after its answer may go on before the socket closes.
LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class RequestLimits:
    header_bytes: int = 64 * 1024  # the request line and every header
    headers: int = 100
    header_seconds: float = 20.0
    body_bytes: int = 64 * 1024  # API and console JSON and forms, token requests
    manifest_bytes: int = MAX_MANIFEST_BYTES


class HeadersTooLarge(RegistryError):
    code = "SIZE_INVALID"
    status = 431


class BodyTooLarge(RegistryError):
    code = "SIZE_INVALID"
    status = 413


class HeaderTimeout(RegistryError):
    status = 408


# --- the request line and headers: a protocol subclass ---------------------------------


class LimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, with limits on the headers and the time they take,
    and zero-copy bodies (``http.zerocopy``) on plain-HTTP connections."""

    limits: ClassVar[RequestLimits] = RequestLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_headers = False  # a request has begun and its headers are not complete
        self._header_bytes = 0  # what arrived while they were not
        self._header_count = 0
        self._exact_bytes = 0  # the request line and headers parsed so far
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False
        self._zero_copy = False  # the kernel may send bodies: no TLS between

    @classmethod
    def with_limits(cls, limits: RequestLimits) -> type[LimitedHttpTools]:
        """This protocol with other limits (uvicorn takes a class, not an instance)."""
        return type(cls.__name__, (cls,), {"limits": limits})

    # -- the connection ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._zero_copy = not is_ssl(transport) and transport.get_extra_info("socket") is not None
        # Requests see the transport through this: it closes gently when input is unread.
        self.transport = cast(asyncio.Transport, _GentleClose(transport, self._unread))
        self._arm()  # a client that connects and sends nothing is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self.transport.is_closing():
            return  # what a refused or lingering client still sends is dropped
        super().data_received(data)
        if self._in_headers and not self._refused:
            # This chunk ended inside the headers: all of it counts (the parser holds an
            # unfinished header in memory, where on_header does not see it yet).
            self._header_bytes += len(data)
            self._check(self._header_bytes)

    # -- the parser's callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = self._header_count = 0
        self._exact_bytes = _REQUEST_LINE_BYTES
        if self._deadline is None:
            self._arm()  # the next request on a kept-alive connection

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        super().on_url(url)
        self._exact_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        super().on_header(name, value)
        self._header_count += 1
        self._exact_bytes += len(name) + len(value) + _HEADER_LINE_BYTES
        self._check(self._exact_bytes)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_headers = False
        self._disarm()
        self._check(self._exact_bytes + len(self.parser.get_method()))
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # Every request's app starts here, pipelined ones too: each gets its own send,
        # and the offer of zero-copy in its scope (so nothing offers it without this hook).
        if self._zero_copy:
            app = cast(ASGI3Application, ZeroCopySend(cast(ASGIApp, app), cycle))
        super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    # -- limits -------------------------------------------------------------------------

    def _check(self, header_bytes: int) -> None:
        limits = self.limits
        if self._header_count > limits.headers:
            self._refuse(
                HeadersTooLarge(
                    f"the request has more than {limits.headers} headers",
                    detail={"limit": limits.headers},
                )
            )
        elif header_bytes > limits.header_bytes:
            self._refuse(
                HeadersTooLarge(
                    f"the request line and headers are larger than {limits.header_bytes} bytes",
                    detail={"limit": limits.header_bytes},
                )
            )

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.limits.header_seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self._busy():
            self._arm()  # answering an earlier request: the next one's clock starts after
        elif self._in_headers:
            seconds = self.limits.header_seconds
            self._refuse(
                HeaderTimeout(
                    f"the request headers did not arrive within {seconds:g} seconds",
                    detail={"limit_seconds": seconds},
                )
            )
        else:
            self.transport.close()  # nothing was asked: nothing to answer

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _unread(self) -> bool:
        """Whether the client may still be sending: a refused request, or a body not
        read to its end."""
        return self._refused or (self.cycle is not None and self.cycle.more_body)

    def _refuse(self, error: RegistryError) -> None:
        """Answer ``error`` and close: nothing more from this client is read."""
        self._refused = True
        self._disarm()
        client = self.client[0] if self.client else None
        logger.warning(
            "request refused: %s",
            error.message,
            extra={"event": "request_refused", "status": error.status, "client": client},
        )
        if self.transport.is_closing():
            return
        if not self._busy():  # never in the middle of an answer to an earlier request
            body = error_body(error)
            head = [STATUS_LINE[error.status]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
            ]
            self.transport.write(b"".join(head) + body)
        self.transport.close()


class _GentleClose:
    """A transport whose ``close`` lingers while the client may still be sending."""

    def __init__(self, transport: asyncio.Transport, unread: Callable[[], bool]) -> None:
        self._transport = transport
        self._unread = unread
        self._lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._lingering or self._transport.is_closing()

    def write(self, data: bytes) -> None:
        if not self.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self.is_closing():
            return
        if not (self._unread() and self._transport.can_write_eof()):
            self._transport.close()
            return
        self._lingering = True
        self._transport.write_eof()  # the client reads the answer, then the end of it
        self._transport.resume_reading()  # and its input is drained, not left to reset
        loop = asyncio.get_running_loop()
        loop.call_later(LINGER_SECONDS, self._transport.close)


# --- bodies: an ASGI middleware ---------------------------------------------------------

Refusal = Callable[[Request, BodyTooLarge], Response]

_UPLOAD = re.compile(r"/v2/.+/blobs/uploads(/[^/]*)?")
_MANIFEST = re.compile(r"/v2/.+/manifests/[^/]+")


def body_limit(method: str, path: str, limits: RequestLimits) -> int | None:
    """The most a request body may hold; ``None`` for blob uploads (no limit).

    The registry's routes (``http.registry``) say which requests these are; a test
    pushes through every upload flow with bodies past ``body_bytes``.
    """
    if method in ("POST", "PATCH", "PUT") and _UPLOAD.fullmatch(path):
        return None
    if method == "PUT" and _MANIFEST.fullmatch(path):
        return limits.manifest_bytes
    return limits.body_bytes


class _Exceeded(Exception):
    """The body went past its limit while the app read it."""


class BodyLimit:
    """Refuses a request body past its route's limit (``body_limit``), with ``413``.

    ``areas`` pairs the routes of each part of the gateway with how it refuses; any
    other request gets ``default``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: Refusal,
        areas: Sequence[tuple[Sequence[BaseRoute], Refusal]] = (),
        limits: RequestLimits = RequestLimits(),
    ) -> None:
        self.app = app
        self._default = default
        self._areas = areas
        self._limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"], self._limits)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, limit, int(declared))(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _Exceeded
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _Exceeded:
            if started:
                raise  # too late for an answer: uvicorn closes the connection
            await self._refuse(scope, limit, None)(scope, receive, send)

    def _refuse(self, scope: Scope, limit: int, declared: int | None) -> Response:
        size = f"is {declared} bytes" if declared is not None else f"has more than {limit} bytes"
        error = BodyTooLarge(
            f"the request body {size}; at most {limit} bytes are accepted here",
            detail={"limit": limit},
        )
        refusal = next(
            (
                refuse
                for routes, refuse in self._areas
                if any(route.matches(scope)[0] != Match.NONE for route in routes)
            ),
            self._default,
        )
        response = refusal(Request(scope), error)
        response.headers["Connection"] = "close"  # the rest of the body is never read
        return response
