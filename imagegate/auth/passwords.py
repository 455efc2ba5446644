"""Password hashes and personal access tokens: what we store instead of secrets.

Passwords are hashed with argon2id (argon2-cffi). A verify costs about 120 ms of CPU and
64 MiB on purpose, so callers must not pay it on every registry request;
``services.accounts`` caches verified credentials briefly. Hashing runs on a small pool
of threads of its own: on asyncio's shared executor, a burst of wrong passwords would
queue the blob store's file reads behind it. A name that matches no user is verified
against a decoy hash, so a sign-in takes as long whether the user exists or not.

Personal access tokens are long random secrets, so a slow hash buys nothing: we store
only their SHA-256 digest and find a token by looking its digest up (an index probe,
no secret is ever compared byte by byte in Python). The ``igt_pat_`` prefix makes a
leaked token recognizable to people and secret scanners, like Docker Hub's ``dckr_pat_``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

ACCESS_TOKEN_PREFIX = "igt_pat_"
_ACCESS_TOKEN_BYTES = 32  # 256 bits of randomness
# Half the cores hash at most: the rest keep serving pulls while someone guesses
# passwords (and each concurrent hash holds 64 MiB).
HASHING_THREADS = max(1, (os.cpu_count() or 2) // 2)
T = TypeVar("T")


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of verifying a password against a stored hash."""

    ok: bool
    needs_rehash: bool = False  # the hash uses older parameters than we do now


class PasswordHasher:
    """Hashes and verifies passwords with argon2id.

    The parameters default to argon2-cffi's (RFC 9106 low-memory profile); tests pass
    cheap ones so that creating a user does not cost a tenth of a second.
    """

    def __init__(
        self, hasher: argon2.PasswordHasher | None = None, *, threads: int = HASHING_THREADS
    ) -> None:
        self._hasher = hasher or argon2.PasswordHasher()
        # Threads start on first use and end when the hasher is garbage collected.
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="imagegate-password")
        self._decoy: str | None = None

    @classmethod
    def fast_for_tests(cls) -> PasswordHasher:
        """A hasher with minimal cost: real argon2id, but never for production data."""
        return cls(argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> PasswordCheck:
        """Check ``password``; a malformed stored hash counts as a mismatch."""
        try:
            self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return PasswordCheck(ok=False)
        return PasswordCheck(ok=True, needs_rehash=self._hasher.check_needs_rehash(stored_hash))

    async def hash_async(self, password: str) -> str:
        """``hash`` on the hashing pool."""
        return await self._in_pool(self.hash, password)

    async def verify_async(self, stored_hash: str, password: str) -> PasswordCheck:
        """``verify`` on the hashing pool."""
        return await self._in_pool(self.verify, stored_hash, password)

    async def verify_unknown_user(self, password: str) -> None:
        """Spend what verifying ``password`` for a real user costs, for a name that
        matches no user: against a decoy hash made with the same parameters."""
        await self._in_pool(self._verify_decoy, password)

    def _verify_decoy(self, password: str) -> None:
        if self._decoy is None:
            self._decoy = self.hash(secrets.token_urlsafe(16))
        self.verify(self._decoy, password)

    async def _in_pool(self, work: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)


@dataclass(frozen=True)
class NewAccessToken:
    """A freshly minted token: show ``secret`` once, store only ``digest``."""

    secret: str = field(repr=False)  # kept out of logs and tracebacks
    digest: str


def new_access_token() -> NewAccessToken:
    secret = ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(_ACCESS_TOKEN_BYTES)
    return NewAccessToken(secret=secret, digest=token_digest(secret))


def token_digest(secret: str) -> str:
    """The SHA-256 hex digest under which a token (or a cache entry) is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def looks_like_access_token(secret: str) -> bool:
    """True when ``secret`` has our token shape; passwords may still look like this."""
    return secret.startswith(ACCESS_TOKEN_PREFIX) and len(secret) > len(ACCESS_TOKEN_PREFIX)
