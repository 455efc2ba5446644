"""Fifty clients at once: the memory a crowd costs, and how often a cold blob is fetched.

``cached_crowd``: 50 concurrent pulls of the cached big layer, the RSS of every process
of the server summed (workers included) sampled throughout, peak reported, against
``docker-registry`` serving the same crowd directly. ``cold_crowd``: 50 concurrent pulls
of the layer from a gateway that has never seen it, in front of the throttled link,
which counts the GETs of that blob that reach the upstream (single-flight says one).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from types import TracebackType

import aiohttp

from bench.client import CHUNK, BenchError, bearer_token, pull
from bench.procfs import tree_rss_bytes
from bench.results import CaseResult, Row
from bench.world import REPOSITORY, World, fresh_gateway

CROWD = 50
MIB = 1024 * 1024
SAMPLE_SECONDS = 0.02


class PeakRss:
    """Samples the RSS of a process tree in a thread while the ``with`` block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = tree_rss_bytes(pid)
        self.peak = self.before
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            self.samples += 1
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=900),
        connector=aiohttp.TCPConnector(limit=0),  # every client its own connection
    )


@dataclass(frozen=True)
class Crowd:
    seconds: float
    received: int  # bytes, all clients together
    complete: bool  # every pull read to its end

    @property
    def gib_per_second(self) -> float:
        return self.received / 1024**3 / self.seconds


async def _crowd(
    url: str, headers: dict[str, str], size: int, clients: int, window: float | None
) -> Crowd:
    """``clients`` concurrent pulls of ``url``, to their end or until ``window`` seconds
    pass (then they are cut off: a shorter run that still holds 50 streams open)."""
    received = [0] * clients

    async def client(session: aiohttp.ClientSession, index: int) -> None:
        async with session.get(url, headers=headers) as response:
            if response.status != 200:
                raise BenchError(f"GET {url}: HTTP {response.status}")
            async for piece in response.content.iter_chunked(CHUNK):
                received[index] += len(piece)

    started = time.perf_counter()
    async with _session() as session:
        everyone = asyncio.gather(*(client(session, index) for index in range(clients)))
        with contextlib.suppress(TimeoutError):  # the window closed: cut them off
            await asyncio.wait_for(everyone, window)
    complete = all(count == size for count in received)
    if window is None and not complete:
        raise BenchError("a pull in the crowd came back short")
    return Crowd(time.perf_counter() - started, sum(received), complete)


async def _bearer(base_url: str) -> dict[str, str]:
    async with _session() as session:
        return {"Authorization": "Bearer " + await bearer_token(session, base_url, REPOSITORY)}


async def cached_crowd(
    world: World, clients: int = CROWD, window: float | None = None
) -> CaseResult:
    """Peak RSS of the whole gateway during ``clients`` pulls of the cached layer."""
    path = world.blob_path(world.layer)
    bearer = await _bearer(world.gateway.url)
    async with _session() as session:  # cached already by the blob case; make sure
        await pull(session, world.gateway.url + path, bearer)
    with world.profiling("crowd"), PeakRss(world.gateway_pid) as gateway:
        through = await _crowd(world.gateway.url + path, bearer, world.layer_size, clients, window)
    with PeakRss(world.upstream_pid) as upstream:
        direct = await _crowd(world.upstream.url + path, {}, world.layer_size, clients, window)
    return CaseResult(
        rows=[
            Row(
                f"{clients} cached pulls, peak RSS MiB",
                "MiB",
                gateway.peak / MIB,
                upstream.peak / MIB,
                "docker-registry",
                "<= 250 MiB",
            )
        ],
        detail={
            "clients": clients,
            "window_seconds": window,
            "imagegate": _rss_detail(gateway, through),
            "docker_registry": _rss_detail(upstream, direct),
        },
    )


async def cold_crowd(world: World, clients: int = CROWD, window: float | None = None) -> CaseResult:
    """Upstream GETs of the layer for ``clients`` concurrent pulls on a cold gateway."""
    peers = world.peers
    path = world.blob_path(world.layer)
    profile = world.profile_path("cold")
    with fresh_gateway(peers, world.workers, "cold", peers.throttled.url, profile) as gateway:
        bearer = await _bearer(gateway.url)
        offset = peers.throttled.log_size()
        crowd = await _crowd(gateway.url + path, bearer, world.layer_size, clients, window)
        await asyncio.sleep(0.2)  # the link prints a request line as it forwards it
        fetches = peers.throttled.requests_since(offset, "GET", path)
    return CaseResult(
        rows=[
            Row(
                f"{clients} cold pulls, upstream fetches",
                "fetches",
                fetches,
                1,
                "single fetch",
                "1",
            )
        ],
        detail={
            "clients": clients,
            "window_seconds": window,
            "upstream_fetches": fetches,
            "seconds": crowd.seconds,
            "complete": crowd.complete,
        },
    )


def _rss_detail(sampler: PeakRss, crowd: Crowd) -> dict[str, float | bool]:
    return {
        "rss_before_mib": sampler.before / MIB,
        "rss_peak_mib": sampler.peak / MIB,
        "samples": sampler.samples,
        "seconds": crowd.seconds,
        "gib_per_second": crowd.gib_per_second,
        "complete": crowd.complete,
    }
