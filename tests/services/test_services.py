"""Opening and closing the services the composition root and the CLI use."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagegate.config import ConfigError, load_settings
from imagegate.db import Database, DatabaseError
from imagegate.services import close_services, open_services, running_services


async def test_open_services_migrates_the_default_sqlite_database(tmp_path: Path) -> None:
    settings = load_settings({"IMAGEGATE_DATA_DIR": str(tmp_path / "data")}, hub_api_url="")
    services = await open_services(settings)
    try:
        assert (tmp_path / "data" / "imagegate.db").exists()
        assert await services.database.ping()
        assert await services.orgs.list_orgs() == []
    finally:
        await close_services(services)


async def test_running_services_on_the_configured_database(
    database: Database, database_url: str
) -> None:
    """``database`` empties the (shared) PostgreSQL database first."""
    settings = load_settings({"IMAGEGATE_DATABASE_URL": database_url})
    async with running_services(settings) as services:
        await services.accounts.create_user("alice", None, "pw")
    async with running_services(settings) as services:  # the data outlives the process
        assert (await services.accounts.get_user("alice")).name == "alice"


async def test_an_unreachable_database_is_reported() -> None:
    settings = load_settings({"IMAGEGATE_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nothing"})
    with pytest.raises(DatabaseError, match="cannot prepare database"):
        await open_services(settings)


async def test_a_database_url_of_the_wrong_kind_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings({"IMAGEGATE_DATABASE_URL": "sqlite:///:memory:"})
    with pytest.raises(ConfigError):
        await open_services(settings)
