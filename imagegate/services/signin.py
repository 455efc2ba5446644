"""Enforce sign-in: the requirement in force, read from the configured registry.json.

Every registry request asks for it, so asking is cheap: the file is ``stat``-ed at most
once per ``recheck_seconds``, and read, parsed and validated again only when its
``(mtime_ns, size, inode)`` changed, which covers editing in place and replacing it
atomically. Organizations can be deleted while the file stays the same, so their
existence is checked again every ``org_recheck_seconds``. A change therefore applies
within a second or so, without a restart.

A configured file that is missing, unreadable or invalid is never treated as "not
enforced": the requirement then carries the problem and every request is refused (fail
closed), with one warning in the log saying why. Only the data directory's default file,
which the admin may simply not have created, means "not enforced" when it is absent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import bindparam, select

from imagegate.auth.cache import digest_key
from imagegate.core.signin import (
    NOT_ENFORCED,
    InvalidRegistryJson,
    SignInRefusal,
    SignInRequirement,
    missing_orgs_problem,
    parse_registry_json,
    sign_in_refusal,
)
from imagegate.db import Database
from imagegate.db.models import Organization, User
from imagegate.db.queries import MEMBER_ORGANIZATIONS
from imagegate.services.current_cache import CurrentCache

logger = logging.getLogger("imagegate.signin")

Clock = Callable[[], float]
Stat = Callable[[Path], os.stat_result]
# What identifies one version of the file; an error text when it cannot be stat-ed.
FileKey = tuple[int, int, int] | str

_EXISTING_ORGS = select(Organization.name).where(
    Organization.name.in_(bindparam("names", expanding=True))
)
_USER_ORGS = MEMBER_ORGANIZATIONS.where(User.name == bindparam("username"))


VANISHED_GRACE_SECONDS = 0.25
# Users' organizations, read for logins while an allowed list is in force.
_MEMBERS_BUDGET_BYTES = 4 * 1024 * 1024
_MEMBERS_TTL_SECONDS = 600.0
_MEMBER_BYTES = 512


@dataclass(frozen=True)
class _Parsed:
    """One version of the file: its allowed organizations, or what is wrong with it."""

    key: FileKey | None  # None: the file does not exist
    orgs: tuple[str, ...] = ()
    problem: str | None = None


class SignInService:
    def __init__(
        self,
        db: Database,
        path: Path | None,
        *,
        missing_ok: bool = False,
        recheck_seconds: float = 1.0,
        org_recheck_seconds: float = 10.0,
        clock: Clock = time.monotonic,
        stat: Stat = os.stat,
    ) -> None:
        """``path`` ``None``: sign-in is not enforced. ``missing_ok``: the file's absence
        means "not enforced" (the data directory's default file), instead of an error."""
        self._db = db
        self._path = path
        self._missing_ok = missing_ok
        self._recheck = recheck_seconds
        self._org_recheck = org_recheck_seconds
        self._clock = clock
        self._stat = stat
        self._lock = asyncio.Lock()
        self._parsed: _Parsed | None = None
        self._current = NOT_ENFORCED
        self._next_stat = -math.inf
        self._next_org_check = -math.inf
        # Until the next change (the generation), so a login reads no database.
        self._member_of: CurrentCache[frozenset[str]] = CurrentCache(
            db.signal, _MEMBERS_BUDGET_BYTES, _MEMBERS_TTL_SECONDS
        )

    async def requirement(self) -> SignInRequirement:
        """What is enforced now; at most one ``stat`` per recheck interval."""
        if self._path is None:
            return NOT_ENFORCED
        if self._clock() < self._next_stat:
            return self._current
        async with self._lock:
            # Requests that queued here while another reloaded find it done.
            if self._clock() >= self._next_stat:
                await self._reload(self._path)
            return self._current

    async def refusal(self, username: str | None) -> SignInRefusal | None:
        """Whether enforce sign-in turns ``username`` (``None``: anonymous) away, for
        requests that name no repository: a login at the token endpoint, the catalog.

        Looks up the user's organizations only while an allowed list is in force."""
        requirement = await self.requirement()
        member_of: frozenset[str] = frozenset()
        if requirement.allowed_orgs and requirement.problem is None and username is not None:
            member_of = await self._member_of.get(
                digest_key(username),
                lambda: self._organizations(username),
                lambda orgs: _MEMBER_BYTES * (1 + len(orgs)),
            )
        return sign_in_refusal(requirement, username, member_of)

    async def _organizations(self, username: str) -> frozenset[str]:
        [rows] = await self._db.snapshot((_USER_ORGS, {"username": username}))
        return frozenset(str(org) for _, org in rows)

    async def inspect(self, path: Path) -> SignInRequirement:
        """Read and validate ``path`` now, uncached (``imagegate enforce-sign-in check``).

        A missing file is a problem here: the admin asked about this very file."""
        parsed = _read(path, _key(path, os.stat))
        return await self._validated(path, parsed)

    async def _reload(self, path: Path) -> None:
        key = _key(path, self._stat)
        now = self._clock()
        parsed = self._parsed
        if parsed is None or parsed.key != key:
            parsed = _read(path, key)
            if parsed.key is None and self._missing_ok and self._current.enforced:
                # Editors save by deleting and writing the file again: look once more
                # before a vanished file stops enforcement, so a save opens no window.
                await asyncio.sleep(VANISHED_GRACE_SECONDS)
                parsed = _read(path, _key(path, self._stat))
        elif now < self._next_org_check:
            self._next_stat = now + self._recheck
            return
        if parsed.key is None and self._missing_ok:
            requirement = NOT_ENFORCED
        else:
            requirement = await self._validated(path, parsed)
        # Only a reload that completed counts: if the database failed, the next request
        # tries again rather than enforcing a half-checked file.
        self._parsed = parsed
        self._next_stat = now + self._recheck
        self._next_org_check = now + self._org_recheck
        self._publish(requirement)

    async def _validated(self, path: Path, parsed: _Parsed) -> SignInRequirement:
        problem = parsed.problem
        if problem is None:
            problem = missing_orgs_problem(await self._missing(parsed.orgs))
        return SignInRequirement(parsed.orgs, problem, str(path))

    async def _missing(self, orgs: Iterable[str]) -> set[str]:
        names = list(orgs)
        async with self._db.read() as conn:
            existing = set(await conn.scalars(_EXISTING_ORGS, {"names": names}))
        return set(names) - existing

    def _publish(self, requirement: SignInRequirement) -> None:
        previous, self._current = self._current, requirement
        if requirement == previous:
            return
        fields = {"event": "sign_in", "path": requirement.source or str(self._path)}
        if requirement.problem is not None:
            logger.warning(
                "enforce sign-in: %s is invalid, refusing every request until it is fixed: %s",
                fields["path"],
                requirement.problem,
                extra={**fields, "problem": requirement.problem},
            )
        elif requirement.allowed_orgs:
            orgs = " ".join(requirement.allowed_orgs)
            logger.info(
                "enforce sign-in: only members of [%s] may use this registry (from %s)",
                orgs,
                fields["path"],
                extra={**fields, "allowed_orgs": list(requirement.allowed_orgs)},
            )
        else:
            logger.info(
                "enforce sign-in: not enforced, %s does not exist", fields["path"], extra=fields
            )


def _key(path: Path, stat: Stat) -> FileKey | None:
    try:
        result = stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"
    return (result.st_mtime_ns, result.st_size, result.st_ino)


def _read(path: Path, key: FileKey | None) -> _Parsed:
    if key is None:
        return _Parsed(None, problem="the file does not exist")
    if isinstance(key, str):
        return _Parsed(key, problem=key)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _Parsed(key, problem=f"cannot read the file: {exc.strerror or exc}")
    try:
        return _Parsed(key, parse_registry_json(data))
    except InvalidRegistryJson as exc:
        return _Parsed(key, problem=str(exc))
