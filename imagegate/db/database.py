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

``snapshot`` is the hot read path (every registry request's access decision). Through
aiosqlite, each statement, cursor, ``BEGIN``, ``COMMIT`` and pool reset is a hop to the
connection's thread and back, and a read transaction cost about 1 ms of CPU. On SQLite,
``snapshot`` instead runs the whole transaction in one hop on a plain ``sqlite3``
connection, with the statements compiled once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Select, create_engine, event, text
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from imagegate.config import ConfigError
from imagegate.db.generation import BUMPED, FileSignal, GenerationSignal, MemorySignal

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest revision shipped in migrations/versions (a test checks it is Alembic's head).
SCHEMA_REVISION = "0008"
_WRITE_OPTION = "imagegate_write"
# Any constant works; it only has to be the same in every imagegate process.
_MIGRATION_LOCK_KEY = 0x1A6E_6A7E
_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_BACKEND_ALIASES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}
# Threads for SQLite snapshots: their own, so blob I/O filling the default pool cannot
# hold up access decisions.
_SNAPSHOT_THREADS = 4
_COMPILED_CACHE_SIZE = 128

AnySelect = Select[*tuple[Any, ...]]
Query = tuple[AnySelect, Mapping[str, Any]]
"""A SELECT (values as ``bindparam``s) and its parameters, for ``Database.snapshot``."""


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


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` database URL; ``None`` for PostgreSQL."""
    parsed = async_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


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
        signal: GenerationSignal | None = None,
    ) -> None:
        """``signal``: where committed changes are published (``db.generation``); by
        default a file beside a SQLite database, shared by every process using it."""
        self.url = async_url(url)
        self._ping_timeout = ping_timeout
        self.backend = self.url.get_backend_name()
        connect_args: dict[str, Any] = {"timeout": connect_timeout}
        if self.backend == "sqlite":
            connect_args = {"timeout": busy_timeout}
        self._engine: AsyncEngine = create_async_engine(self.url, connect_args=connect_args)
        self._snapshots: _SQLiteSnapshots | None = None
        if self.backend == "sqlite":
            _install_sqlite_transaction_control(self._engine.sync_engine, busy_timeout)
            self._snapshots = _SQLiteSnapshots(self.url, busy_timeout)
        self._writer = self._engine.execution_options(**{_WRITE_OPTION: True})
        self.signal = signal or _default_signal(self.url)

    @property
    def display_url(self) -> str:
        """The URL without its password, for messages and logs."""
        return self.url.render_as_string(hide_password=True)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction: one consistent snapshot; it must not write."""
        async with self._engine.begin() as conn:
            yield conn

    async def snapshot(self, *queries: Query) -> list[list[tuple[Any, ...]]]:
        """The rows of each SELECT, all read in one read transaction (one snapshot).

        Pass statements built once (module constants) with ``bindparam`` for values: on
        SQLite each is compiled once and kept by identity. Rows are plain tuples with the
        column types' conversions applied, the same on both backends.
        """
        if self._snapshots is not None:
            return await self._snapshots.run(queries)
        async with self.read() as conn:
            return [
                [tuple(row) for row in await conn.execute(statement, dict(params))]
                for statement, params in queries
            ]

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite it holds the write lock from its first statement.

        If it bumped the generation, the change is published once it has committed.
        """
        async with self._writer.connect() as conn:
            conn.info.pop(BUMPED, None)  # left by a transaction that rolled back
            async with conn.begin():
                yield conn
            bumped = conn.info.pop(BUMPED, None)
        if bumped is not None:
            self.signal.publish(bumped)

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
        try:
            await self._engine.dispose()
        finally:
            self.signal.close()
            if self._snapshots is not None:
                await asyncio.to_thread(self._snapshots.close)


def _default_signal(url: URL) -> GenerationSignal:
    """A SQLite database's processes share its directory: the signal lives beside it."""
    if url.get_backend_name() == "sqlite" and url.database:
        return FileSignal(Path(f"{url.database}-generation"))
    return MemorySignal()


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the positional parameters' bind names, in order
    defaults: Mapping[str, Any]
    bind: Sequence[Callable[[Any], Any] | None]
    result: Sequence[Callable[[Any], Any] | None]

    @classmethod
    def of(cls, statement: AnySelect, dialect: Dialect) -> _Compiled:
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        if any(compiled.binds[name].expanding for name in names):
            raise ValueError("snapshot statements cannot use expanding (IN list) parameters")
        return cls(
            sql=compiled.string,
            names=names,
            defaults=compiled.construct_params(_check=False),
            bind=[
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in names
            ],
            result=[
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in statement.selected_columns
            ],
        )

    def parameters(self, given: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, process in zip(self.names, self.bind, strict=True):
            value = given[name] if name in given else self.defaults[name]
            values.append(value if process is None else process(value))
        return values

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value)
            for value, process in zip(raw, self.result, strict=True)
        )


class _SQLiteSnapshots:
    """Read transactions on plain ``sqlite3`` connections, each in one thread hop."""

    def __init__(self, url: URL, busy_timeout: float) -> None:
        # The same file through the synchronous driver; connections are set up by the same
        # listener (WAL, busy_timeout, foreign keys, no implicit transactions).
        self._engine: Engine = create_engine(
            url.set(drivername="sqlite+pysqlite"),
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
            pool_size=_SNAPSHOT_THREADS,
        )
        _install_sqlite_transaction_control(self._engine, busy_timeout)
        self._executor = ThreadPoolExecutor(_SNAPSHOT_THREADS, thread_name_prefix="sqlite-read")
        self._compiled: dict[AnySelect, _Compiled] = {}

    async def run(self, queries: Sequence[Query]) -> list[list[tuple[Any, ...]]]:
        prepared = [(self._compile(statement), params) for statement, params in queries]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._read, prepared)

    def _compile(self, statement: AnySelect) -> _Compiled:
        compiled = self._compiled.get(statement)
        if compiled is None:
            if len(self._compiled) >= _COMPILED_CACHE_SIZE:
                self._compiled.clear()  # statements built per call: compile each anew
            compiled = _Compiled.of(statement, self._engine.dialect)
            self._compiled[statement] = compiled
        return compiled

    def _read(
        self, prepared: Sequence[tuple[_Compiled, Mapping[str, Any]]]
    ) -> list[list[tuple[Any, ...]]]:
        pooled = self._engine.raw_connection()
        try:
            connection = pooled.driver_connection
            assert connection is not None
            connection.execute("BEGIN")
            try:
                results = [
                    [
                        compiled.row(raw)
                        for raw in connection.execute(compiled.sql, compiled.parameters(params))
                    ]
                    for compiled, params in prepared
                ]
            finally:
                connection.execute("ROLLBACK")  # read-only: nothing to commit
        finally:
            pooled.close()
        return results

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._engine.dispose()


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


def _install_sqlite_transaction_control(engine: Engine, busy_timeout: float) -> None:
    busy_ms = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
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

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
