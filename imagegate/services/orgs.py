"""Organizations, their teams and members.

As on Docker Hub, an organization's namespace is its name, its members are grouped in
teams, and the ``owners`` team is special: owners manage the organization and are not
bound by its image access policy. Every organization keeps at least one owner.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from imagegate.db import Database
from imagegate.db.models import Organization, Team, TeamMember, TeamPermission, User
from imagegate.db.statements import insert_unless_present
from imagegate.services.audit_changes import record
from imagegate.services.common import (
    Clock,
    account_name,
    claim_account_name,
    org_id,
    team_name,
    user_id,
    utcnow,
)
from imagegate.services.errors import AlreadyExists, InvalidInput, NotFound

OWNERS_TEAM = "owners"
MEMBERS_TEAM = "members"


@dataclass(frozen=True)
class OrgInfo:
    name: str
    created_at: dt.datetime


@dataclass(frozen=True)
class MemberInfo:
    username: str
    teams: tuple[str, ...]

    @property
    def is_owner(self) -> bool:
        return OWNERS_TEAM in self.teams


# --- what the management API and the console need: members with roles, teams ----------

ROLES = ("owner", "member")
T = TypeVar("T")
MAX_TEAM_DESCRIPTION = 255


@dataclass(frozen=True)
class MemberDetail:
    """A member as the API shows one: ``role`` is ``owner`` or ``member``."""

    username: str
    email: str | None
    date_joined: dt.datetime  # when the user was created (Hub: the account's date)
    teams: tuple[str, ...]

    @property
    def role(self) -> str:
        return "owner" if OWNERS_TEAM in self.teams else "member"


@dataclass(frozen=True)
class TeamInfo:
    id: int
    name: str
    description: str
    member_count: int


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a longer list: ``count`` is the length of the whole list."""

    count: int
    items: list[T]


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _team_id(conn: AsyncConnection, the_org_id: int, org: str, team: str) -> int:
    found = await conn.scalar(select(Team.id).where(Team.org_id == the_org_id, Team.name == team))
    if found is None:
        raise NotFound(f"team {team!r} not found in organization {org!r}")
    return found


async def _team_info(conn: AsyncConnection, team_id: int) -> TeamInfo:
    row = (
        await conn.execute(
            select(
                Team.id,
                Team.name,
                Team.description,
                select(func.count())
                .where(TeamMember.team_id == Team.id)
                .scalar_subquery()
                .label("member_count"),
            ).where(Team.id == team_id)
        )
    ).one()
    return TeamInfo(row.id, row.name, row.description, int(row.member_count))


def _team_state(team: str, description: str) -> dict[str, Any]:
    return {"team": team, "description": description}


def _membership(teams: Sequence[str]) -> dict[str, Any]:
    """A user's place in an organization as the audit trail shows it (role ``None``: not
    a member)."""
    role = None if not teams else "owner" if OWNERS_TEAM in teams else "member"
    return {"role": role, "teams": sorted(teams)}


async def _teams_of(conn: AsyncConnection, the_org_id: int, the_user_id: int) -> list[str]:
    names = await conn.scalars(
        select(Team.name)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(Team.org_id == the_org_id, TeamMember.user_id == the_user_id)
    )
    return sorted(names)


async def _record_membership(
    conn: AsyncConnection, org: str, user: str, before: Sequence[str], after: Sequence[str]
) -> None:
    """Record a change of ``user``'s teams: joining or leaving the organization when they
    were in no team before or are in none after, else joining or leaving one team."""
    if not before:
        action = "org.member.add"
    elif not after:
        action = "org.member.remove"
    elif len(after) > len(before):
        action = "org.team.member.add"
    else:
        action = "org.team.member.remove"
    await record(
        conn, action, account=org, name=user, before=_membership(before), after=_membership(after)
    )


async def _create_team(
    conn: AsyncConnection,
    org: str,
    the_org_id: int,
    team: str,
    now: dt.datetime,
    description: str = "",
) -> int | None:
    """Create and record ``team``; ``None`` when it exists (concurrent calls agree)."""
    added = await conn.scalar(
        insert_unless_present(
            conn,
            Team,
            {"org_id": the_org_id, "name": team, "description": description, "created_at": now},
            [Team.org_id, Team.name],
        ).returning(Team.id)
    )
    if added is not None:
        after = _team_state(team, description)
        await record(conn, "org.team.create", account=org, name=team, before=None, after=after)
    return added


