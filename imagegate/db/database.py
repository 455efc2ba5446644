"""The database handle: one async engine, read and write transactions, migrations.

SQLite needs care to be correct under concurrency (REFERENCE.md section 6). The
``sqlite3`` driver's own transaction handling starts a transaction lazily and as a
*deferred* one, so two concurrent read-then-write transactions can each read, and the
later writer then fails or, worse, overwrites the other's change. We therefore:

- turn the driver's handling off (``isolation_level = None``) and emit ``BEGIN``
  ourselves: ``BEGIN IMMEDIATE`` for write transactions, which takes the write lock up
  front so writers queue instead of interleaving;
- use WAL, so readers never block the writer nor the writer the readers;
- set ``busy_timeout``, so a queued writer waits instead of failing at once;
- enable foreign keys, which SQLite leaves off by default.

PostgreSQL runs at READ COMMITTED; services write with single atomic statements
(``UPDATE ... SET``, ``INSERT ... ON CONFLICT``) or lock the row they decide on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from imagegate.config import ConfigError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest revision shipped in migrations/versions (a test checks it is Alembic's head).
SCHEMA_REVISION = "0002"
_WRITE_OPTION = "imagegate_write"
# Any constant works; it only has to be the same in every imagegate process.
_MIGRATION_LOCK_KEY = 0x1A6E_6A7E
_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_BACKEND_ALIASES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}


class DatabaseError(Exception):
    """The database cannot be reached or migrated; the message says which and why."""


def async_url(url: str) -> URL:
    """Map ``sqlite:///path`` and ``postgresql://...`` to their asyncio drivers."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"database URL {url!r} is not a URL such as sqlite:///path or postgresql://..."
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    canonical = _BACKEND_ALIASES.get(backend)
    if canonical is None or (driver and f"{canonical}+{driver}" != _DRIVERS[canonical]):
        raise ConfigError(
            f"database URL {parsed.render_as_string()!r}: use sqlite:///path or postgresql://..."
        )
    if canonical == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError(
            "database URL: an in-memory SQLite database cannot be shared; "
            "give a file path such as sqlite:////var/lib/imagegate/imagegate.db"
        )
    return parsed.set(drivername=_DRIVERS[canonical])


class Database:
    """An async engine plus the transaction discipline every service uses.

    Services open ``read()`` for queries and ``write()`` for changes; each is one
    transaction that commits on success and rolls back on any exception, so a command
    is never half-written.
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        ping_timeout: float = 2.0,
    ) -> None:
        self.url = async_url(url)
        self._ping_timeout = ping_timeout
        self.backend = self.url.get_backend_name()
        connect_args: dict[str, Any] = {"timeout": connect_timeout}
        if self.backend == "sqlite":
            connect_args = {"timeout": busy_timeout}
        self._engine: AsyncEngine = create_async_engine(self.url, connect_args=connect_args)
        if self.backend == "sqlite":
            _install_sqlite_transaction_control(self._engine, busy_timeout)
        self._writer = self._engine.execution_options(**{_WRITE_OPTION: True})

    @property
    def display_url(self) -> str:
        """The URL without its password, for messages and logs."""
        return self.url.render_as_string(hide_password=True)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction: one consistent snapshot; it must not write."""
        async with self._engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite it holds the write lock from its first statement."""
        async with self._writer.begin() as conn:
            yield conn

    async def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration shipped in the package.

        Safe to run from several processes at once: SQLite serializes them with the
        write lock, PostgreSQL with an advisory lock held for the transaction.
        """
        if self.backend == "sqlite" and self.url.database:
            await asyncio.to_thread(_create_parent_dir, self.url.database)
        try:
            if await self._schema_revision() == SCHEMA_REVISION:
                return  # the common case: skip importing and running Alembic
            async with self.write() as conn:
                if self.backend == "postgresql":
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                await conn.run_sync(_upgrade_to_head)
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseError(f"cannot prepare database {self.display_url}: {exc}") from exc

    async def _schema_revision(self) -> str | None:
        """The revision the database is at, or ``None`` before the first migration."""
        try:
            async with self.read() as conn:
                revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        except SQLAlchemyError:
            return None
        return None if revision is None else str(revision)

    async def ping(self) -> bool:
        """True when the database answers a trivial query within ``ping_timeout`` seconds."""
        try:
            async with asyncio.timeout(self._ping_timeout), self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("database ping failed: %s", exc)
            return False
        return True

    async def dispose(self) -> None:
        """Close every pooled connection; the object must not be used afterwards."""
        await self._engine.dispose()


def _create_parent_dir(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)


def _upgrade_to_head(connection: Connection) -> None:
    # Imported here: Alembic costs ~0.2 s to import, and most starts need no migration.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _install_sqlite_transaction_control(engine: AsyncEngine, busy_timeout: float) -> None:
    busy_ms = int(busy_timeout * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        # synchronous stays FULL: writes are rare (admin commands), and a policy change
        # that was reported as done must survive a power cut.
        for pragma in (
            "PRAGMA journal_mode=WAL",
            f"PRAGMA busy_timeout={busy_ms}",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
