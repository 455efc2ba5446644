"""A memory of verified credentials: keyed by a digest, expiring, bounded by bytes.

Whatever a client sends may end up in a cache of things that checked out (a registry
token, a password that verified), so a cache must never hold the client's text, and its
size must not depend on how much a client sends. Keys are fixed-size digests (SHA-256 or
keyed BLAKE2b) computed by the caller; each entry declares what it costs, and the oldest
entries make room once the byte budget is reached. Nothing here is shared between
processes.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")

# What one entry costs besides its value: the key (a 32-byte digest in a bytes object),
# its slot in the ordered dict and the entry record. Measured with sys.getsizeof on
# CPython 3.11 and rounded up.
ENTRY_OVERHEAD_BYTES = 256
# How often a full cache looks for expired entries before dropping live ones.
SWEEP_INTERVAL_SECONDS = 1.0


def digest_key(*parts: str, secret: bytes = b"") -> bytes:
    """A fixed-size key for ``parts``: keyed BLAKE2b under ``secret`` (a per-process random
    key where the parts hold a password; empty where they name nothing secret).

    BLAKE2b's keyed mode is a MAC, like HMAC-SHA256, for a third of the cost: this runs
    on every sign-in and every cached decision. Each part is length-prefixed, so no two
    lists of parts share a message; lone surrogates (which JSON text may hold) are
    encoded as they are, not refused.
    """
    message = bytearray()
    for part in parts:
        encoded = part.encode("utf-8", "surrogatepass")
        message += len(encoded).to_bytes(8, "big")
        message += encoded
    return hashlib.blake2b(message, key=secret, digest_size=32).digest()


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    size: int
    expires_at: float


class BoundedCache(Generic[V]):
    """Values by digest until they expire; at most ``budget_bytes``, least recently used
    out first.

    ``size`` given to ``put`` is the caller's estimate of the value's memory; the cache
    adds ``ENTRY_OVERHEAD_BYTES``. A value larger than the whole budget is not kept.
    """

    def __init__(self, budget_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget_bytes = budget_bytes
        self._clock = clock
        self._entries: OrderedDict[bytes, _Entry[V]] = OrderedDict()
        self._bytes = 0
        self._swept_at = float("-inf")

    @property
    def nbytes(self) -> int:
        """What the entries held now cost, by the callers' estimates."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self.discard(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(self, key: bytes, value: V, size: int, expires_at: float) -> None:
        self.discard(key)
        cost = size + ENTRY_OVERHEAD_BYTES
        if cost > self.budget_bytes:
            return
        self._make_room(cost)
        self._entries[key] = _Entry(value, cost, expires_at)
        self._bytes += cost

    def discard(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    def _make_room(self, cost: int) -> None:
        """Drop what has expired (at most once a second: it is a full scan), then the
        least recently used entries, until ``cost`` fits."""
        if self._bytes + cost <= self.budget_bytes:
            return
        now = self._clock()
        if now >= self._swept_at + SWEEP_INTERVAL_SECONDS:
            self._swept_at = now
            for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
                self.discard(key)
        while self._entries and self._bytes + cost > self.budget_bytes:
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= oldest.size
