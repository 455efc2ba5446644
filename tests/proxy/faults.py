"""A fault-injecting upstream: an aiohttp server in front of a real registry.

It forwards every request (auth included) to the registry and counts them; a test sets
``fault`` to answer chosen requests itself: a blob cut off mid-stream, wrong bytes, or
a redirect to a ``Cdn`` that records whether credentials followed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

Fault = Callable[[web.Request, "FaultyUpstream"], Awaitable[web.StreamResponse | None]]
_HOP_HEADERS = frozenset(
    {"host", "connection", "transfer-encoding", "keep-alive", "content-length"}
)


class _Server:
    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class FaultyUpstream(_Server):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.fault: Fault | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> FaultyUpstream:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        await self._serve(self._handle)
        return self

    async def stop(self) -> None:
        await super().stop()
        if self._session is not None:
            await self._session.close()

    def count(self, method: str, path_part: str) -> int:
        return sum(1 for m, path in self.requests if m == method and path_part in path)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if self.fault is not None:
            answer = await self.fault(request, self)
            if answer is not None:
                return answer
        return await self.forward(request)

    async def fetch(self, request: web.Request) -> tuple[int, dict[str, str], bytes]:
        """The registry's whole answer to ``request`` (for faults that alter it)."""
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method,
            self.target + request.path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as response:
            body = await response.read()
            out = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}
            return response.status, out, body

    async def forward(self, request: web.Request) -> web.StreamResponse:
        status, headers, body = await self.fetch(request)
        if request.method == "HEAD":
            response = web.StreamResponse(status=status, headers=headers)
            response.content_length = int(headers.get("Content-Length") or 0) or None
            await response.prepare(request)
            return response
        return web.Response(status=status, headers=headers, body=body)


def is_blob_get(request: web.Request, digest: str) -> bool:
    return request.method == "GET" and request.path.endswith(f"/blobs/{digest}")


def truncate_blob(digest: str) -> Fault:
    """Announce the whole blob, send half of it, and drop the connection."""

    async def fault(request: web.Request, upstream: FaultyUpstream) -> web.StreamResponse | None:
        if not is_blob_get(request, digest):
            return None
        status, headers, body = await upstream.fetch(request)
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        assert request.transport is not None
        request.transport.close()
        return response

    return fault


def corrupt_blob(digest: str) -> Fault:
    """Send a blob of the right length whose last byte is wrong."""

    async def fault(request: web.Request, upstream: FaultyUpstream) -> web.StreamResponse | None:
        if not is_blob_get(request, digest):
            return None
        status, headers, body = await upstream.fetch(request)
        wrong = body[:-1] + bytes([body[-1] ^ 0xFF])
        return web.Response(status=status, headers=headers, body=wrong)

    return fault


class Cdn(_Server):
    """A blob CDN: serves bytes by digest and records each request's Authorization."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        super().__init__()
        self.blobs = blobs
        self.authorizations: list[str | None] = []

    async def start(self) -> Cdn:
        await self._serve(self._handle)
        return self

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.authorizations.append(request.headers.get("Authorization"))
        return web.Response(body=self.blobs[request.path.rsplit("/", 1)[-1]])


def redirect_blob(digest: str, cdn: Cdn) -> Fault:
    """Answer a blob GET with a 307 to the CDN, as Docker Hub does."""

    async def fault(request: web.Request, upstream: FaultyUpstream) -> web.StreamResponse | None:
        if not is_blob_get(request, digest):
            return None
        if request.headers.get("Authorization") is None:
            return None  # let the registry challenge first
        raise web.HTTPTemporaryRedirect(f"{cdn.url}/cdn/{digest}?signature=abc%2Fdef")

    return fault
