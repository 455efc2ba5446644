"""Databases for tests, on both backends: a SQLite file per test, or scratch PostgreSQL.

``database_url`` is parametrized over ``sqlite`` and ``postgresql``; conftests import the
fixtures from here. PostgreSQL gets one freshly created, uniquely named database per test
session (dropped at the end); each test starts from empty tables. When PostgreSQL cannot
be reached the PostgreSQL variants skip locally and fail in CI (``CI=true``), where
nothing may skip. ``IMAGEGATE_TEST_POSTGRES_URL`` points at another server.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from imagegate.db import Database
from imagegate.db.models import Base

ADMIN_URL = os.environ.get(
    "IMAGEGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ("sqlite", "postgresql")
_SCRATCH = pytest.StashKey[str]()  # the session's PostgreSQL URL, or why there is none
_UNAVAILABLE = "unavailable: "


async def _admin(statement: str) -> None:
    url = make_url(ADMIN_URL).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5})
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _create_scratch_postgres(config: pytest.Config) -> str:
    name = f"imagegate_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # whatever the failure, there is no PostgreSQL to test on
        return f"{_UNAVAILABLE}{ADMIN_URL}: {exc.__class__.__name__}: {exc}"
    config.add_cleanup(lambda: asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)')))
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def postgres_url(config: pytest.Config) -> str:
    """The session's scratch PostgreSQL database, created on first use."""
    if _SCRATCH not in config.stash:
        config.stash[_SCRATCH] = _create_scratch_postgres(config)
    url = config.stash[_SCRATCH]
    if url.startswith(_UNAVAILABLE):
        message = f"PostgreSQL is {url}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'imagegate.db'}"
    return postgres_url(request.config)


async def empty_tables(database: Database) -> None:
    """Delete every row, children first: PostgreSQL's database is shared by the session."""
    async with database.write() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(delete(table))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database on the backend under test."""
    db = Database(database_url)
    await db.migrate()
    await empty_tables(db)
    try:
        yield db
    finally:
        await db.dispose()
