"""The cases. Each runs one client against imagegate and a baseline, interleaved.

A case returns table ``Row``s (imagegate, baseline, ratio) and the raw figures behind
them for the JSON report. Ratios are imagegate over baseline, so for rates and
throughputs 1.0 is parity and lower is slower; for times higher is slower.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.client import Pull, Rate, basic_auth, bearer_token, getter, pull, rate
from bench.procfs import cpu_seconds
from bench.world import REPOSITORY, World
from bench.wrk import Load, wrk

GIB = 1024**3
CONCURRENCY = 8
WARM_REQUESTS = 50
WARM_SECONDS = 1.0


@dataclass(frozen=True)
class Row:
    case: str
    unit: str
    imagegate: float
    baseline: float
    baseline_name: str

    @property
    def ratio(self) -> float:
        return self.imagegate / self.baseline if self.baseline else float("nan")


@dataclass
class CaseResult:
    rows: list[Row] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


def _session() -> aiohttp.ClientSession:
    # Blobs are stored gzip'd; the bytes on the wire are what is measured.
    return aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=600))


async def blob_throughput(world: World, pulls: int) -> CaseResult:
    """(a) The big layer: first (uncached) pull, then ``pulls`` cached ones, vs direct."""
    gateway, upstream = world.gateway.url, world.upstream.url
    path = world.blob_path(world.layer)
    async with _session() as session:
        bearer = {"Authorization": "Bearer " + await bearer_token(session, gateway, REPOSITORY)}
        cpu = cpu_seconds(world.gateway_pid)
        first = await pull(session, gateway + path, bearer)
        first_cpu = cpu_seconds(world.gateway_pid) - cpu
        first_direct = await pull(session, upstream + path)
        through: list[Pull] = []
        direct: list[Pull] = []
        gateway_cpu = upstream_cpu = 0.0
        for _ in range(pulls):  # interleaved, so drift on the machine hits both alike
            cpu = cpu_seconds(world.gateway_pid)
            through.append(await pull(session, gateway + path, bearer))
            gateway_cpu += cpu_seconds(world.gateway_pid) - cpu
            cpu = cpu_seconds(world.upstream_pid)
            direct.append(await pull(session, upstream + path))
            upstream_cpu += cpu_seconds(world.upstream_pid) - cpu
    for result in (first, first_direct, *through, *direct):
        assert result.size == world.layer_size, "a pull came back short"
    gib = world.layer_size * pulls / GIB
    return CaseResult(
        rows=[
            *_blob_rows(
                "cached blob",
                [p.gbps for p in through],
                [p.gbps for p in direct],
                (gateway_cpu / gib, upstream_cpu / gib),
            ),
            Row("first pull (uncached), s", "s", first.seconds, first_direct.seconds, "direct"),
        ],
        detail={
            "blob_bytes": world.layer_size,
            "pulls": pulls,
            "first_pull_seconds": first.seconds,
            "first_pull_gateway_cpu_seconds": first_cpu,
            "first_direct_seconds": first_direct.seconds,
            "imagegate_gbps": [p.gbps for p in through],
            "docker_registry_gbps": [p.gbps for p in direct],
            "imagegate_cpu_seconds_per_gib": gateway_cpu / gib,
            "docker_registry_cpu_seconds_per_gib": upstream_cpu / gib,
        },
    )


async def blob_wrk(world: World, seconds: float, rounds: int) -> CaseResult:
    """(a') The cached big layer under ``wrk -t1 -c4``: four connections pulling it over
    and over, ``rounds`` runs of ``seconds`` per server, interleaved, vs direct."""
    gateway, upstream = world.gateway.url, world.upstream.url
    path = world.blob_path(world.layer)
    async with _session() as session:
        auth = {"Authorization": "Bearer " + await bearer_token(session, gateway, REPOSITORY)}
        await pull(session, gateway + path, auth)
    # Uncounted: the first pull's fetch may still be committing, and each server's
    # copy of the blob comes into the page cache.
    await wrk(gateway + path, headers=auth, seconds=WARM_SECONDS)
    await wrk(upstream + path, seconds=WARM_SECONDS)
    through: list[Load] = []
    direct: list[Load] = []
    gateway_cpu = upstream_cpu = 0.0
    for _ in range(rounds):  # interleaved, so drift on the machine hits both alike
        load, cpu = await _with_cpu(
            world.gateway_pid,
            wrk(gateway + path, headers=auth, seconds=seconds),
        )
        through.append(load)
        gateway_cpu += cpu
        load, cpu = await _with_cpu(world.upstream_pid, wrk(upstream + path, seconds=seconds))
        direct.append(load)
        upstream_cpu += cpu
    gateway_gib = sum(load.bytes for load in through) / GIB
    upstream_gib = sum(load.bytes for load in direct) / GIB
    return CaseResult(
        rows=_blob_rows(
            "cached blob (wrk)",
            [load.gbps for load in through],
            [load.gbps for load in direct],
            (gateway_cpu / gateway_gib, upstream_cpu / upstream_gib),
        ),
        detail={
            "blob_bytes": world.layer_size,
            "seconds": seconds,
            "imagegate": [vars(load) for load in through],
            "docker_registry": [vars(load) for load in direct],
            "imagegate_gbps": [load.gbps for load in through],
            "docker_registry_gbps": [load.gbps for load in direct],
            "imagegate_cpu_seconds_per_gib": gateway_cpu / gateway_gib,
            "docker_registry_cpu_seconds_per_gib": upstream_cpu / upstream_gib,
        },
    )


async def token_endpoint(world: World, seconds: float, max_requests: int) -> CaseResult:
    """(b) ``GET /token`` with Basic credentials, as clients send on every pull.

    The first request of a user pays the full check (argon2 for a password); later ones
    should hit the credential cache, so first vs warm (one client, one at a time) shows
    the cache at work. Anonymous token requests are the rate baseline: the same endpoint
    without any credential check.
    """
    url = f"{world.gateway.url}/token?service=imagegate&scope=repository:{REPOSITORY}:pull"
    result = CaseResult()
    async with _session() as session:
        anonymous = getter(session, url)
        await anonymous()
        cpu = _cpu(world)
        baseline = await rate(
            anonymous, concurrency=CONCURRENCY, seconds=seconds, max_requests=max_requests
        )
        result.detail["anonymous"] = {
            "imagegate_cpu_ms_per_request": _cpu_since(world, cpu)[0] * 1000 / baseline.requests,
            **_rate_detail(baseline),
        }
        for kind, credentials in (("password", world.password_user), ("token", world.token_user)):
            send = getter(session, url, auth=basic_auth(credentials))
            started = time.perf_counter()
            await send()  # this user's first sign-in since the server started
            first_ms = (time.perf_counter() - started) * 1000
            # One at a time, like the first: the latency a lone client sees once cached.
            warm = await rate(send, concurrency=1, seconds=seconds, max_requests=WARM_REQUESTS)
            cpu = _cpu(world)
            steady = await rate(
                send, concurrency=CONCURRENCY, seconds=seconds, max_requests=max_requests
            )
            cpu_ms = _cpu_since(world, cpu)[0] * 1000 / steady.requests
            result.rows.append(
                Row(
                    f"token, {kind} user, req/s",
                    "req/s",
                    steady.per_second,
                    baseline.per_second,
                    "anonymous",
                )
            )
            result.rows.append(
                Row(
                    f"token, {kind} user, first/warm ms",
                    "ms",
                    first_ms,
                    warm.median_ms,
                    "warm, 1 client",
                )
            )
            result.detail[kind] = {
                "first_ms": first_ms,
                "warm_median_ms": warm.median_ms,
                "imagegate_cpu_ms_per_request": cpu_ms,
                **_rate_detail(steady),
            }
    return result


async def manifest_by_tag(world: World, seconds: float, max_requests: int) -> CaseResult:
    """(c) ``GET`` a manifest by tag: from memory within IMAGEGATE_TAG_TTL_SECONDS."""
    return await _manifest(world, "manifest by tag", world.manifest_path(), seconds, max_requests)


async def manifest_by_digest(world: World, seconds: float, max_requests: int) -> CaseResult:
    """(d) ``GET`` a manifest by digest: always from the cache, never upstream."""
    path = world.manifest_path(world.manifest_digest)
    return await _manifest(world, "manifest by digest", path, seconds, max_requests)


async def _manifest(
    world: World, case: str, path: str, seconds: float, max_requests: int
) -> CaseResult:
    accept = {"Accept": world.manifest_type}
    async with _session() as session:
        token = await bearer_token(session, world.gateway.url, REPOSITORY)
        through = getter(
            session,
            world.gateway.url + path,
            headers={**accept, "Authorization": f"Bearer {token}"},
        )
        direct = getter(session, world.upstream.url + path, headers=accept)
        await through()  # caches the manifest
        await direct()
        cpu = _cpu(world)
        gateway = await rate(
            through, concurrency=CONCURRENCY, seconds=seconds, max_requests=max_requests
        )
        gateway_cpu = _cpu_since(world, cpu)
        cpu = _cpu(world)
        upstream = await rate(
            direct, concurrency=CONCURRENCY, seconds=seconds, max_requests=max_requests
        )
        upstream_cpu = _cpu_since(world, cpu)
    return CaseResult(
        rows=[
            Row(
                f"{case}, req/s",
                "req/s",
                gateway.per_second,
                upstream.per_second,
                "docker-registry",
            ),
            Row(
                f"{case}, median ms",
                "ms",
                gateway.median_ms,
                upstream.median_ms,
                "docker-registry",
            ),
        ],
        detail={
            "imagegate": _rate_detail(gateway),
            "docker_registry": _rate_detail(upstream),
            # CPU per request of (imagegate, docker-registry), both servers counted: a
            # request through imagegate also costs the upstream its HEAD.
            "imagegate_cpu_ms_per_request": _per_request(gateway_cpu, gateway),
            "docker_registry_cpu_ms_per_request": _per_request(upstream_cpu, upstream),
        },
    )


def _blob_rows(
    case: str, through: list[float], direct: list[float], cpu_per_gib: tuple[float, float]
) -> list[Row]:
    """Median GB/s through imagegate and from docker-registry, and each server's CPU-s/GiB."""
    gbps = Row(
        f"{case}, median GB/s",
        "GB/s",
        statistics.median(through),
        statistics.median(direct),
        "docker-registry",
    )
    cpu = Row(f"{case}, server CPU-s/GiB", "CPU-s/GiB", *cpu_per_gib, "docker-registry")
    return [gbps, cpu]


async def _with_cpu(pid: int, work: Awaitable[Load]) -> tuple[Load, float]:
    """What ``work`` measured, and the CPU time server ``pid`` spent meanwhile."""
    before = cpu_seconds(pid)
    load = await work
    return load, cpu_seconds(pid) - before


def _cpu(world: World) -> tuple[float, float]:
    return cpu_seconds(world.gateway_pid), cpu_seconds(world.upstream_pid)


def _cpu_since(world: World, before: tuple[float, float]) -> tuple[float, float]:
    now = _cpu(world)
    return now[0] - before[0], now[1] - before[1]


def _per_request(cpu: tuple[float, float], measured: Rate) -> dict[str, float]:
    return {
        "imagegate": cpu[0] * 1000 / measured.requests,
        "docker_registry": cpu[1] * 1000 / measured.requests,
    }


def _rate_detail(measured: Rate) -> dict[str, float]:
    return {
        "requests": measured.requests,
        "seconds": measured.seconds,
        "per_second": measured.per_second,
        "median_ms": measured.median_ms,
        "p99_ms": measured.p99_ms,
    }
