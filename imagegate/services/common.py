"""Small pieces every service shares: the clock and lookups of names inside a transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from imagegate.core.names import validate_account_name, validate_team_name
from imagegate.db.models import AccountName, Organization, User
from imagegate.services.errors import AlreadyExists, InvalidInput, NotFound

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def account_name(name: str, kind: str) -> str:
    """Validate a user or organization name, turning the rule broken into InvalidInput."""
    try:
        return validate_account_name(name, kind)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def team_name(name: str) -> str:
    try:
        return validate_team_name(name)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


async def user_id(conn: AsyncConnection, name: str) -> int:
    found = await conn.scalar(select(User.id).where(User.name == name))
    if found is None:
        raise NotFound(f"user {name!r} does not exist")
    return found


async def org_id(conn: AsyncConnection, name: str, *, lock: bool = False) -> int:
    """The organization's id; ``lock`` holds its row until the transaction ends.

    Locking the organization row serializes changes that read before they write
    (PostgreSQL; SQLite's write transactions are serialized anyway).
    """
    query = select(Organization.id).where(Organization.name == name)
    found = await conn.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound(f"organization {name!r} does not exist")
    return found


async def claim_account_name(conn: AsyncConnection, name: str, kind: str) -> None:
    """Reserve ``name`` for a new user or organization: both share one namespace."""
    taken_by = await conn.scalar(select(AccountName.kind).where(AccountName.name == name))
    if taken_by is not None:
        article = "an" if taken_by.startswith("o") else "a"
        raise AlreadyExists(f"the name {name!r} is already taken by {article} {taken_by}")
    await conn.execute(insert(AccountName).values(name=name, kind=kind))
