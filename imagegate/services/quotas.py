"""Organizations' storage: the quota an administrator sets, and the usage pushes count.

Usage is a ledger in the database: one ``org_blobs`` row per digest an organization's
hosted repositories hold (each digest once per organization), and their sum kept in
``organizations.storage_used``. A push adds its blob (``charge``) in one transaction that
inserts the row and raises the sum only while it stays within the quota, so concurrent
pushes cannot overshoot and a refused one leaves nothing counted; a delete takes it back
(``release``) once no repository of the organization holds the digest. Nothing on the
push path scans anything: a charge is two indexed statements, a quota check one read.

The filesystem is the truth and the ledger follows it. What the ledger can miss (content
pushed before this version, a crash between counting and linking, a delete racing a push
of the same digest) is put right by ``recount``, which ``imagegate gc`` runs for every
organization and ``imagegate org set --quota`` for the one it changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import bindparam, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from imagegate.core.digests import Digest
from imagegate.core.quota import StorageUsage, over_quota
from imagegate.db import Database
from imagegate.db.models import Organization, OrgBlob
from imagegate.db.statements import insert_unless_present
from imagegate.services.common import Clock, org_id, utcnow
from imagegate.services.errors import InvalidInput, NotFound
from imagegate.services.org_settings import change_settings

# Read on every PATCH of an upload while a quota is set: compiled once.
_USAGE = select(Organization.storage_used, Organization.storage_quota).where(
    Organization.name == bindparam("org")
)


_CHUNK = 500  # digests per IN (...): well inside SQLite's limit on bound values


async def _locked_usage(conn: AsyncConnection, org: str) -> tuple[int, StorageUsage]:
    the_org_id = await org_id(conn, org, lock=True)
    row = (await conn.execute(_USAGE, {"org": org})).one()
    return the_org_id, StorageUsage(org, row[0], row[1])


class QuotaService:
    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def usage(self, org: str) -> StorageUsage:
        """The organization's usage and quota (no quota, nothing used: an unknown name)."""
        [rows] = await self._db.snapshot((_USAGE, {"org": org}))
        if not rows:
            return StorageUsage(org, 0, None)
        used, quota = rows[0]
        return StorageUsage(org, int(used), None if quota is None else int(quota))

    async def get(self, org: str) -> StorageUsage:
        """``usage``, for an organization that must exist (``NotFound`` otherwise)."""
        async with self._db.read() as conn:
            await org_id(conn, org)
            used, quota = (await conn.execute(_USAGE, {"org": org})).one()
        return StorageUsage(org, used, quota)

    async def set_quota(self, org: str, quota: int | None) -> StorageUsage:
        """Set (or with ``None`` remove) the quota, recorded in the audit trail. A quota
        below the current usage is allowed: pushes that add bytes are refused until
        enough is deleted."""
        if quota is not None and quota < 0:
            raise InvalidInput("a storage quota cannot be negative")
        async with self._db.write() as conn:
            await change_settings(
                conn,
                org,
                {"quota": Organization.storage_quota},
                {"quota": quota},
                action="org.quota.update",
                now=self._clock(),
            )
            used = (await conn.execute(_USAGE, {"org": org})).one()[0]
        return StorageUsage(org, used, quota)

    async def charge(self, org: str, digest: Digest, size: int) -> None:
        """Count ``digest`` (``size`` bytes) for ``org`` unless it is counted already.

        Raises ``Denied`` (nothing counted) when that would take usage past the quota.
        """
        async with self._db.write() as conn:
            the_org_id = await conn.scalar(select(Organization.id).where(Organization.name == org))
            if the_org_id is None:
                return  # not an organization (any more): nothing to count against
            values = {
                "org_id": the_org_id,
                "digest": str(digest),
                "size": size,
                "counted_at": self._clock(),
            }
            added = await conn.scalar(
                insert_unless_present(
                    conn, OrgBlob, values, [OrgBlob.org_id, OrgBlob.digest]
                ).returning(OrgBlob.size)
            )
            if added is None:
                return  # the organization holds it already: no more bytes
            within = or_(
                Organization.storage_quota.is_(None),
                Organization.storage_used + size <= Organization.storage_quota,
            )
            raised = await conn.scalar(
                update(Organization)
                .where(Organization.id == the_org_id, within)
                .values(storage_used=Organization.storage_used + size)
                .returning(Organization.storage_used)
            )
            if raised is None:
                row = (await conn.execute(_USAGE, {"org": org})).one()
                raise over_quota(StorageUsage(org, row[0], row[1]), size)  # rolls back

    async def release(self, org: str, digest: Digest) -> None:
        """``digest`` left the last repository of ``org`` that held it."""
        async with self._db.write() as conn:
            the_org_id = await conn.scalar(select(Organization.id).where(Organization.name == org))
            if the_org_id is None:
                return
            size = await conn.scalar(
                delete(OrgBlob)
                .where(OrgBlob.org_id == the_org_id, OrgBlob.digest == str(digest))
                .returning(OrgBlob.size)
            )
            if size is not None:
                await conn.execute(
                    update(Organization)
                    .where(Organization.id == the_org_id)
                    .values(
                        storage_used=case(
                            (Organization.storage_used > size, Organization.storage_used - size),
                            else_=0,
                        )
                    )
                )

    async def recount(
        self, org: str, held: Mapping[Digest, int], looked_at: dt.datetime
    ) -> StorageUsage:
        """Make the ledger what ``held`` says the repositories held at ``looked_at``:
        digests counted before then and not held go, held ones missing are added;
        anything a push counted since is kept."""
        async with self._db.write() as conn:
            the_org_id, _ = await _locked_usage(conn, org)
            rows = await conn.execute(
                select(OrgBlob.digest, OrgBlob.counted_at).where(OrgBlob.org_id == the_org_id)
            )
            counted = {digest: at for digest, at in rows}
            held_text = {str(digest): size for digest, size in held.items()}
            gone = [d for d, at in counted.items() if d not in held_text and at < looked_at]
            for start in range(0, len(gone), _CHUNK):
                chunk = gone[start : start + _CHUNK]
                await conn.execute(
                    delete(OrgBlob).where(OrgBlob.org_id == the_org_id, OrgBlob.digest.in_(chunk))
                )
            for digest, size in held_text.items():
                if digest not in counted:
                    values = {
                        "org_id": the_org_id,
                        "digest": digest,
                        "size": size,
                        "counted_at": looked_at,
                    }
                    await conn.execute(
                        insert_unless_present(
                            conn, OrgBlob, values, [OrgBlob.org_id, OrgBlob.digest]
                        )
                    )
            total = await conn.scalar(
                select(func.coalesce(func.sum(OrgBlob.size), 0)).where(OrgBlob.org_id == the_org_id)
            )
            await conn.execute(
                update(Organization)
                .where(Organization.id == the_org_id)
                .values(storage_used=int(total or 0))
            )
            row = (await conn.execute(_USAGE, {"org": org})).one()
        return StorageUsage(org, row[0], row[1])

    async def recount_all(
        self, held: Mapping[str, Mapping[Digest, int]], looked_at: dt.datetime
    ) -> list[StorageUsage]:
        """``recount`` every organization (one holding nothing is ``{}``), by name."""
        async with self._db.read() as conn:
            names = sorted(await conn.scalars(select(Organization.name)))
        counted = []
        for org in names:
            try:
                counted.append(await self.recount(org, held.get(org, {}), looked_at))
            except NotFound:
                continue  # deleted meanwhile
        return counted
