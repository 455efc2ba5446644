"""The load generator: one aiohttp client, 1 MiB reads, bounded request loops."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp

CHUNK = 1024 * 1024
_PARAMS = re.compile(r'(\w+)="([^"]*)"')


class BenchError(RuntimeError):
    """A server answered something a benchmark cannot measure (an error status...)."""


def basic_auth(credentials: tuple[str, str] | None) -> aiohttp.BasicAuth | None:
    return aiohttp.BasicAuth(*credentials) if credentials else None


async def bearer_token(
    session: aiohttp.ClientSession,
    base_url: str,
    repository: str,
    credentials: tuple[str, str] | None = None,
) -> str:
    """A pull token the way a client gets one: ``/v2/``'s challenge, then its realm."""
    async with session.get(f"{base_url}/v2/") as response:
        challenge = response.headers.get("WWW-Authenticate", "")
    params = dict(_PARAMS.findall(challenge))
    if response.status != 401 or "realm" not in params:
        raise BenchError(f"{base_url}/v2/ gave no Bearer challenge ({response.status})")
    query = {"service": params.get("service", ""), "scope": f"repository:{repository}:pull"}
    async with session.get(params["realm"], params=query, auth=basic_auth(credentials)) as response:
        if response.status != 200:
            raise BenchError(f"token request: HTTP {response.status}: {await response.text()}")
        body = await response.json()
    return str(body.get("token") or body["access_token"])


@dataclass(frozen=True)
class Pull:
    size: int
    seconds: float

    @property
    def gbps(self) -> float:
        return self.size / self.seconds / 1e9


async def pull(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str] | None = None,
    pause: float = 0.0,
) -> Pull:
    """GET ``url`` reading the body in 1 MiB pieces (sleeping ``pause`` after each)."""
    started = time.perf_counter()
    size = 0
    async with session.get(url, headers=headers) as response:
        if response.status != 200:
            raise BenchError(f"GET {url}: HTTP {response.status}: {await response.text()}")
        async for piece in response.content.iter_chunked(CHUNK):
            size += len(piece)
            if pause:
                await asyncio.sleep(pause)
    return Pull(size, time.perf_counter() - started)


@dataclass(frozen=True)
class Rate:
    requests: int
    seconds: float
    latencies: tuple[float, ...]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


async def rate(
    send: Callable[[], Awaitable[None]],
    *,
    concurrency: int,
    seconds: float,
    max_requests: int,
) -> Rate:
    """Call ``send`` from ``concurrency`` workers until ``seconds`` pass or ``max_requests``."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline and len(latencies) < max_requests:
            started = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Rate(len(latencies), time.perf_counter() - started, tuple(latencies))


def getter(
    session: aiohttp.ClientSession,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    auth: aiohttp.BasicAuth | None = None,
) -> Callable[[], Awaitable[None]]:
    """A ``send`` for ``rate``: one GET of ``url`` that must answer 200, body read."""

    async def send() -> None:
        async with session.get(url, headers=headers, auth=auth) as response:
            await response.read()
            if response.status != 200:
                raise BenchError(f"GET {url}: HTTP {response.status}")

    return send
