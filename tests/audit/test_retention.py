"""Audit retention on both backends, and the gateway's prune at startup."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import insert, select

from imagegate.audit.events import PULL, AuditEvent, utcnow
from imagegate.audit.retention import RetentionTask, prune
from imagegate.bootstrap import running_gateway
from imagegate.config import load_settings
from imagegate.db import Database
from imagegate.db.models import AuditRecord
from tests.db.fixtures import database, database_url
from tests.support.polling import eventually

__all__ = ["database", "database_url"]


def aged(days: float, name: str) -> AuditEvent:
    return AuditEvent(PULL, timestamp=utcnow() - dt.timedelta(days=days), name=name)


async def store(db: Database, *events: AuditEvent) -> None:
    async with db.write() as conn:
        await conn.execute(insert(AuditRecord).values([event.to_row() for event in events]))


async def names(db: Database) -> list[str]:
    async with db.read() as conn:
        return list(await conn.scalars(select(AuditRecord.name).order_by(AuditRecord.id)))


async def names_are(db: Database, expected: list[str]) -> bool:
    return await names(db) == expected


async def test_old_events_are_pruned_and_recent_ones_kept(database: Database) -> None:
    await store(database, aged(400, "a"), aged(3, "b"), aged(0.5, "c"), aged(2.5, "d"))
    await store(database, aged(0, "e"))

    removed = await prune(database, utcnow() - dt.timedelta(days=2))

    assert removed == 3
    assert await names(database) == ["c", "e"]


async def test_a_big_prune_goes_in_chunks_and_removes_everything_due(database: Database) -> None:
    await store(database, *(aged(10, f"old{n}") for n in range(25)), aged(0, "new"))

    removed = await prune(database, utcnow() - dt.timedelta(days=1), chunk=10)

    assert removed == 25
    assert await names(database) == ["new"]


async def test_the_newest_event_is_kept_however_old(database: Database) -> None:
    # SQLite would otherwise hand out its id again, below the webhook cursors.
    await store(database, aged(30, "a"), aged(20, "b"))

    assert await prune(database, utcnow() - dt.timedelta(days=1)) == 1
    assert await names(database) == ["b"]


async def test_the_task_prunes_at_start_and_counts(database: Database) -> None:
    await store(database, aged(5, "old"), aged(0, "new"))
    task = RetentionTask(database, 2, interval=3600)
    await task.start()
    try:
        await eventually(lambda: task.runs >= 1)
    finally:
        await task.close()

    assert task.removed == 1
    assert await names(database) == ["new"]


async def test_the_gateway_prunes_at_startup(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "IMAGEGATE_DATA_DIR": str(tmp_path / "data"),
            "IMAGEGATE_HUB_API_URL": "",
            "IMAGEGATE_AUDIT_RETENTION_DAYS": "1",
        }
    )
    db = Database(settings.effective_database_url)
    try:
        await db.migrate()
        await store(db, aged(2, "two days old"), aged(0, "today"))

        async with running_gateway(settings):
            await eventually(lambda: names_are(db, ["today"]))
    finally:
        await db.dispose()
