"""An organization's repository allowlist for Image Access Management.

Listed repositories are pullable by every member whatever their category (REFERENCE.md
section 1); the policy reads the list in ``AccessService.decide_pull``'s snapshot.
Entries are canonical repository names: ``nginx`` is stored as ``library/nginx``, so
the list matches what a pull asks for however the entry was typed.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from imagegate.core.errors import NameInvalid
from imagegate.core.names import parse_repository
from imagegate.db import Database
from imagegate.db.models import AllowlistEntry
from imagegate.db.statements import insert_unless_present
from imagegate.services.audit_changes import record
from imagegate.services.common import Clock, org_id, utcnow
from imagegate.services.errors import InvalidInput

MAX_ENTRIES = 1000


def canonical_repository(repository: str) -> str:
    """``NAMESPACE/REPO`` (or a bare official name) in canonical form; ``InvalidInput``
    with the rule broken otherwise."""
    try:
        return parse_repository(repository).full
    except NameInvalid as exc:
        raise InvalidInput(exc.message) from None


async def _record(conn: AsyncConnection, org: str, name: str, *, listed: bool) -> None:
    """Record ``name`` put on (``listed``) or taken off the organization's allowlist."""
    entry = {"repository": name}
    await record(
        conn,
        "org.allowlist.add" if listed else "org.allowlist.remove",
        account=org,
        name=name,
        before=None if listed else entry,
        after=entry if listed else None,
    )


class AllowlistService:
    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def list(self, org: str) -> list[str]:
        """The organization's allowlisted repositories, sorted (``NotFound``: no such org)."""
        async with self._db.read() as conn:
            the_org_id = await org_id(conn, org)
            names = await conn.scalars(
                select(AllowlistEntry.repository)
                .where(AllowlistEntry.org_id == the_org_id)
                .order_by(AllowlistEntry.repository)
            )
            return list(names)

    async def add(self, org: str, repository: str) -> bool:
        """Allowlist ``repository``; False when it already was (nothing changes)."""
        name = canonical_repository(repository)
        async with self._db.write() as conn:
            # Locked: the size check and the insert must not interleave with another add.
            the_org_id = await org_id(conn, org, lock=True)
            count = await conn.scalar(
                select(func.count()).where(AllowlistEntry.org_id == the_org_id)
            )
            if (count or 0) >= MAX_ENTRIES:
                raise InvalidInput(
                    f"the allowlist of {org!r} already holds {MAX_ENTRIES} repositories; "
                    "remove some first"
                )
            added = await conn.execute(
                insert_unless_present(
                    conn,
                    AllowlistEntry,
                    {"org_id": the_org_id, "repository": name, "created_at": self._clock()},
                    [AllowlistEntry.org_id, AllowlistEntry.repository],
                ).returning(AllowlistEntry.repository)
            )
            if added.first() is None:
                return False
            await _record(conn, org, name, listed=True)
            return True

    async def remove(self, org: str, repository: str) -> bool:
        """Take ``repository`` off the allowlist; False when it was not on it."""
        name = canonical_repository(repository)
        async with self._db.write() as conn:
            the_org_id = await org_id(conn, org)
            removed = await conn.execute(
                delete(AllowlistEntry)
                .where(AllowlistEntry.org_id == the_org_id, AllowlistEntry.repository == name)
                .returning(AllowlistEntry.repository)
            )
            if removed.first() is None:
                return False
            await _record(conn, org, name, listed=False)
            return True
