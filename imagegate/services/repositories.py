"""Hosted repositories of organizations, and the permissions teams have on them.

A repository is created by its first push, private by default; an owner makes it public
with ``set_visibility``. Teams get ``read``, ``write`` or ``admin`` on one repository (by
name, so a permission can be given before the first push) or on the whole namespace;
owners have ``admin`` everywhere. ``core.permissions`` holds the rules; this module
stores the facts and reads them back, one transaction per method. (``AccessService``
reads the same facts in the one snapshot of each access decision; a test checks that
both give the same permission.)
"""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from imagegate.core.errors import NameInvalid
from imagegate.core.names import RepositoryName, parse_repository
from imagegate.core.permissions import Permission, Visibility, effective_permission
from imagegate.db import Database
from imagegate.db.models import Organization, Repository, Team, TeamMember, TeamPermission, User
from imagegate.db.statements import insert_unless_present
from imagegate.services.audit_changes import record
from imagegate.services.common import Clock, utcnow
from imagegate.services.errors import InvalidInput, NotFound
from imagegate.services.orgs import OWNERS_TEAM

# Catalog order is byte order; PostgreSQL's default collation may be a locale's.
_BYTE_ORDER = {"postgresql": "C", "sqlite": "BINARY"}


@dataclass(frozen=True)
class RepositoryInfo:
    name: RepositoryName
    visibility: Visibility
    created_at: dt.datetime


@dataclass(frozen=True)
class GrantInfo:
    """A team's permission on ``repository`` (a path inside the namespace), or on the
    whole namespace when ``repository`` is ``None``."""

    team: str
    repository: str | None
    permission: Permission


def repository_path(org: str, path: str) -> str:
    """Check that ``path`` names a repository inside ``org``'s namespace (e.g. ``app``)."""
    try:
        parsed = parse_repository(f"{org}/{path}")
    except NameInvalid as exc:
        raise InvalidInput(exc.message) from None
    if parsed.path != path:  # e.g. a trailing or doubled '/'
        raise InvalidInput(f"invalid repository name {path!r} in organization {org!r}")
    return path


# Built once, for ``Database.snapshot`` (compiled once on SQLite): on every push.
_VISIBILITY = (
    select(Repository.visibility)
    .join(Organization, Repository.org_id == Organization.id)
    .where(Organization.name == bindparam("namespace"), Repository.name == bindparam("path"))
)


def _in_namespace(path: str | None) -> ColumnElement[bool]:
    """Grants that apply to ``path`` (or namespace-wide grants, for ``None``)."""
    if path is None:
        return TeamPermission.repository.is_(None)
    return or_(TeamPermission.repository == path, TeamPermission.repository.is_(None))


async def _permission(
    conn: AsyncConnection, username: str, repository: RepositoryName
) -> Permission:
    """``username``'s effective permission on ``repository`` (hosted yet or not): admin
    for owners, else the highest grant of their teams on it or its namespace."""
    rows = await conn.execute(
        select(Team.name, TeamPermission.permission)
        .select_from(TeamMember)
        .join(User, TeamMember.user_id == User.id)
        .join(Team, TeamMember.team_id == Team.id)
        .join(Organization, Team.org_id == Organization.id)
        .outerjoin(
            TeamPermission,
            and_(TeamPermission.team_id == Team.id, _in_namespace(repository.path)),
        )
        .where(User.name == username, Organization.name == repository.namespace)
    )
    is_owner = False
    grants: builtins.list[Permission] = []
    for team, permission in rows:
        is_owner = is_owner or team == OWNERS_TEAM
        if permission is not None:
            grants.append(Permission.parse(permission))
    return effective_permission(is_owner, grants)


async def _org_id(conn: AsyncConnection, org: str, purpose: str) -> int:
    found = await conn.scalar(select(Organization.id).where(Organization.name == org))
    if found is None:
        raise NotFound(f"{purpose}: organization {org!r} does not exist")
    return found


async def _team_id(conn: AsyncConnection, org: str, team: str) -> int:
    """The team's id, its row locked (PostgreSQL) so changes to its grants serialize."""
    the_org_id = await _org_id(conn, org, "cannot change team permissions")
    found = await conn.scalar(
        select(Team.id).where(Team.org_id == the_org_id, Team.name == team).with_for_update()
    )
    if found is None:
        raise NotFound(
            f"team {team!r} does not exist in organization {org!r}; "
            f"create it with `imagegate org team add {org} {team}`"
        )
    return found


def _scope(org: str, path: str | None) -> str:
    return f"every repository of {org}" if path is None else f"{org}/{path}"


async def _record_visibility(
    conn: AsyncConnection, repository: RepositoryName, before: str | None, after: str | None
) -> None:
    """Record a repository created (``before`` None), deleted (``after`` None) or made
    public or private."""
    if before is None:
        action = "repo.create"
    elif after is None:
        action = "repo.delete"
    else:
        action = "repo.change_privacy"
    await record(
        conn,
        action,
        account=repository.namespace,
        name=repository.full,
        before=None if before is None else {"visibility": before},
        after=None if after is None else {"visibility": after},
    )


