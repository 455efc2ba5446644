"""First pulls with a real client: ``skopeo copy`` of the image through a cold gateway vs
the same copy straight from the registry behind it, on loopback and at about 100 MB/s.

Loopback shows the gateway's own work (hash, write, fsync); the throttled link shows what
a user sees when the upstream is a network away, where issue 10 wants the gateway to add
no more than 5 %. Both copies are anonymous (library/bench is public) and write a
``dir:`` layout, removed after each copy.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from bench.client import BenchError
from bench.results import CaseResult, Row
from bench.world import World, fresh_gateway
from tests.support.clients import MissingClient, Skopeo
from tests.support.process import ServerProcess


def _timed_copy(skopeo: Skopeo, reference: str, scratch: Path) -> float:
    started = time.perf_counter()
    result = skopeo.pull(reference)
    seconds = time.perf_counter() - started
    for pulled in scratch.glob("pull-*"):
        shutil.rmtree(pulled, ignore_errors=True)
    if not result.ok:
        raise BenchError(f"skopeo copy failed:\n{result.describe()}")
    return seconds


async def skopeo_first_pull(world: World, loopback: bool = True) -> CaseResult:
    """The throttled copies, and the loopback ones too unless ``loopback`` is False."""
    result = CaseResult()
    peers = world.peers
    scratch = peers.directory / f"workers-{world.workers}" / "skopeo"
    try:
        skopeo = Skopeo(scratch)
    except MissingClient as exc:
        result.notes.append(f"{exc}: the skopeo first-pull cases are skipped")
        return result
    links: list[tuple[str, ServerProcess, str]] = [("~100 MB/s", peers.throttled, "<= 1.05x")]
    if loopback:
        links.insert(0, ("loopback", peers.upstream, ""))
    for label, registry, goal in links:
        name = f"first-{'throttled' if registry is peers.throttled else 'loopback'}"
        profile = world.profile_path(name)
        with fresh_gateway(peers, world.workers, name, registry.url, profile) as gw:
            through = await asyncio.to_thread(
                _timed_copy, skopeo, f"{gw.host}/{world.image_reference}", scratch
            )
        direct = await asyncio.to_thread(
            _timed_copy, skopeo, f"{registry.host}/{world.image_reference}", scratch
        )
        result.rows.append(
            Row(f"first pull, skopeo, {label}, s", "s", through, direct, "direct copy", goal)
        )
        result.detail[label] = {"imagegate_seconds": through, "direct_seconds": direct}
    return result
