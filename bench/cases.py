"""The cases against the loopback upstream: one client (aiohttp or wrk) vs a baseline,
interleaved.

A case returns table ``Row``s (imagegate, baseline, ratio) and the raw figures behind
them for the JSON report. Ratios are imagegate over baseline, so for rates and
throughputs 1.0 is parity and lower is slower; for times higher is slower.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable

import aiohttp

from bench.client import Pull, basic_auth, bearer_token, getter, pull, rate
from bench.procfs import tree_cpu_seconds
from bench.results import CaseResult, Row
from bench.world import REPOSITORY, TAG, World
from bench.wrk import Load, wrk, wrk_missing

GIB = 1024**3
WARM_REQUESTS = 50
WARM_SECONDS = 1.0


def _session() -> aiohttp.ClientSession:
    # Blobs are stored gzip'd; the bytes on the wire are what is measured.
    return aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=600))


async def blob_throughput(world: World, pulls: int) -> CaseResult:
    """(a) The big layer: first (uncached) pull, then ``pulls`` cached ones, vs direct."""
    gateway, upstream = world.gateway.url, world.upstream.url
    path = world.blob_path(world.layer)
    async with _session() as session:
        bearer = {"Authorization": "Bearer " + await bearer_token(session, gateway, REPOSITORY)}
        cpu = tree_cpu_seconds(world.gateway_pid)
        with world.profiling("blob-first"):
            first = await pull(session, gateway + path, bearer)
        first_cpu = tree_cpu_seconds(world.gateway_pid) - cpu
        first_direct = await pull(session, upstream + path)
        through: list[Pull] = []
        direct: list[Pull] = []
        gateway_cpu = upstream_cpu = 0.0
        # The gateway idles during the direct pulls: they add no samples to its profile.
        with world.profiling("blob-cached"):
            for _ in range(pulls):  # interleaved, so drift on the machine hits both alike
                cpu = tree_cpu_seconds(world.gateway_pid)
                through.append(await pull(session, gateway + path, bearer))
                gateway_cpu += tree_cpu_seconds(world.gateway_pid) - cpu
                cpu = tree_cpu_seconds(world.upstream_pid)
                direct.append(await pull(session, upstream + path))
                upstream_cpu += tree_cpu_seconds(world.upstream_pid) - cpu
    for result in (first, first_direct, *through, *direct):
        assert result.size == world.layer_size, "a pull came back short"
    gib = world.layer_size * pulls / GIB
    return CaseResult(
        rows=[
            *_blob_rows(
                "cached blob (aiohttp)",
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
    """(a') The cached big layer under ``wrk -t1 -c4`` (issue 10's row): four connections
    pulling it over and over, ``rounds`` runs of ``seconds`` per server, interleaved, vs
    ``docker-registry`` serving it directly."""
    result = CaseResult()
    missing = wrk_missing()
    if missing:
        result.notes.append(missing)
        return result
    gateway, upstream = world.gateway.url, world.upstream.url
    path = world.blob_path(world.layer)
    async with _session() as session:
        auth = {"Authorization": "Bearer " + await bearer_token(session, gateway, REPOSITORY)}
        await pull(session, gateway + path, auth)
    # Uncounted: the first pull's fetch may still be committing, and each server's
    # copy of the blob comes into the page cache.
    await wrk(gateway + path, WARM_SECONDS, auth)
    await wrk(upstream + path, WARM_SECONDS)
    through: list[Load] = []
    direct: list[Load] = []
    gateway_cpu = upstream_cpu = 0.0
    # The gateway idles during the direct runs: they add no samples to its profile.
    with world.profiling("blob-wrk"):
        for _ in range(rounds):  # interleaved, so drift on the machine hits both alike
            load, cpu = await _with_cpu(world.gateway_pid, wrk(gateway + path, seconds, auth))
            through.append(load)
            gateway_cpu += cpu
            load, cpu = await _with_cpu(world.upstream_pid, wrk(upstream + path, seconds))
            direct.append(load)
            upstream_cpu += cpu
    gateway_gib = sum(load.bytes for load in through) / GIB
    upstream_gib = sum(load.bytes for load in direct) / GIB
    result.rows += _blob_rows(
        "cached blob (wrk)",
        [load.gbps for load in through],
        [load.gbps for load in direct],
        (gateway_cpu / gateway_gib, upstream_cpu / upstream_gib),
        goal=">= 1.2x",
    )
    result.detail.update(
        {
            "blob_bytes": world.layer_size,
            "seconds": seconds,
            "imagegate": [vars(load) for load in through],
            "docker_registry": [vars(load) for load in direct],
            "imagegate_gbps": [load.gbps for load in through],
            "docker_registry_gbps": [load.gbps for load in direct],
            "imagegate_cpu_seconds_per_gib": gateway_cpu / gateway_gib,
            "docker_registry_cpu_seconds_per_gib": upstream_cpu / upstream_gib,
        }
    )
    return result


async def token_endpoint(world: World, seconds: float) -> CaseResult:
    """(b) ``GET /token`` with Basic credentials, as clients send on every pull.

    The first request of a user pays the full check (argon2 for a password); later ones
    should hit the credential cache, so first vs warm (one client, one at a time) shows
    the cache at work. Rates come from wrk (``-t1 -c4``), anonymous token requests being
    the baseline: the same endpoint without any credential check.
    """
    url = f"{world.gateway.url}/token?service=imagegate&scope=repository:{REPOSITORY}:pull"
    result = CaseResult()
    firsts: dict[str, float] = {}
    async with _session() as session:
        await getter(session, url)()
        for kind, credentials in (("password", world.password_user), ("token", world.token_user)):
            send = getter(session, url, auth=basic_auth(credentials))
            started = time.perf_counter()
            await send()  # this user's first sign-in since the server started
            firsts[kind] = (time.perf_counter() - started) * 1000
            # One at a time, like the first: the latency a lone client sees once cached.
            warm = await rate(send, concurrency=1, seconds=seconds, max_requests=WARM_REQUESTS)
            result.rows.append(
                Row(
                    f"token, {kind} user, first/warm ms",
                    "ms",
                    firsts[kind],
                    warm.median_ms,
                    "warm, 1 client",
                )
            )
            result.detail[kind] = {"first_ms": firsts[kind], "warm_median_ms": warm.median_ms}
    missing = wrk_missing()
    if missing:
        result.notes.append(missing)
        return result
    cpu = _cpu(world)
    with world.profiling("token-anonymous"):
        anonymous = await wrk(url, seconds)
    result.detail["anonymous"] = _wrk_detail(anonymous, _cpu_since(world, cpu)[0])
    for kind, credentials, goal in (
        ("password", world.password_user, ""),
        ("token", world.token_user, ">= 3000/s, >= 0.8x"),
    ):
        header = {"Authorization": aiohttp.BasicAuth(*credentials).encode()}
        cpu = _cpu(world)
        with world.profiling(f"token-{kind}"):
            measured = await wrk(url, seconds, header)
        result.detail[kind].update(_wrk_detail(measured, _cpu_since(world, cpu)[0]))
        result.rows.append(
            Row(
                f"token, {kind} user, req/s",
                "req/s",
                measured.per_second,
                anonymous.per_second,
                "anonymous",
                goal,
            )
        )
    return result


async def manifests(world: World, seconds: float) -> CaseResult:
    """(c) An authorized ``GET`` of a cached manifest, by digest and by tag, vs distribution
    configured as a pull-through proxy of the same upstream (anonymous: it has no auth).

    Both have the manifest cached; by tag, distribution HEADs the upstream every time.
    """
    result = CaseResult()
    missing = wrk_missing()
    if missing:
        result.notes.append(missing)
        return result
    proxy = world.peers.proxy
    accept = {"Accept": world.manifest_type}
    async with _session() as session:
        token = await bearer_token(session, world.gateway.url, REPOSITORY)
    authorized = {**accept, "Authorization": f"Bearer {token}"}
    for label, reference in (("digest", world.peers.manifest_digest), ("tag", TAG)):
        path = world.manifest_path_for(reference)
        async with _session() as session:  # fills both caches
            await getter(session, world.gateway.url + path, headers=authorized)()
            await getter(session, proxy.url + path, headers=accept)()
        cpu = _cpu(world)
        with world.profiling(f"manifest-{label}"):
            gateway = await wrk(world.gateway.url + path, seconds, authorized)
        gateway_cpu = _cpu_since(world, cpu)
        cpu, proxy_cpu = _cpu(world), tree_cpu_seconds(proxy.pid)
        peer = await wrk(proxy.url + path, seconds, accept)
        peer_cpu = (tree_cpu_seconds(proxy.pid) - proxy_cpu, _cpu_since(world, cpu)[1])
        result.rows.append(
            Row(
                f"manifest by {label}, req/s",
                "req/s",
                gateway.per_second,
                peer.per_second,
                "distribution proxy",
                ">= 3x",
            )
        )
        result.detail[f"by {label}"] = {
            "imagegate": _wrk_detail(gateway, gateway_cpu[0]),
            "distribution_proxy": _wrk_detail(peer, peer_cpu[0]),
            # By tag the upstream answers HEADs: distribution always, imagegate once a TTL.
            "upstream_cpu_ms_per_request": {
                "imagegate": gateway_cpu[1] * 1000 / gateway.requests,
                "distribution_proxy": peer_cpu[1] * 1000 / peer.requests,
            },
        }
    return result


def _blob_rows(
    case: str,
    through: list[float],
    direct: list[float],
    cpu_per_gib: tuple[float, float],
    goal: str = "",
) -> list[Row]:
    """Median GB/s through imagegate and from docker-registry, and each server's CPU-s/GiB."""
    gbps = Row(
        f"{case}, median GB/s",
        "GB/s",
        statistics.median(through),
        statistics.median(direct),
        "docker-registry",
        goal,
    )
    cpu = Row(f"{case}, server CPU-s/GiB", "CPU-s/GiB", *cpu_per_gib, "docker-registry")
    return [gbps, cpu]


async def _with_cpu(pid: int, work: Awaitable[Load]) -> tuple[Load, float]:
    """What ``work`` measured, and the CPU time server ``pid``'s tree spent meanwhile."""
    before = tree_cpu_seconds(pid)
    load = await work
    return load, tree_cpu_seconds(pid) - before


def _cpu(world: World) -> tuple[float, float]:
    return tree_cpu_seconds(world.gateway_pid), tree_cpu_seconds(world.upstream_pid)


def _cpu_since(world: World, before: tuple[float, float]) -> tuple[float, float]:
    now = _cpu(world)
    return now[0] - before[0], now[1] - before[1]


def _wrk_detail(measured: Load, cpu_seconds: float) -> dict[str, float]:
    return {
        "requests": measured.requests,
        "seconds": measured.seconds,
        "per_second": measured.per_second,
        "median_ms": measured.median_ms,
        "p99_ms": measured.p99_ms,
        "server_cpu_ms_per_request": cpu_seconds * 1000 / measured.requests,
    }