def _grant(team: str, permission: Permission) -> dict[str, str] | None:
    """A team's permission as the audit trail shows it; ``None`` for no permission."""
    if permission is Permission.NONE:
        return None
    return {"team": team, "permission": permission.label}


async def _record_permission(
    conn: AsyncConnection,
    org: str,
    team: str,
    path: str | None,
    before: Permission,
    after: Permission,
) -> None:
    """Record a team's permission on ``org/path`` (``None``: the whole namespace) going
    from ``before`` to ``after``."""
    await record(
        conn,
        "repo.permission.remove" if after is Permission.NONE else "repo.permission.set",
        account=org,
        name=org if path is None else f"{org}/{path}",
        before=_grant(team, before),
        after=_grant(team, after),
    )


class RepositoryService:
    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def ensure(self, repository: RepositoryName) -> bool:
        """Create ``repository`` (private) unless it exists; True when this call created it.

        For the first push: the namespace must be an organization (``NotFound`` else).
        Checked with a read first, so pushes to an existing repository take no write
        lock; the insert is ``ON CONFLICT DO NOTHING``, so concurrent first pushes
        create it once.
        """
        if await self.get(repository) is not None:
            return False
        async with self._db.write() as conn:
            the_org_id = await _org_id(conn, repository.namespace, f"cannot create {repository}")
            created = await conn.execute(
                insert_unless_present(
                    conn,
                    Repository,
                    {"org_id": the_org_id, "name": repository.path, "created_at": self._clock()},
                    [Repository.org_id, Repository.name],
                ).returning(Repository.visibility)
            )
            visibility = created.scalar()
            if visibility is None:
                return False
            await _record_visibility(conn, repository, None, visibility)
            return True

    async def get(self, repository: RepositoryName) -> Visibility | None:
        """The repository's visibility; ``None`` when it is not hosted here."""
        where = {"namespace": repository.namespace, "path": repository.path}
        [rows] = await self._db.snapshot((_VISIBILITY, where))
        return Visibility(rows[0][0]) if rows else None

    async def set_visibility(self, repository: RepositoryName, visibility: Visibility) -> bool:
        """Make ``repository`` public or private, creating it if needed (True if created)."""
        async with self._db.write() as conn:
            the_org_id = await _org_id(
                conn, repository.namespace, f"cannot set the visibility of {repository}"
            )
            this = and_(Repository.org_id == the_org_id, Repository.name == repository.path)
            current = select(Repository.visibility).where(this).with_for_update()
            before = await conn.scalar(current)
            if before is None:
                values = {
                    "org_id": the_org_id,
                    "name": repository.path,
                    "visibility": visibility.value,
                    "created_at": self._clock(),
                }
                created = await conn.execute(
                    insert_unless_present(
                        conn, Repository, values, [Repository.org_id, Repository.name]
                    ).returning(Repository.id)
                )
                if created.first() is not None:
                    await _record_visibility(conn, repository, None, visibility.value)
                    return True
                before = await conn.scalar(current)  # a first push created it in between
            if before != visibility.value:
                await conn.execute(
                    update(Repository).where(this).values(visibility=visibility.value)
                )
                await _record_visibility(conn, repository, before, visibility.value)
            return False

    async def list(self, org: str) -> builtins.list[RepositoryInfo]:
        """The organization's hosted repositories, sorted by name."""
        async with self._db.read() as conn:
            the_org_id = await _org_id(conn, org, "cannot list repositories")
            rows = await conn.execute(
                select(Repository.name, Repository.visibility, Repository.created_at).where(
                    Repository.org_id == the_org_id
                )
            )
            found = [
                RepositoryInfo(RepositoryName(org, r.name), Visibility(r.visibility), r.created_at)
                for r in rows
            ]
        return sorted(found, key=lambda info: info.name.path)  # byte order, on every backend

    async def delete(self, repository: RepositoryName) -> bool:
        """Forget the repository (False if it was not hosted). Team permissions are kept:
        they are given by name, and apply again if the name is pushed to again."""
        async with self._db.write() as conn:
            org = select(Organization.id).where(Organization.name == repository.namespace)
            removed = await conn.execute(
                delete(Repository)
                .where(Repository.org_id == org.scalar_subquery())
                .where(Repository.name == repository.path)
                .returning(Repository.visibility)
            )
            visibility = removed.scalar()
            if visibility is None:
                return False
            await _record_visibility(conn, repository, visibility, None)
            return True

    async def grant(
        self, org: str, team: str, repository: str | None, permission: Permission
    ) -> Permission:
        """Give ``team`` ``permission`` on ``repository`` (a path inside ``org``'s
        namespace; ``None``: every repository), replacing what it had there.

        Returns the permission it had before (``Permission.NONE`` for none).
        """
        if permission is Permission.NONE:
            raise InvalidInput("invalid permission 'none': use read, write or admin")
        if repository is not None:
            repository_path(org, repository)
        if team == OWNERS_TEAM:
            raise InvalidInput(
                f"the {OWNERS_TEAM} team has admin permission on every repository of {org} already"
            )
        now = self._clock()
        async with self._db.write() as conn:
            the_team_id = await _team_id(conn, org, team)
            where = and_(
                TeamPermission.team_id == the_team_id,
                TeamPermission.repository.is_(None)
                if repository is None
                else TeamPermission.repository == repository,
            )
            before = await conn.scalar(select(TeamPermission.permission).where(where))
            if before is None:
                await conn.execute(
                    insert(TeamPermission).values(
                        team_id=the_team_id,
                        repository=repository,
                        permission=permission.label,
                        updated_at=now,
                    )
                )
            else:
                await conn.execute(
                    update(TeamPermission)
                    .where(where)
                    .values(permission=permission.label, updated_at=now)
                )
            previous = Permission.NONE if before is None else Permission.parse(before)
            if previous is not permission:
                await _record_permission(conn, org, team, repository, previous, permission)
            return previous

    async def revoke(self, org: str, team: str, repository: str | None) -> Permission:
        """Take away ``team``'s permission on ``repository`` (``None``: the namespace-wide
        one); returns the permission removed. ``NotFound`` when it had none there."""
        async with self._db.write() as conn:
            the_team_id = await _team_id(conn, org, team)
            removed = (
                await conn.execute(
                    delete(TeamPermission)
                    .where(
                        TeamPermission.team_id == the_team_id,
                        TeamPermission.repository.is_(None)
                        if repository is None
                        else TeamPermission.repository == repository,
                    )
                    .returning(TeamPermission.permission)
                )
            ).scalar()
            if removed is not None:
                await _record_permission(
                    conn, org, team, repository, Permission.parse(removed), Permission.NONE
                )
        if removed is None:
            raise NotFound(
                f"team {team!r} of {org!r} has no permission on {_scope(org, repository)}"
            )
        return Permission.parse(removed)

    async def list_grants(self, org: str) -> builtins.list[GrantInfo]:
        """Every permission given to a team of ``org``: by team, namespace-wide first."""
        async with self._db.read() as conn:
            the_org_id = await _org_id(conn, org, "cannot list team permissions")
            rows = await conn.execute(
                select(Team.name, TeamPermission.repository, TeamPermission.permission)
                .join(Team, TeamPermission.team_id == Team.id)
                .where(Team.org_id == the_org_id)
            )
            grants = [GrantInfo(r[0], r[1], Permission.parse(r[2])) for r in rows]
        return sorted(grants, key=lambda g: (g.team, g.repository is not None, g.repository))

    async def permission(self, username: str, repository: RepositoryName) -> Permission:
        """``username``'s effective permission on ``repository`` (hosted yet or not): admin
        for owners, else the highest grant of their teams on it or its namespace."""
        async with self._db.read() as conn:
            return await _permission(conn, username, repository)

    async def readable(
        self, username: str | None, n: int | None = None, last: str | None = None
    ) -> builtins.list[str]:
        """Full names of the hosted repositories ``username`` (``None``: anonymous) may
        read, in byte order, at most ``n`` of them, those after ``last``: for
        ``/v2/_catalog``. Public repositories, and private ones with read permission."""
        if n is not None and n <= 0:
            return []
        async with self._db.read() as conn:
            collation = _BYTE_ORDER[conn.dialect.name]
            full = Organization.name.concat("/").concat(Repository.name).collate(collation)
            readable: ColumnElement[bool] = Repository.visibility == Visibility.PUBLIC.value
            if username is not None:
                teams = (
                    select(literal(1))
                    .select_from(TeamMember)
                    .join(User, TeamMember.user_id == User.id)
                    .join(Team, TeamMember.team_id == Team.id)
                    .where(User.name == username, Team.org_id == Repository.org_id)
                )
                owner = teams.where(Team.name == OWNERS_TEAM).exists()
                granted = (
                    teams.join(TeamPermission, TeamPermission.team_id == Team.id)
                    .where(
                        or_(
                            TeamPermission.repository == Repository.name,
                            TeamPermission.repository.is_(None),
                        )
                    )
                    .exists()
                )
                readable = or_(readable, owner, granted)
            query = (
                select(full)
                .select_from(Repository)
                .join(Organization, Repository.org_id == Organization.id)
                .where(readable)
                .order_by(full)
            )
            if last is not None:
                query = query.where(full > last)
            if n is not None:
                query = query.limit(n)
            return builtins.list(await conn.scalars(query))
