"""Every database test runs on SQLite and on PostgreSQL (see ``fixtures``)."""

from tests.db.fixtures import database, database_url

__all__ = ["database", "database_url"]
