"""How fresh a tag this process resolved upstream still is: the rule, without I/O.

A tag resolved upstream is answered from memory for ``ttl_seconds``: no upstream request.
Then it is *stale*: for ``stale_seconds`` more its digest is still served at once while
one request revalidates it in the background; after that it has *expired*, and requests
wait for the revalidation (one per tag, however many wait). So a tag moved upstream is
served here within ``ttl_seconds`` plus the time one revalidation takes (at most
``stale_seconds``). A ``ttl_seconds`` of 0 remembers nothing: every request asks upstream.

Each worker process remembers on its own: behind N workers a tag may be up to that old
in each of them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from imagegate.core.digests import Digest


class Age(enum.Enum):
    FRESH = "fresh"  # served from memory, nothing asked upstream
    STALE = "stale"  # served from memory while one revalidation runs
    EXPIRED = "expired"  # wait for the revalidation


@dataclass(frozen=True)
class TagFreshness:
    ttl_seconds: float
    stale_seconds: float

    @property
    def remembers(self) -> bool:
        return self.ttl_seconds > 0

    def age(self, resolved_at: float, now: float) -> Age:
        elapsed = now - resolved_at
        if elapsed < self.ttl_seconds:
            return Age.FRESH
        if elapsed < self.ttl_seconds + self.stale_seconds:
            return Age.STALE
        return Age.EXPIRED


@dataclass(frozen=True)
class RememberedTag:
    """What a tag resolved to (for one Accept: the upstream's answer depends on it), and when."""

    digest: Digest
    resolved_at: float
