from tests.db.fixtures import database, database_url

__all__ = ["database", "database_url"]
