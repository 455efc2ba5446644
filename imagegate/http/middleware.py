"""ASGI middleware: one structured log line per request, and the registry API header."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("imagegate.request")


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
                },
            )
