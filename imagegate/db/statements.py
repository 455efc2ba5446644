"""Dialect-specific statements that both backends support with the same meaning.

``INSERT ... ON CONFLICT`` is how services add a row "unless it is already there" or
"replace it" in one atomic statement instead of a racy read-then-write; SQLAlchemy
spells it per dialect, so this module picks the spelling from the connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute

from imagegate.db.models import Base


def _insert(conn: AsyncConnection, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(model)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"unsupported database dialect {conn.dialect.name!r}")


def insert_unless_present(
    conn: AsyncConnection,
    model: type[Base],
    values: Mapping[str, Any],
    conflict_on: Sequence[InstrumentedAttribute[Any]],
) -> Insert:
    """``INSERT`` that silently does nothing when ``conflict_on`` already matches a row."""
    return _insert(conn, model).values(values).on_conflict_do_nothing(index_elements=conflict_on)


def insert_or_replace(
    conn: AsyncConnection,
    model: type[Base],
    values: Mapping[str, Any],
    conflict_on: Sequence[InstrumentedAttribute[Any]],
) -> Insert:
    """``INSERT`` that overwrites the other columns of a row matching ``conflict_on``."""
    keys = {column.key for column in conflict_on}
    statement = _insert(conn, model).values(values)
    changes = {name: statement.excluded[name] for name in values if name not in keys}
    return statement.on_conflict_do_update(index_elements=conflict_on, set_=changes)