async def _ensure_team(
    conn: AsyncConnection, org: str, the_org_id: int, team: str, now: dt.datetime
) -> int:
    """The team's id, creating it unless it is there."""
    created = await _create_team(conn, org, the_org_id, team, now)
    return created if created is not None else await _team_id(conn, the_org_id, org, team)


async def _join_team(
    conn: AsyncConnection,
    org: str,
    the_org_id: int,
    team: str,
    user: str,
    now: dt.datetime,
) -> bool:
    """Put the user in the (existing) team and record it; False when they already were."""
    the_team_id = await _team_id(conn, the_org_id, org, team)
    the_user_id = await user_id(conn, user)
    before = await _teams_of(conn, the_org_id, the_user_id)
    added = await conn.execute(
        insert_unless_present(
            conn,
            TeamMember,
            {"team_id": the_team_id, "user_id": the_user_id, "created_at": now},
            [TeamMember.team_id, TeamMember.user_id],
        ).returning(TeamMember.user_id)
    )
    if added.first() is None:
        return False
    await _record_membership(conn, org, user, before, [*before, team])
    return True


async def _refuse_last_owner(
    conn: AsyncConnection, owners_team: int, org: str, user: str, hint: str = ""
) -> None:
    """``InvalidInput`` when the owners team has one member left: ``user`` may not leave it."""
    owners = await conn.scalar(select(func.count()).where(TeamMember.team_id == owners_team))
    if owners == 1:
        raise InvalidInput(
            f"user {user!r} is the last owner of organization {org!r}; "
            f"make someone else an owner first{hint}"
        )


async def _details(
    conn: AsyncConnection, the_org_id: int, users: list[tuple[str, str | None, dt.datetime]]
) -> list[MemberDetail]:
    names = [name for name, _, _ in users]
    teams: defaultdict[str, list[str]] = defaultdict(list)
    if names:
        rows = await conn.execute(
            select(User.name, Team.name.label("team"))
            .select_from(TeamMember)
            .join(Team, TeamMember.team_id == Team.id)
            .join(User, TeamMember.user_id == User.id)
            .where(Team.org_id == the_org_id, User.name.in_(names))
            .order_by(User.name, Team.name)
        )
        for row in rows:
            teams[row.name].append(row.team)
    return [MemberDetail(name, email, joined, tuple(teams[name])) for name, email, joined in users]


