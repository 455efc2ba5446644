"""A short-lived memory of passwords that verified, so repeated logins skip argon2.

Docker clients send Basic credentials to the token endpoint on every pull; an argon2
verify costs about 120 ms, which would cap a core at a handful of pulls per second.

An entry remembers the stored password hash it was verified against. A hit counts only
if the user's hash is still the same, so changing a password takes effect at once,
without any invalidation message between processes. Entries are keyed by an HMAC under a
per-process random key, so memory never holds a plain, unsalted digest of a password.
Failed attempts are never cached: a wrong password always pays the full price.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable

from imagegate.auth.cache import BoundedCache, digest_key

# Enough for tens of thousands of signed-in users: an entry costs under 500 bytes.
BUDGET_BYTES = 4 * 1024 * 1024


class CredentialCache:
    """Time-limited and bounded by bytes (least recently used out first); not shared
    between processes."""

    def __init__(
        self,
        ttl: float = 60.0,
        budget_bytes: int = BUDGET_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._entries: BoundedCache[str] = BoundedCache(budget_bytes, clock)

    def fingerprint(self, *parts: str) -> bytes:
        """A keyed digest of ``parts``: what this process may remember about a secret."""
        return digest_key(*parts, secret=self._key)

    def verified(self, username: str, secret: str, password_hash: str) -> bool:
        """True if this exact secret verified against this exact hash within the TTL."""
        fingerprint = self.fingerprint(username, secret)
        remembered = self._entries.get(fingerprint)
        if remembered is None:
            return False
        if remembered != password_hash:
            self._entries.discard(fingerprint)
            return False
        return True

    def remember(self, username: str, secret: str, password_hash: str) -> None:
        fingerprint = self.fingerprint(username, secret)
        size = sys.getsizeof(password_hash)
        self._entries.put(fingerprint, password_hash, size, self._clock() + self._ttl)

    @property
    def nbytes(self) -> int:
        return self._entries.nbytes

    def __len__(self) -> int:
        return len(self._entries)
