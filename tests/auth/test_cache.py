"""The memory of verified credentials: by digest, expiring, never past its byte budget."""

from __future__ import annotations

import hashlib

from imagegate.auth.cache import ENTRY_OVERHEAD_BYTES, SWEEP_INTERVAL_SECONDS, BoundedCache


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def key(n: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest()


def test_entries_expire() -> None:
    ticker = Ticker()
    cache: BoundedCache[str] = BoundedCache(10_000, ticker)
    cache.put(key(1), "one", 10, expires_at=5)
    ticker.now = 4.9
    assert cache.get(key(1)) == "one"
    ticker.now = 5
    assert cache.get(key(1)) is None
    assert len(cache) == 0 and cache.nbytes == 0


def test_the_budget_is_never_exceeded_and_the_least_recently_used_go_first() -> None:
    cost = 100 + ENTRY_OVERHEAD_BYTES
    cache: BoundedCache[int] = BoundedCache(3 * cost, Ticker())
    for n in range(3):
        cache.put(key(n), n, 100, expires_at=60)
    assert cache.nbytes == 3 * cost
    assert cache.get(key(0)) == 0  # now the most recently used
    for n in range(3, 50):
        cache.put(key(n), n, 100, expires_at=60)
        assert cache.nbytes <= 3 * cost
    assert [n for n in range(50) if cache.get(key(n)) is not None] == [47, 48, 49]
    cache.put(key(1), 1, 3 * cost, expires_at=60)  # larger than the whole budget
    assert cache.get(key(1)) is None and cache.nbytes <= 3 * cost


def test_expired_entries_make_room_before_live_ones() -> None:
    ticker = Ticker()
    cost = 100 + ENTRY_OVERHEAD_BYTES
    cache: BoundedCache[int] = BoundedCache(2 * cost, ticker)
    cache.put(key(1), 1, 100, expires_at=60)
    cache.put(key(2), 2, 100, expires_at=10)
    ticker.now = 10 + SWEEP_INTERVAL_SECONDS
    cache.put(key(3), 3, 100, expires_at=60)
    assert cache.get(key(1)) == 1 and cache.get(key(3)) == 3


def test_replacing_an_entry_counts_it_once() -> None:
    cache: BoundedCache[str] = BoundedCache(10_000, Ticker())
    cache.put(key(1), "a", 10, expires_at=60)
    cache.put(key(1), "b", 20, expires_at=60)
    assert cache.get(key(1)) == "b"
    assert cache.nbytes == 20 + ENTRY_OVERHEAD_BYTES
