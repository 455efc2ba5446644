"""A memory of credentials that signed in, so repeated sign-ins skip the database and argon2.

Docker clients send Basic credentials to the token endpoint on every pull; an argon2
verify costs about 120 ms, and even an access token's indexed lookup costs a database
round trip. A credential that signed in is remembered with what it signed in as, until
anything changes: changing a password, revoking or deleting a token, removing a user...
each bumps the generation (``db.generation``), and the cache forgets everything at once
(``services.current_cache``), in every process. A token's own expiry is checked on
every hit by the caller.

Entries are keyed by a keyed digest under a per-process random key, so memory never holds a
plain, unsalted digest of a password. Failed attempts are never remembered: a wrong
password always pays the full price.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from imagegate.auth.cache import digest_key
from imagegate.db.generation import GenerationSignal
from imagegate.services.credentials import SignedIn
from imagegate.services.current_cache import CurrentCache

# Enough for tens of thousands of signed-in users: an entry costs under 1 KiB.
BUDGET_BYTES = 8 * 1024 * 1024
# A bound on anything that changes credentials without going through the services.
TTL_SECONDS = 600.0
# What one entry costs besides the names: the SignedIn, the records, the datetimes.
_ENTRY_BYTES = 768


@dataclass(frozen=True)
class TokenUse:
    """What a remembered access token needs checked or refreshed on each sign-in."""

    id: int
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None


@dataclass(frozen=True)
class Verified:
    """A credential that signed in: as whom, and for an access token, which."""

    signed_in: SignedIn
    token: TokenUse | None = None


class CredentialCache:
    """Bounded by bytes (least recently used out first); not shared between processes."""

    def __init__(
        self,
        signal: GenerationSignal,
        *,
        ttl: float = TTL_SECONDS,
        budget_bytes: int = BUDGET_BYTES,
    ) -> None:
        self._key = secrets.token_bytes(32)
        self._entries: CurrentCache[Verified] = CurrentCache(signal, budget_bytes, ttl)

    def fingerprint(self, *parts: str) -> bytes:
        """A keyed digest of ``parts``: what this process may remember about a secret."""
        return digest_key(*parts, secret=self._key)

    def lookup(self, kind: str, username: str, secret: str) -> tuple[Verified | None, int]:
        """What ``secret`` (a ``kind`` of credential) signed ``username`` in as, if it did
        since the last change; and the generation to ``remember`` a fresh check under."""
        found, generation = self._entries.lookup(self.fingerprint(kind, username, secret))
        return (found[0] if found is not None else None), generation

    def remember(
        self, kind: str, username: str, secret: str, verified: Verified, generation: int
    ) -> None:
        """Remember a sign-in checked against what the database held at ``generation``."""
        size = _ENTRY_BYTES + 2 * len(username)
        self._entries.put(self.fingerprint(kind, username, secret), verified, size, generation)

    @property
    def nbytes(self) -> int:
        return self._entries.nbytes

    def __len__(self) -> int:
        return len(self._entries)
