"""A memory of database reads that holds while nothing has changed since.

Each process keeps what sign-ins and access decisions read (memberships, settings,
repositories, verified credentials...) in a ``CurrentCache``. Every change the services
make bumps the generation and publishes it (``db.generation``); a cache reads the
signal on each lookup, at memory speed, and forgets everything once it differs from the
value it was filled at. So a change made by the CLI, the API or another worker applies
to the very next request, as if every read went to the database.

A read is remembered under the generation seen *before* it was made: a change that
commits while it runs leaves it tagged with an older value, so it is dropped, never
kept as current. Entries also expire after ``ttl`` seconds (a bound on anything that
changes the database without going through the services), and the memory is bounded
by bytes (``auth.cache.BoundedCache``, least recently used out first).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from imagegate.auth.cache import BoundedCache
from imagegate.db.generation import GenerationSignal

V = TypeVar("V")


class CurrentCache(Generic[V]):
    """Values by digest (``auth.cache.digest_key``), valid while the generation stands."""

    def __init__(
        self,
        signal: GenerationSignal,
        budget_bytes: int,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._signal = signal
        self._budget = budget_bytes
        self._ttl = ttl
        self._clock = clock
        self._seen = signal.current()
        self._entries: BoundedCache[tuple[V]] = BoundedCache(budget_bytes, clock)

    def generation(self) -> int:
        """The generation now; what was remembered at another one is forgotten."""
        now = self._signal.current()
        if now != self._seen:
            self._entries = BoundedCache(self._budget, self._clock)
            self._seen = now
        return now

    def lookup(self, key: bytes) -> tuple[tuple[V] | None, int]:
        """``(value,)`` if remembered and current, else None; and the generation to
        ``put`` a fresh read under."""
        generation = self.generation()
        return self._entries.get(key), generation

    def put(self, key: bytes, value: V, size: int, generation: int) -> None:
        """Remember ``value`` (about ``size`` bytes), read at ``generation`` or later."""
        if generation == self._seen:
            self._entries.put(key, (value,), size, self._clock() + self._ttl)

    async def get(
        self, key: bytes, read: Callable[[], Awaitable[V]], size: Callable[[V], int]
    ) -> V:
        """The remembered value, or ``read()``'s, remembered (``size`` estimates it)."""
        found, generation = self.lookup(key)
        if found is not None:
            return found[0]
        value = await read()
        self.put(key, value, size(value), generation)
        return value

    @property
    def nbytes(self) -> int:
        return self._entries.nbytes

    def __len__(self) -> int:
        return len(self._entries)
