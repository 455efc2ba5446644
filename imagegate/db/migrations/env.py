"""Alembic environment: runs on the connection ``Database.migrate()`` hands over.

There is no alembic.ini and no URL here on purpose: the schema is migrated only by
imagegate itself, inside a transaction (and lock) it already holds.
"""

from __future__ import annotations

from alembic import context

from imagegate.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through imagegate.db.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only alter tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
