"""Limits on sign-in attempts: exponential backoff per client address and per username.

Every credential check (registry token requests, API and console sign-in) goes through
``SignInThrottle.attempt`` first; a refused attempt is never checked, so it tells the
client nothing about the password. Three limits, each for a reason:

- **Per address** (``ADDRESS``; an IPv6 address counts by its /64, what one subscriber
  gets): one client cannot try many passwords, on one account or on many. The main
  defence. It allows more failures than the others because an office or a CI fleet
  behind one NAT shares it.
- **Per username** (``USERNAME``): many addresses cannot try many passwords on one
  account. It must not let anyone lock a user out by typing their name, so it applies
  only to addresses the user has not signed in from lately: where the user signed in
  before, they keep working; from a new address they wait at most a minute while an
  attack goes on.
- **Per known address and username** (``KNOWN``): an address the user signed in from
  (within ``KNOWN_SECONDS``) is limited for that user on its own. A colleague behind the
  same NAT who keeps mistyping does not lock you out, and an attacker behind it gets no
  more tries at your password than from anywhere else.

Each limit lets some attempts fail, then doubles the wait before the next: 1 s, 2 s,
4 s, ... up to its cap. An attempt still being checked counts as failed until it ends,
so parallel guesses get no further than sequential ones (``AccountService`` makes
identical attempts in flight one). Failures are forgotten ``FORGET_SECONDS`` after the
last one. A success clears only its own known-address limit: clearing an address or a
username would let an attacker with an account of their own sign in between guesses.

The state lives in this process's memory, bounded (the least recently used entries go).
Every limit is keyed by a fixed-size digest of what it counts (``auth.cache.digest_key``),
never by the text a client sent: an entry costs the same for a name of 5 characters or
of 50,000.
Several worker processes each keep their own, so N workers allow N times the attempts; a
store they share (a database table or Redis) would make the limits exact.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from imagegate.auth.cache import BoundedCache, digest_key
from imagegate.services.errors import TooManyAttempts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    free: int  # failed attempts before the first wait
    cap_seconds: float  # the longest wait


ADDRESS = Rule(free=20, cap_seconds=300.0)
USERNAME = Rule(free=5, cap_seconds=60.0)
KNOWN = Rule(free=5, cap_seconds=300.0)
FORGET_SECONDS = 15 * 60.0
KNOWN_SECONDS = 30 * 24 * 3600.0
MAX_ENTRIES = 65_536  # per kind of limit: a few MiB at most
_KNOWN_BYTES = 64  # what a known (address, user) pair costs besides the cache's overhead
UNKNOWN_ADDRESS = "an unknown address"  # an attempt whose edge gave no address


@dataclass
class _Limit:
    failures: int = 0
    pending: int = 0  # attempts being checked now
    last_failure: float = -math.inf


class _Limits:
    """One kind of limit, by key; the least recently used idle entries go first."""

    def __init__(self, rule: Rule, max_entries: int) -> None:
        self.rule = rule
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, _Limit] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def wait(self, key: bytes, now: float) -> float:
        """Seconds before an attempt under ``key`` is admitted; 0: now."""
        limit = self._entries.get(key)
        if limit is None or limit.failures + limit.pending < self.rule.free:
            return 0.0
        if limit.pending:  # past the free attempts, one at a time
            return max(1.0, self.delay(limit.failures))
        return max(0.0, limit.last_failure + self.delay(limit.failures) - now)

    def delay(self, failures: int) -> float:
        if failures < self.rule.free:
            return 0.0
        return min(self.rule.cap_seconds, 2.0 ** (failures - self.rule.free))

    def begin(self, key: bytes, now: float) -> None:
        limit = self._entries.get(key)
        if limit is None or (not limit.pending and now - limit.last_failure > FORGET_SECONDS):
            limit = self._entries[key] = _Limit()
        limit.pending += 1
        self._entries.move_to_end(key)
        self._trim(now)

    def end(self, key: bytes, now: float, *, failed: bool, clear: bool = False) -> bool:
        """Close an attempt begun under ``key``; True when this failure starts the waits."""
        limit = self._entries.get(key)
        if limit is None:
            return False
        limit.pending -= 1
        if clear:
            limit.failures = 0
        if not failed:
            return False
        limit.failures += 1
        limit.last_failure = now
        return limit.failures == self.rule.free

    def _trim(self, now: float) -> None:
        """Forget idle entries past ``FORGET_SECONDS``, and the oldest idle ones when full.

        The oldest are first in line, so this stops at the first entry to keep.
        """
        excess = len(self._entries) - self._max_entries
        doomed: list[bytes] = []
        for key, limit in self._entries.items():
            if limit.pending:
                continue
            if len(doomed) >= excess and now - limit.last_failure <= FORGET_SECONDS:
                break
            doomed.append(key)
        for key in doomed:
            del self._entries[key]


@dataclass
class Attempt:
    """One credential check in progress; say how it ended with ``succeeded``/``failed``."""

    keys: list[tuple[_Limits, bytes]]
    known_key: bytes
    outcome: bool | None = None

    def succeeded(self) -> None:
        self.outcome = True

    def failed(self) -> None:
        self.outcome = False


class SignInThrottle:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._clock = clock
        self.addresses = _Limits(ADDRESS, max_entries)
        self.users = _Limits(USERNAME, max_entries)
        self.known_pairs = _Limits(KNOWN, max_entries)
        budget = max_entries * (_KNOWN_BYTES + 256)
        self._known: BoundedCache[bool] = BoundedCache(budget, clock)

    @contextlib.contextmanager
    def attempt(self, address: str | None, username: str) -> Iterator[Attempt]:
        """Admit one attempt to sign in as ``username`` from ``address``, or raise
        ``TooManyAttempts``. An attempt that ends in neither ``succeeded`` nor ``failed``
        (the check itself broke) counts as neither."""
        now = self._clock()
        where = _address_key(address)
        known_key = digest_key(where, username)  # also the key of its known-address limit
        if self._known.get(known_key):
            keys = [(self.known_pairs, known_key)]
        else:
            keys = [(self.addresses, digest_key(where)), (self.users, digest_key(username))]
        for limits, key in keys:
            wait = limits.wait(key, now)
            if wait > 0:
                raise TooManyAttempts(_refusal(limits is self.users, address), math.ceil(wait))
        for limits, key in keys:
            limits.begin(key, now)
        attempt = Attempt(keys, known_key)
        try:
            yield attempt
        finally:
            self._end(attempt, address, username)

    def _end(self, attempt: Attempt, address: str | None, username: str) -> None:
        now = self._clock()
        failed = attempt.outcome is False
        for limits, key in attempt.keys:
            clear = attempt.outcome is True and limits is self.known_pairs
            if limits.end(key, now, failed=failed, clear=clear):
                kind = "username" if limits is self.users else "address"
                log.warning(
                    "sign-in attempts limited: %d failed for this %s; each next one waits "
                    "longer, up to %d s",
                    limits.rule.free,
                    kind,
                    limits.rule.cap_seconds,
                    extra={"event": "login_throttled", "client": address, "user": username},
                )
        if attempt.outcome is True:
            self._known.put(attempt.known_key, True, _KNOWN_BYTES, now + KNOWN_SECONDS)


def _refusal(for_user: bool, address: str | None) -> str:
    if for_user:
        return (
            "too many failed sign-in attempts for this account from addresses it has not "
            "signed in from"
        )
    return f"too many failed sign-in attempts from {address or UNKNOWN_ADDRESS}"


def _address_key(address: str | None) -> str:
    """The address a limit counts by: IPv4 as is, IPv6 by its /64 network."""
    if not address:
        return UNKNOWN_ADDRESS
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (a Unix socket, a test client): count it as given
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
