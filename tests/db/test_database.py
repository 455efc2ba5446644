"""The database handle: URLs, migrations, transactions and concurrency, on both backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    bindparam,
    insert,
    select,
    text,
    update,
)

from imagegate.config import ConfigError
from imagegate.db import Database, DatabaseError
from imagegate.db.database import async_url
from imagegate.db.models import Base, PublisherOverride
from imagegate.services.common import utcnow


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:////var/lib/ig/db.sqlite", "sqlite+aiosqlite:////var/lib/ig/db.sqlite"),
        ("sqlite:///relative.db", "sqlite+aiosqlite:///relative.db"),
        ("sqlite+aiosqlite:////x.db", "sqlite+aiosqlite:////x.db"),
        ("postgresql://u:p@db:5432/ig", "postgresql+asyncpg://u:p@db:5432/ig"),
        ("postgres://u@db/ig", "postgresql+asyncpg://u@db/ig"),
        ("postgresql+asyncpg://u@db/ig", "postgresql+asyncpg://u@db/ig"),
    ],
)
def test_urls_map_to_asyncio_drivers(given: str, expected: str) -> None:
    assert async_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    "url",
    ["mysql://db/ig", "postgresql+psycopg://db/ig", "sqlite://", "sqlite:///:memory:", "nonsense"],
)
def test_unusable_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="database URL"):
        Database(url)


def test_display_url_hides_the_password() -> None:
    assert "secret" not in Database("postgresql://u:secret@db/ig").display_url


async def test_migrate_creates_the_sqlite_parent_directory_and_is_idempotent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nested" / "deeper" / "imagegate.db"
    db = Database(f"sqlite:///{path}")
    try:
        await db.migrate()
        await db.migrate()
        assert path.exists()
        assert await db.ping()
    finally:
        await db.dispose()


def _schema_differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_create_exactly_the_models(database: Database) -> None:
    async with database.read() as conn:
        assert await conn.run_sync(_schema_differences) == []


async def test_migrations_from_several_processes_at_once(database_url: str) -> None:
    handles = [Database(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(db.migrate() for db in handles))
        assert all([await db.ping() for db in handles])
    finally:
        for db in handles:
            await db.dispose()


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout=7)
    try:
        async with db.read() as conn:
            assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
            assert await conn.scalar(text("PRAGMA busy_timeout")) == 7000
    finally:
        await db.dispose()


_OVERRIDE = select(PublisherOverride.namespace, PublisherOverride.updated_at).where(
    PublisherOverride.namespace == bindparam("namespace")
)
_ALL_OVERRIDES = select(PublisherOverride.namespace).order_by(PublisherOverride.namespace)


async def test_snapshot_reads_what_a_read_transaction_reads(database: Database) -> None:
    """Same rows, same Python types (a UTC datetime, not SQLite's text), fresh each time."""
    assert await database.snapshot((_OVERRIDE, {"namespace": "acme"})) == [[]]
    async with database.write() as conn:
        await conn.execute(
            insert(PublisherOverride).values(
                [
                    {"namespace": name, "status": "community", "updated_at": utcnow()}
                    for name in ("acme", "zeta")
                ]
            )
        )
    async with database.read() as conn:
        expected = [tuple(row) for row in await conn.execute(_OVERRIDE, {"namespace": "acme"})]
    for _ in range(2):  # the second run uses the statement compiled by the first
        found, everything = await database.snapshot(
            (_OVERRIDE, {"namespace": "acme"}), (_ALL_OVERRIDES, {})
        )
        assert found == expected
        assert found[0][1].tzinfo is not None
        assert everything == [("acme",), ("zeta",)]
    async with database.write() as conn:
        await conn.execute(
            PublisherOverride.__table__.delete().where(PublisherOverride.namespace == "acme")
        )
    assert await database.snapshot((_OVERRIDE, {"namespace": "acme"})) == [[]]


async def test_a_failed_write_leaves_nothing_behind(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.write() as conn:
            await conn.execute(
                insert(PublisherOverride).values(
                    namespace="half", status="community", updated_at=utcnow()
                )
            )
            raise RuntimeError("the second half of the command fails")
    async with database.read() as conn:
        assert await conn.scalar(select(PublisherOverride.namespace)) is None


async def test_concurrent_read_then_write_transactions_lose_no_update(database: Database) -> None:
    """The SQLite trap of REFERENCE.md section 6: deferred transactions lose increments.

    Each writer reads the counter and writes it back plus one. ``BEGIN IMMEDIATE``
    (SQLite) and the row lock (PostgreSQL) serialize them, so all increments survive.
    """
    counter = Table(
        "test_counter",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("value", Integer, nullable=False),
    )
    async with database.write() as conn:
        await conn.run_sync(counter.create)
        await conn.execute(insert(counter).values(id=1, value=0))

    async def increment() -> None:
        async with database.write() as conn:
            value = await conn.scalar(
                select(counter.c.value).where(counter.c.id == 1).with_for_update()
            )
            await asyncio.sleep(0)  # let the others run in between
            await conn.execute(update(counter).values(value=(value or 0) + 1))

    try:
        await asyncio.gather(*(increment() for _ in range(25)))
        async with database.read() as conn:
            assert await conn.scalar(select(counter.c.value)) == 25
    finally:
        async with database.write() as conn:
            await conn.run_sync(counter.drop)


async def test_ping_is_false_when_the_database_is_unreachable() -> None:
    db = Database("postgresql://nobody@127.0.0.1:9/nothing", connect_timeout=1, ping_timeout=1)
    try:
        assert await db.ping() is False
    finally:
        await db.dispose()


async def test_migrate_reports_an_unreachable_database() -> None:
    db = Database("postgresql://nobody@127.0.0.1:9/nothing", connect_timeout=1)
    try:
        with pytest.raises(DatabaseError, match="cannot prepare database"):
            await db.migrate()
    finally:
        await db.dispose()


def test_schema_revision_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from imagegate.db.database import MIGRATIONS_DIR, SCHEMA_REVISION

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION
