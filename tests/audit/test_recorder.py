"""The audit recorder on a real database (both backends): batches in arrival order, and
nothing lost without a count and a log line when the buffer is full or the database is
unavailable."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text

from imagegate.audit.events import LOGIN, PULL, AuditEvent, login
from imagegate.audit.recorder import AuditRecorder
from imagegate.auth.passwords import PasswordHasher
from imagegate.db import Database
from imagegate.db.models import AuditRecord
from imagegate.services import AccountService, OrganizationService
from tests.db.fixtures import database, database_url

__all__ = ["database", "database_url"]

AUDIT_LOGGER = "imagegate.audit"


def pulls(count: int, start: int = 0) -> list[AuditEvent]:
    return [AuditEvent(PULL, name=f"repo{i}") for i in range(start, start + count)]


async def stored_names(db: Database) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(select(AuditRecord.name).order_by(AuditRecord.id))
        return [str(name) for (name,) in rows]


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the background writer to get somewhere (a deadline, not an assertion)."""
    async with asyncio.timeout(30):
        while not condition():  # noqa: ASYNC110 - counters offer no event to wait on
            await asyncio.sleep(0.01)


@contextmanager
def audit_inserts() -> Iterator[list[int]]:
    """The number of rows of each INSERT into audit_events the database is sent."""
    seen: list[int] = []

    def count(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS"):
            seen.append(len(parameters) if many else 1)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", count)


async def rename(db: Database, old: str, new: str) -> None:
    """Take the table away (as a database being restored would be), or bring it back."""
    async with db.write() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_batches_are_single_inserts_in_arrival_order(database: Database) -> None:
    recorder = AuditRecorder(database, batch_size=10)
    events = pulls(25)
    with audit_inserts() as inserts:
        for audit_event in events:
            recorder.record(audit_event)
        await recorder.flush()
    assert inserts == [10, 10, 5]
    assert await stored_names(database) == [e.name for e in events]
    assert (recorder.written, recorder.buffered, recorder.dropped) == (25, 0, 0)


async def test_a_full_buffer_drops_counts_and_says_so(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, AUDIT_LOGGER)
    recorder = AuditRecorder(database, capacity=5)
    for audit_event in pulls(8):
        recorder.record(audit_event)
    assert (recorder.buffered, recorder.dropped) == (5, 3)
    await recorder.close()  # reports the drops not yet in a log line
    warnings = [r for r in caplog.records if r.name == AUDIT_LOGGER and r.levelname == "WARNING"]
    assert warnings, "a dropped event must be logged"
    assert sum(r.__dict__["dropped"] for r in warnings) == 3
    assert "dropped 1 events" in warnings[0].getMessage()  # the first drop is told at once
    assert await stored_names(database) == [f"repo{i}" for i in range(5)]


async def test_database_unavailable_retries_and_loses_nothing(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, AUDIT_LOGGER)
    recorder = AuditRecorder(
        database, batch_size=10, flush_interval=0.01, retry_initial=0.01, retry_max=0.05
    )
    await rename(database, "audit_events", "audit_events_away")
    try:
        recorder.start()
        for audit_event in pulls(30):
            recorder.record(audit_event)
        await until(lambda: recorder.write_failures >= 3)
        assert (recorder.written, recorder.buffered) == (0, 30)
        for audit_event in pulls(5, start=30):  # still recorded while the database is down
            recorder.record(audit_event)
    finally:
        await rename(database, "audit_events_away", "audit_events")
    await until(lambda: recorder.buffered == 0)
    await recorder.close()
    assert await stored_names(database) == [f"repo{i}" for i in range(35)]
    assert (recorder.written, recorder.dropped) == (35, 0)
    failures = [r for r in caplog.records if r.name == AUDIT_LOGGER and r.levelname == "ERROR"]
    assert len(failures) == recorder.write_failures
    assert "will retry" in failures[0].getMessage()


async def test_close_writes_what_is_left(database: Database) -> None:
    recorder = AuditRecorder(database, flush_interval=3600)  # only close() will write
    recorder.start()
    for audit_event in pulls(3):
        recorder.record(audit_event)
    await recorder.close()
    assert await stored_names(database) == ["repo0", "repo1", "repo2"]


async def test_shutdown_with_the_database_gone_counts_the_loss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, AUDIT_LOGGER)
    # A directory that does not exist: SQLite cannot even open the file.
    gone = Database(f"sqlite:///{tmp_path / 'missing' / 'imagegate.db'}")
    recorder = AuditRecorder(gone, retry_initial=0.01, retry_max=0.02, close_timeout=0.2)
    try:
        for audit_event in pulls(4):
            recorder.record(audit_event)
        await recorder.close()
    finally:
        await gone.dispose()
    assert (recorder.written, recorder.dropped, recorder.buffered) == (0, 4, 0)
    assert recorder.write_failures >= 1
    assert any("4 events could not be written" in r.getMessage() for r in caplog.records)


async def test_recording_never_waits_for_the_database(database: Database) -> None:
    assert not inspect.iscoroutinefunction(AuditRecorder.record)
    recorder = AuditRecorder(database, batch_size=10)
    recorder.start()
    try:
        async with database.write() as conn:
            # Hold the table (SQLite: the write lock this transaction took) so the writer
            # blocks; recording goes on regardless.
            if database.backend == "postgresql":
                await conn.execute(text("LOCK TABLE audit_events IN EXCLUSIVE MODE"))
            for audit_event in pulls(10):
                recorder.record(audit_event)
            await asyncio.sleep(0.3)  # the writer is now waiting on the lock
            for audit_event in pulls(90, start=10):
                recorder.record(audit_event)
            assert (recorder.written, recorder.buffered) == (0, 100)
    finally:
        await recorder.close()
    assert await stored_names(database) == [f"repo{i}" for i in range(100)]


async def test_only_a_successful_login_is_written_with_the_users_organizations(
    database: Database,
) -> None:
    accounts = AccountService(database, hasher=PasswordHasher.fast_for_tests())
    await accounts.create_user("alice", "alice@example.com", "alice-password")
    await OrganizationService(database).add_org("acme", "alice")
    recorder = AuditRecorder(database)
    for attempt in (
        login("alice", signed_in=True, outcome="success", reason="", via="registry"),
        login("alice", signed_in=False, outcome="failure", reason="wrong", via="registry"),
        AuditEvent(PULL, actor="alice", name="library/alpine"),
    ):
        recorder.record(attempt)
    await recorder.close()

    async with database.read() as conn:
        rows = await conn.execute(
            select(AuditRecord.action, AuditRecord.decision, AuditRecord.orgs)
            .where(AuditRecord.action.in_((LOGIN, PULL)))  # not the setup's own changes
            .order_by(AuditRecord.id)
        )
        assert [tuple(row) for row in rows] == [
            (LOGIN, "allowed", ",acme,"),
            (LOGIN, "denied", ""),
            (PULL, None, ""),
        ]
