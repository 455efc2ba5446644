"""Identical work in flight, done once."""

from __future__ import annotations

import asyncio

import pytest

from imagegate.services.inflight import InFlight


async def test_callers_at_the_same_time_share_one_run_and_its_result() -> None:
    runs = 0
    gate = asyncio.Event()

    async def work() -> str:
        nonlocal runs
        runs += 1
        await gate.wait()
        return "done"

    inflight: InFlight[str, str] = InFlight()
    callers = [asyncio.create_task(inflight.run("k", work)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*callers) == ["done"] * 5
    assert runs == 1 and len(inflight) == 0
    assert await inflight.run("k", work) == "done"  # a later call runs again
    assert runs == 2


async def test_a_caller_that_goes_away_does_not_stop_the_run() -> None:
    finished = asyncio.Event()
    gate = asyncio.Event()

    async def work() -> None:
        await gate.wait()
        finished.set()

    inflight: InFlight[str, None] = InFlight()
    leaving = asyncio.create_task(inflight.run("k", work))
    staying = asyncio.create_task(inflight.run("k", work))
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    await staying
    assert finished.is_set()


async def test_a_failure_reaches_every_caller() -> None:
    async def work() -> None:
        await asyncio.sleep(0)
        raise ValueError("broken")

    inflight: InFlight[str, None] = InFlight()
    results = await asyncio.gather(
        *(inflight.run("k", work) for _ in range(3)), return_exceptions=True
    )
    assert [type(r) for r in results] == [ValueError] * 3
    with pytest.raises(ValueError):
        await inflight.run("k", work)
