"""Constraints of the hosted-repository tables, enforced by the database on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, delete, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from imagegate.db import Database
from imagegate.db.database import MIGRATIONS_DIR, SCHEMA_REVISION
from imagegate.db.models import (
    AccessToken,
    AccountName,
    AllowlistEntry,
    Organization,
    Repository,
    Team,
    TeamPermission,
    User,
)
from imagegate.services.common import utcnow


async def _org_and_team(database: Database) -> tuple[int, int]:
    now = utcnow()
    async with database.write() as conn:
        await conn.execute(insert(AccountName).values(name="acme", kind="organization"))
        org = await conn.scalar(
            insert(Organization)
            .values(name="acme", created_at=now, updated_at=now)
            .returning(Organization.id)
        )
        team = await conn.scalar(
            insert(Team).values(org_id=org, name="devs", created_at=now).returning(Team.id)
        )
    assert org is not None and team is not None
    return org, team


async def _fails(database: Database, model: Any, **values: Any) -> None:
    with pytest.raises(IntegrityError):
        async with database.write() as conn:
            await conn.execute(insert(model).values(**values))


async def test_a_repository_is_private_by_default_and_unique_per_organization(
    database: Database,
) -> None:
    org, _ = await _org_and_team(database)
    async with database.write() as conn:
        await conn.execute(insert(Repository).values(org_id=org, name="app", created_at=utcnow()))
        assert await conn.scalar(select(Repository.visibility)) == "private"
    await _fails(database, Repository, org_id=org, name="app", created_at=utcnow())
    await _fails(
        database, Repository, org_id=org, name="b", visibility="hidden", created_at=utcnow()
    )


async def test_a_team_has_one_permission_per_repository_and_one_for_the_namespace(
    database: Database,
) -> None:
    _, team = await _org_and_team(database)
    now = utcnow()
    async with database.write() as conn:
        for repository in ("app", None):
            await conn.execute(
                insert(TeamPermission).values(
                    team_id=team, repository=repository, permission="read", updated_at=now
                )
            )
    for repository in ("app", None):
        await _fails(
            database,
            TeamPermission,
            team_id=team,
            repository=repository,
            permission="write",
            updated_at=now,
        )
    await _fails(
        database, TeamPermission, team_id=team, repository="x", permission="own", updated_at=now
    )


async def test_deleting_an_organization_removes_its_repositories_and_permissions(
    database: Database,
) -> None:
    org, team = await _org_and_team(database)
    now = utcnow()
    async with database.write() as conn:
        await conn.execute(insert(Repository).values(org_id=org, name="app", created_at=now))
        await conn.execute(
            insert(TeamPermission).values(team_id=team, permission="admin", updated_at=now)
        )
        await conn.execute(delete(AccountName).where(AccountName.name == "acme"))
    async with database.read() as conn:
        assert await conn.scalar(select(Repository.id)) is None
        assert await conn.scalar(select(TeamPermission.id)) is None


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_a_database_at_0001_upgrades_with_its_data(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        async with database.write() as conn:
            await conn.run_sync(_upgrade, "0001")
            await conn.execute(insert(AccountName).values(name="acme", kind="organization"))
            assert "repositories" not in await conn.run_sync(_tables)
        await database.migrate()
        async with database.read() as conn:
            revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            assert revision == SCHEMA_REVISION
            assert {"repositories", "team_permissions"} <= await conn.run_sync(_tables)
            assert await conn.scalar(select(AccountName.name)) == "acme"
    finally:
        await database.dispose()


async def test_a_database_at_0002_upgrades_its_tokens_and_users(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        async with database.write() as conn:
            await conn.run_sync(_upgrade, "0002")
            await conn.execute(insert(AccountName).values(name="alice", kind="user"))
            await conn.execute(
                text(
                    "INSERT INTO users (id, name, password_hash, created_at) "
                    "VALUES (1, 'alice', 'x', '2026-01-01 00:00:00.000000')"
                )
            )
            for token_id in (1, 2):
                await conn.execute(
                    text(
                        "INSERT INTO access_tokens (id, user_id, token_hash, created_at) "
                        "VALUES (:id, 1, :hash, '2026-01-01 00:00:00.000000')"
                    ),
                    {"id": token_id, "hash": str(token_id) * 64},
                )
        await database.migrate()
        async with database.read() as conn:
            rows = (await conn.execute(select(AccessToken.uuid, AccessToken.scopes))).all()
            assert len({uuid for uuid, _ in rows}) == 2
            assert all(len(uuid) == 36 and scopes == "repo:write" for uuid, scopes in rows)
            assert await conn.scalar(select(User.is_admin)) is False
    finally:
        await database.dispose()


async def test_allowlist_entries_are_unique_and_go_with_their_organization(
    database: Database,
) -> None:
    org, _ = await _org_and_team(database)
    async with database.write() as conn:
        await conn.execute(
            insert(AllowlistEntry).values(org_id=org, repository="a/b", created_at=utcnow())
        )
    await _fails(database, AllowlistEntry, org_id=org, repository="a/b", created_at=utcnow())
    async with database.write() as conn:
        await conn.execute(delete(Organization))
        assert await conn.scalar(select(AllowlistEntry.repository)) is None


async def test_a_database_at_0004_upgrades_its_organizations(tmp_path: Path) -> None:
    """Existing organizations keep their settings and mirror no upstream namespace."""
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        async with database.write() as conn:
            await conn.run_sync(_upgrade, "0004")
            await conn.execute(insert(AccountName).values(name="acme", kind="organization"))
            await conn.execute(
                text(
                    "INSERT INTO organizations (name, image_access_enabled, created_at, "
                    "updated_at) VALUES ('acme', 1, '2026-01-01 00:00:00.000000', "
                    "'2026-01-01 00:00:00.000000')"
                )
            )
        await database.migrate()
        async with database.read() as conn:
            row = (
                await conn.execute(
                    select(Organization.image_access_enabled, Organization.upstream_namespace)
                )
            ).one()
            assert tuple(row) == (True, None)
    finally:
        await database.dispose()
