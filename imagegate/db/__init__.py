"""Persistence: the schema, its migrations and the transaction discipline.

``Database`` wraps one SQLAlchemy async engine for SQLite (aiosqlite) or PostgreSQL
(asyncpg) and hands services ``read()`` and ``write()`` transactions. ``models`` is the
schema; ``migrations`` (Alembic, shipped in the package) creates and upgrades it,
automatically, from ``Database.migrate()``. Nothing here knows about policies or names.
"""

from imagegate.db.database import Database, DatabaseError

__all__ = ["Database", "DatabaseError"]
