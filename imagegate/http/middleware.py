"""ASGI middleware: one structured log line per request, the registry API header, and
the request's place in the audit trail (where it comes from, and its registry decision).

What a request decided (a sign-in at ``/token``, an access decision) joins that one
line (``log_with_request``) as a field named after it (``login``, ``access``), instead
of a line of its own: a line costs as much to format as the rest of a token request.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegate.audit.context import Origin, set_origin
from imagegate.audit.events import AuditEvent, AuditSink
from imagegate.http.zerocopy import ZEROCOPY

USER_AGENT_LENGTH = 255
logger = logging.getLogger("imagegate.request")
# The scope state key under which AuditMiddleware keeps a decision until the response.
_DEFERRED = "audit_deferred"
_DIGEST_HEADER = b"docker-content-digest"
# The scope state key under which RequestLogMiddleware collects what joins its line.
_LOGGED = "log_fields"


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        sent = 0
        state = scope.setdefault("state", {})
        joined: dict[str, dict[str, Any]] = {}
        state[_LOGGED] = joined

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                if scope["path"].startswith("/v2"):
                    message.setdefault("headers", [])
                    message["headers"] = [
                        *message["headers"],
                        (b"docker-distribution-api-version", b"registry/2.0"),
                    ]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == ZEROCOPY:  # a file the kernel sends (``http.zerocopy``)
                sent += message.get("count") or 0
            await send(message)

        completed = False
        try:
            await self.app(scope, receive, send_wrapper)
            completed = True
        finally:
            client = scope.get("client")
            headers = dict(scope.get("headers") or [])
            logger.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "event": "request",
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "bytes": sent,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user": state.get("user"),
                    "client": client[0] if client else None,
                    "user_agent": headers.get(b"user-agent", b"").decode("latin-1"),
                    "completed": completed,
                    **joined,
                },
            )


def log_with_request(
    request: Request, logger: logging.Logger, message: str, event: str, fields: dict[str, Any]
) -> None:
    """Add ``fields`` to the request's one log line, as the field ``event``; without
    ``RequestLogMiddleware`` in front, log them as a line of their own (``message``)."""
    joined = request.scope.get("state", {}).get(_LOGGED)
    if joined is None:
        logger.info(message, extra={"event": event, **fields})
    else:
        joined[event] = fields


class AuditMiddleware:
    """Sets the audit origin (client address, user agent) for every request, and records
    a decision deferred with ``record_with_response`` when the response starts.

    Recording when the response starts, not when it ends, means the event is queued
    before the client has its answer; a response that never starts (an unexpected
    failure) still has its decision recorded when the request ends.
    """

    def __init__(self, app: ASGIApp, audit: AuditSink) -> None:
        self.app = app
        self._audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        agent = dict(scope.get("headers") or []).get(b"user-agent")
        # Cut to the column's length now: buffered events must stay small whatever a
        # client sends.
        user_agent = agent[:USER_AGENT_LENGTH].decode("latin-1") if agent else None
        set_origin(Origin(client[0] if client else None, user_agent))
        state = scope.setdefault("state", {})
        state[_DEFERRED] = None

        def commit(status: int | None, headers: Iterable[tuple[bytes, bytes]]) -> None:
            event = state.pop(_DEFERRED, None)
            if event is not None:
                self._audit.record(_with_response(event, status, headers))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                commit(message["status"], message.get("headers") or ())
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            commit(None, ())  # no response from the app: it failed or the client left


def record_with_response(request: Request, event: AuditEvent, audit: AuditSink) -> None:
    """Record ``event`` when the response starts, completed with what the response says:
    its status, and the digest it names (a manifest requested by tag resolves to one).

    Without ``AuditMiddleware`` in front, the event is recorded now, as it is.
    """
    state = request.scope.get("state", {})
    if _DEFERRED in state:
        state[_DEFERRED] = event
    else:
        audit.record(event)


def _with_response(
    event: AuditEvent, status: int | None, headers: Iterable[tuple[bytes, bytes]]
) -> AuditEvent:
    if status is None:
        return event
    data = {**event.data, "status": status}
    named = dict(headers)
    digest = named.get(_DIGEST_HEADER)
    if digest is None or status >= 300:
        return dataclasses.replace(event, data=data)
    # The response serves content by digest: its type and size are that content's.
    if b"content-type" in named:
        data["media_type"] = named[b"content-type"].decode("latin-1")
    if status == 200 and named.get(b"content-length", b"").isdigit():  # 206: a range
        data["size"] = int(named[b"content-length"])
    return dataclasses.replace(event, digest=event.digest or digest.decode("latin-1"), data=data)
