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

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class _Entry:
    password_hash: str
    expires_at: float


class CredentialCache:
    """Bounded (oldest out first) and time-limited; not shared between processes."""

    def __init__(
        self,
        ttl: float = 60.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    def _fingerprint(self, username: str, secret: str) -> bytes:
        message = username.encode() + b"\0" + secret.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verified(self, username: str, secret: str, password_hash: str) -> bool:
        """True if this exact secret verified against this exact hash within the TTL."""
        fingerprint = self._fingerprint(username, secret)
        entry = self._entries.get(fingerprint)
        if entry is None:
            return False
        if entry.expires_at <= self._clock() or entry.password_hash != password_hash:
            del self._entries[fingerprint]
            return False
        return True

    def remember(self, username: str, secret: str, password_hash: str) -> None:
        fingerprint = self._fingerprint(username, secret)
        self._entries[fingerprint] = _Entry(password_hash, self._clock() + self._ttl)
        self._entries.move_to_end(fingerprint)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