class _Management:
    """Members with roles and teams with descriptions, for ``OrganizationService``."""

    _db: Database
    _clock: Clock

    async def list_members(
        self,
        org: str,
        *,
        search: str = "",
        team: str | None = None,
        role: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Page[MemberDetail]:
        """Members of ``org`` (or of its ``team``) sorted by name, with their teams.

        ``search`` matches part of the username or email, case-insensitively; ``role``
        keeps only owners or only plain members.
        """
        async with self._db.read() as conn:
            the_org_id = await org_id(conn, org)
            in_scope = select(TeamMember.user_id).join(Team, TeamMember.team_id == Team.id)
            in_scope = in_scope.where(Team.org_id == the_org_id)
            if team is not None:
                in_scope = in_scope.where(Team.id == await _team_id(conn, the_org_id, org, team))
            owners = (
                select(TeamMember.user_id)
                .join(Team, TeamMember.team_id == Team.id)
                .where(Team.org_id == the_org_id, Team.name == OWNERS_TEAM)
            )
            query = select(User.name, User.email, User.created_at).where(User.id.in_(in_scope))
            if search:
                pattern = f"%{_escape_like(search.lower())}%"
                query = query.where(
                    or_(
                        func.lower(User.name).like(pattern, escape="\\"),
                        func.lower(func.coalesce(User.email, "")).like(pattern, escape="\\"),
                    )
                )
            if role == "owner":
                query = query.where(User.id.in_(owners))
            elif role == "member":
                query = query.where(User.id.not_in(owners))
            elif role is not None:
                raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
            count = await conn.scalar(select(func.count()).select_from(query.subquery()))
            query = query.order_by(User.name).offset(offset)
            if limit is not None:
                query = query.limit(limit)
            users = [(r.name, r.email, r.created_at) for r in await conn.execute(query)]
            return Page(int(count or 0), await _details(conn, the_org_id, users))

    async def get_member(self, org: str, user: str) -> MemberDetail:
        async with self._db.read() as conn:
            return await self._member(conn, org, await org_id(conn, org), user)

    async def _member(
        self, conn: AsyncConnection, org: str, the_org_id: int, user: str
    ) -> MemberDetail:
        row = (
            await conn.execute(
                select(User.name, User.email, User.created_at).where(User.name == user)
            )
        ).first()
        users = [] if row is None else [(row.name, row.email, row.created_at)]
        details = await _details(conn, the_org_id, users)
        if not details or not details[0].teams:
            raise NotFound(f"user {user!r} not found in organization {org!r}")
        return details[0]

    async def set_role(self, org: str, user: str, role: str) -> MemberDetail:
        """Make a member an owner (into ``owners``) or a plain member (out of it, and into
        ``members`` if that leaves them in no team); the last owner stays one."""
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
        now = self._clock()
        async with self._db.write() as conn:
            the_org_id = await org_id(conn, org, lock=True)
            current = await self._member(conn, org, the_org_id, user)
            if current.role == role:
                return current
            the_user_id = await user_id(conn, user)
            owners_team = await _team_id(conn, the_org_id, org, OWNERS_TEAM)
            if role == "owner":
                await conn.execute(
                    insert(TeamMember).values(
                        team_id=owners_team, user_id=the_user_id, created_at=now
                    )
                )
            else:
                await _refuse_last_owner(conn, owners_team, org, user)
                await conn.execute(
                    delete(TeamMember).where(
                        TeamMember.team_id == owners_team, TeamMember.user_id == the_user_id
                    )
                )
                if current.teams == (OWNERS_TEAM,):  # keep them a member of the org
                    members_team = await _ensure_team(conn, org, the_org_id, MEMBERS_TEAM, now)
                    await conn.execute(
                        insert(TeamMember).values(
                            team_id=members_team, user_id=the_user_id, created_at=now
                        )
                    )
            changed = await self._member(conn, org, the_org_id, user)
            await record(
                conn,
                "org.member.role.change",
                account=org,
                name=user,
                before=_membership(current.teams),
                after=_membership(changed.teams),
            )
            return changed

    async def list_teams(
        self,
        org: str,
        *,
        search: str = "",
        username: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Page[TeamInfo]:
        """Teams of ``org`` sorted by name, with member counts; ``search`` matches part of
        the name, ``username`` keeps the teams that user is in."""
        async with self._db.read() as conn:
            the_org_id = await org_id(conn, org)
            query = select(Team.id).where(Team.org_id == the_org_id)
            if search:
                pattern = f"%{_escape_like(search.lower())}%"
                query = query.where(Team.name.like(pattern, escape="\\"))
            if username is not None:
                query = query.where(
                    Team.id.in_(
                        select(TeamMember.team_id)
                        .join(User, TeamMember.user_id == User.id)
                        .where(User.name == username)
                    )
                )
            count = await conn.scalar(select(func.count()).select_from(query.subquery()))
            query = query.order_by(Team.name).offset(offset)
            if limit is not None:
                query = query.limit(limit)
            ids = list(await conn.scalars(query))
            return Page(int(count or 0), [await _team_info(conn, i) for i in ids])

    async def get_team(self, org: str, team: str) -> TeamInfo:
        async with self._db.read() as conn:
            the_org_id = await org_id(conn, org)
            return await _team_info(conn, await _team_id(conn, the_org_id, org, team))

    async def create_team(self, org: str, team: str, description: str = "") -> TeamInfo:
        """A new, empty team (``AlreadyExists`` when the name is taken in ``org``)."""
        team_name(team)
        _check_description(description)
        async with self._db.write() as conn:
            the_org_id = await org_id(conn, org)
            added = await _create_team(conn, org, the_org_id, team, self._clock(), description)
            if added is None:
                raise AlreadyExists(f"team {team!r} already exists in organization {org!r}")
            return await _team_info(conn, added)

    async def update_team(
        self, org: str, team: str, *, name: str | None = None, description: str | None = None
    ) -> TeamInfo:
        """Rename a team or change its description; ``owners`` keeps its name."""
        if name is not None:
            team_name(name)
        if description is not None:
            _check_description(description)
        async with self._db.write() as conn:
            the_org_id = await org_id(conn, org)
            the_team_id = await _team_id(conn, the_org_id, org, team)
            old_description = await conn.scalar(
                select(Team.description).where(Team.id == the_team_id).with_for_update()
            )
            before = _team_state(team, old_description or "")
            changes: dict[str, str] = {}
            if name is not None and name != team:
                if OWNERS_TEAM in (team, name):
                    raise InvalidInput(f"the {OWNERS_TEAM!r} team cannot be renamed")
                taken = await conn.scalar(
                    select(Team.id).where(Team.org_id == the_org_id, Team.name == name)
                )
                if taken is not None:
                    raise AlreadyExists(f"team {name!r} already exists in organization {org!r}")
                changes["name"] = name
            if description is not None:
                changes["description"] = description
            after = _team_state(
                changes.get("name", team), changes.get("description", before["description"])
            )
            if after != before:
                try:
                    await conn.execute(update(Team).where(Team.id == the_team_id).values(**changes))
                except IntegrityError:
                    raise AlreadyExists(
                        f"team {name!r} already exists in organization {org!r}"
                    ) from None
                await record(
                    conn, "org.team.update", account=org, name=team, before=before, after=after
                )
            return await _team_info(conn, the_team_id)

    async def delete_team(self, org: str, team: str) -> None:
        """Delete a team, its memberships and its permissions; never ``owners``."""
        if team == OWNERS_TEAM:
            raise InvalidInput(f"the {OWNERS_TEAM!r} team cannot be deleted")
        async with self._db.write() as conn:
            # Locked, so each member's teams recorded as before and after are exact.
            the_org_id = await org_id(conn, org, lock=True)
            the_team_id = await _team_id(conn, the_org_id, org, team)
            # What goes with the team: its description, memberships and permissions.
            description = await conn.scalar(
                select(Team.description).where(Team.id == the_team_id).with_for_update()
            )
            members = (
                await conn.execute(
                    select(User.id, User.name)
                    .join(TeamMember, TeamMember.user_id == User.id)
                    .where(TeamMember.team_id == the_team_id)
                )
            ).all()
            teams_before = {name: await _teams_of(conn, the_org_id, uid) for uid, name in members}
            grants = await conn.execute(
                select(TeamPermission.repository, TeamPermission.permission).where(
                    TeamPermission.team_id == the_team_id
                )
            )
            before = {
                **_team_state(team, description or ""),
                "members": sorted(teams_before),
                "permissions": sorted(
                    ({"repository": r.repository, "permission": r.permission} for r in grants),
                    key=lambda grant: grant["repository"] or "",
                ),
            }
            await conn.execute(delete(Team).where(Team.id == the_team_id))
            await record(conn, "org.team.delete", account=org, name=team, before=before, after=None)
            # Each member's own trail shows it too, and who left the organization with it.
            for user, teams in sorted(teams_before.items()):
                after = [name for name in teams if name != team]
                await _record_membership(conn, org, user, teams, after)

    async def add_team_member(self, org: str, team: str, user: str) -> bool:
        """Put ``user`` in an existing team (making them a member of ``org``); False when
        they already were in it."""
        async with self._db.write() as conn:
            # Locked, so the teams recorded as before and after are exact under concurrency.
            the_org_id = await org_id(conn, org, lock=True)
            return await _join_team(conn, org, the_org_id, team, user, self._clock())

    async def remove_team_member(self, org: str, team: str, user: str) -> None:
        """Take ``user`` out of one team; ``NotFound`` if they are not in it. The last
        owner stays in ``owners``. Someone left in no team is no longer a member."""
        async with self._db.write() as conn:
            the_org_id = await org_id(conn, org, lock=True)
            the_team_id = await _team_id(conn, the_org_id, org, team)
            the_user_id = await user_id(conn, user)
            before = await _teams_of(conn, the_org_id, the_user_id)
            if team not in before:
                raise NotFound(f"user {user!r} not found in team {team!r} of {org!r}")
            if team == OWNERS_TEAM:
                await _refuse_last_owner(conn, the_team_id, org, user)
            await conn.execute(
                delete(TeamMember).where(
                    TeamMember.team_id == the_team_id, TeamMember.user_id == the_user_id
                )
            )
            after = [name for name in before if name != team]
            await _record_membership(conn, org, user, before, after)


def _check_description(description: str) -> None:
    if len(description) > MAX_TEAM_DESCRIPTION:
        raise InvalidInput(f"the description is longer than {MAX_TEAM_DESCRIPTION} characters")


class OrganizationService(_Management):
    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def add_org(self, name: str, owner: str) -> OrgInfo:
        """Create organization ``name`` (and its namespace) with ``owner`` in ``owners``."""
        account_name(name, "organization name")
        now = self._clock()
        try:
            async with self._db.write() as conn:
                owner_id = await user_id(conn, owner)
                await claim_account_name(conn, name, "organization")
                new_org_id = await conn.scalar(
                    insert(Organization)
                    .values(name=name, created_at=now, updated_at=now)
                    .returning(Organization.id)
                )
                team_id = await conn.scalar(
                    insert(Team)
                    .values(org_id=new_org_id, name=OWNERS_TEAM, created_at=now)
                    .returning(Team.id)
                )
                await conn.execute(
                    insert(TeamMember).values(team_id=team_id, user_id=owner_id, created_at=now)
                )
                after = {"owner": owner}
                await record(conn, "org.create", account=name, name=name, before=None, after=after)
        except IntegrityError:  # lost a race with another command creating the same name
            raise AlreadyExists(f"the name {name!r} is already taken") from None
        return OrgInfo(name, now)

    async def add_team(self, org: str, team: str) -> None:
        """Create an empty team in ``org`` (``AlreadyExists`` if it is there, ``owners``
        always is); give it permissions with ``RepositoryService.grant``."""
        team_name(team)
        async with self._db.write() as conn:
            the_org_id = await org_id(conn, org)
            if await _create_team(conn, org, the_org_id, team, self._clock()) is None:
                raise AlreadyExists(f"team {team!r} already exists in organization {org!r}")

    async def add_member(self, org: str, user: str, team: str = MEMBERS_TEAM) -> bool:
        """Put ``user`` in ``team`` of ``org``, creating the team if needed.

        Returns False when the user was already in that team (nothing changes). Both
        inserts are ``ON CONFLICT DO NOTHING``, so concurrent calls never collide.
        """
        team_name(team)
        now = self._clock()
        async with self._db.write() as conn:
            the_org_id = await org_id(conn, org, lock=True)  # exact before and after, as above
            await _ensure_team(conn, org, the_org_id, team, now)
            return await _join_team(conn, org, the_org_id, team, user, now)

    async def remove_member(self, org: str, user: str) -> tuple[str, ...]:
        """Take ``user`` out of every team of ``org``; returns the teams they were in.

        Refuses to remove the last owner. The organization row is locked first, so two
        owners removing each other at once cannot leave the organization ownerless.
        """
        async with self._db.write() as conn:
            the_org_id = await org_id(conn, org, lock=True)
            the_user_id = await user_id(conn, user)
            teams = (
                await conn.execute(
                    select(Team.id, Team.name)
                    .join(TeamMember, TeamMember.team_id == Team.id)
                    .where(Team.org_id == the_org_id, TeamMember.user_id == the_user_id)
                    .order_by(Team.name)
                )
            ).all()
            if not teams:
                raise NotFound(f"user {user!r} is not a member of organization {org!r}")
            owners_team = next((t.id for t in teams if t.name == OWNERS_TEAM), None)
            if owners_team is not None:
                hint = f" (imagegate org member add {org} USER --team {OWNERS_TEAM})"
                await _refuse_last_owner(conn, owners_team, org, user, hint)
            await conn.execute(
                delete(TeamMember).where(
                    TeamMember.user_id == the_user_id,
                    TeamMember.team_id.in_([t.id for t in teams]),
                )
            )
            names = tuple(t.name for t in teams)
            await _record_membership(conn, org, user, names, ())
            return names

    async def get_org(self, name: str) -> OrgInfo:
        async with self._db.read() as conn:
            created_at = await conn.scalar(
                select(Organization.created_at).where(Organization.name == name)
            )
        if created_at is None:
            raise NotFound(f"organization {name!r} does not exist")
        return OrgInfo(name, created_at)

    async def list_orgs(self) -> list[OrgInfo]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(Organization.name, Organization.created_at).order_by(Organization.name)
            )
            return [OrgInfo(r.name, r.created_at) for r in rows]

    async def members(self, org: str) -> list[MemberInfo]:
        """Every member of ``org`` with the teams they are in, sorted by name."""
        async with self._db.read() as conn:
            the_org_id = await org_id(conn, org)
            rows = await conn.execute(
                select(User.name, Team.name.label("team"))
                .select_from(TeamMember)
                .join(Team, TeamMember.team_id == Team.id)
                .join(User, TeamMember.user_id == User.id)
                .where(Team.org_id == the_org_id)
                .order_by(User.name, Team.name)
            )
            teams: defaultdict[str, list[str]] = defaultdict(list)
            for row in rows:
                teams[row.name].append(row.team)
        return [MemberInfo(name, tuple(names)) for name, names in teams.items()]

    async def teams(self, org: str) -> list[str]:
        async with self._db.read() as conn:
            the_org_id = await org_id(conn, org)
            names = await conn.scalars(
                select(Team.name).where(Team.org_id == the_org_id).order_by(Team.name)
            )
            return list(names)
