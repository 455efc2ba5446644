"""Waiting for state a background task will reach, without timed assertions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

DEADLINE = 30.0  # seconds; generous, only a failing test waits this long


async def eventually(check: Callable[[], Awaitable[bool]] | Callable[[], bool]) -> None:
    """Wait until ``check`` holds; fail after ``DEADLINE``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        if loop.time() > deadline:
            pytest.fail(f"not within {DEADLINE} s: {getattr(check, '__name__', check)}")
        await asyncio.sleep(0.02)


def until(check: Callable[[], bool], what: str) -> None:
    """Wait, blocking, until ``check`` holds (``what`` it is); fail after ``DEADLINE``."""
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE} s: {what}")
        time.sleep(0.05)
