"""Identical work in flight, done once: callers that ask for it at the same time share
one run and its result (or its exception)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class InFlight(Generic[K, T]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[T]] = {}

    async def run(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
        """``work()``'s result, joining a run for ``key`` already under way.

        Shielded: a caller that goes away stops the run neither for the others nor at
        all, so what it does (a failed sign-in counted, say) always completes.
        """
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(work())
            self._running[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(running)

    def _finished(self, key: K, done: asyncio.Future[T]) -> None:
        del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: every caller may have gone

    def __len__(self) -> int:
        return len(self._running)
