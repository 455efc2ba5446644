"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: it can serve)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Check = Callable[[], Awaitable[bool]]


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


class Readiness:
    def __init__(self, checks: Mapping[str, Check]) -> None:
        self._checks = checks

    async def endpoint(self, _: Request) -> Response:
        results = {}
        for name, check in self._checks.items():
            try:
                results[name] = await check()
            except Exception:  # a failing check means "not ready", never a crash
                results[name] = False
        ready = all(results.values())
        body = {"status": "ready" if ready else "unavailable", "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)
