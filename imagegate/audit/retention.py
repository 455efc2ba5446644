"""Audit retention: events older than ``IMAGEGATE_AUDIT_RETENTION_DAYS`` are deleted.

The prune runs in chunks, each its own short transaction, so deleting a year of pulls
never holds SQLite's write lock (or PostgreSQL's row locks) long enough to stall the
recorder or an admin command.

The newest event is always kept, however old. SQLite gives a new row the largest id
plus one, so with every row gone ids would start again at 1, below the webhook cursors,
and those events would never be delivered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import delete, func, select

from imagegate.audit.events import utcnow
from imagegate.db import Database
from imagegate.db.models import AuditRecord

log = logging.getLogger(__name__)

CHUNK = 1000


async def prune(db: Database, older_than: dt.datetime, *, chunk: int = CHUNK) -> int:
    """Delete audit events stamped before ``older_than``; how many were deleted."""
    newest = select(func.max(AuditRecord.id)).scalar_subquery()
    doomed = (
        select(AuditRecord.id)
        .where(AuditRecord.timestamp < older_than, AuditRecord.id < newest)
        .order_by(AuditRecord.id)
        .limit(chunk)
    )
    removed = 0
    while True:
        async with db.write() as conn:
            result = await conn.execute(delete(AuditRecord).where(AuditRecord.id.in_(doomed)))
        removed += result.rowcount
        if result.rowcount < chunk:
            return removed


class RetentionTask:
    """Prunes events older than ``days`` at start, then every ``interval`` seconds."""

    def __init__(self, db: Database, days: int, *, interval: float = 3600.0) -> None:
        if days <= 0:
            raise ValueError("retention must be at least one day")
        self._db = db
        self.days = days
        self.interval = interval
        self.removed = 0  # in total, since start
        self.runs = 0
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        removed = await prune(self._db, utcnow() - dt.timedelta(days=self.days))
        self.removed += removed
        self.runs += 1
        log.info(
            "audit retention: removed %d events older than %d days",
            removed,
            self.days,
            extra={"removed": removed, "retention_days": self.days},
        )
        return removed

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                # The database may be down for now: the next round tries again.
                log.exception("audit retention: prune failed")
            await asyncio.sleep(self.interval)

    async def start(self) -> None:
        """Prune in the background: a long first prune must not delay startup."""
        self._task = asyncio.create_task(self._run(), name="audit retention")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
