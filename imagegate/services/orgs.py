"""Organizations, their teams and members.

As on Docker Hub, an organization's namespace is its name, its members are grouped in
teams, and the ``owners`` team is special: owners manage the organization and are not
bound by its image access policy. Every organization keeps at least one owner.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from imagegate.db import Database
from imagegate.db.models import Organization, Team, TeamMember, User
from imagegate.db.statements import insert_unless_present
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


class OrganizationService:
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
        except IntegrityError:  # lost a race with another command creating the same name
            raise AlreadyExists(f"the name {name!r} is already taken") from None
        return OrgInfo(name, now)

    async def add_team(self, org: str, team: str) -> None:
        """Create an empty team in ``org`` (``AlreadyExists`` if it is there, ``owners``
        always is); give it permissions with ``RepositoryService.grant``."""
        team_name(team)
        async with self._db.write() as conn:
            the_org_id = await org_id(conn, org)
            added = await conn.execute(
                insert_unless_present(
                    conn,
                    Team,
                    {"org_id": the_org_id, "name": team, "created_at": self._clock()},
                    [Team.org_id, Team.name],
                ).returning(Team.id)
            )
            if added.first() is None:
                raise AlreadyExists(f"team {team!r} already exists in organization {org!r}")

    async def add_member(self, org: str, user: str, team: str = MEMBERS_TEAM) -> bool:
        """Put ``user`` in ``team`` of ``org``, creating the team if needed.

        Returns False when the user was already in that team (nothing changes). Both
        inserts are ``ON CONFLICT DO NOTHING``, so concurrent calls never collide.
        """
        team_name(team)
        now = self._clock()
        async with self._db.write() as conn:
            the_org_id = await org_id(conn, org)
            the_user_id = await user_id(conn, user)
            await conn.execute(
                insert_unless_present(
                    conn,
                    Team,
                    {"org_id": the_org_id, "name": team, "created_at": now},
                    [Team.org_id, Team.name],
                )
            )
            team_id = await conn.scalar(
                select(Team.id).where(Team.org_id == the_org_id, Team.name == team)
            )
            added = await conn.execute(
                insert_unless_present(
                    conn,
                    TeamMember,
                    {"team_id": team_id, "user_id": the_user_id, "created_at": now},
                    [TeamMember.team_id, TeamMember.user_id],
                ).returning(TeamMember.user_id)
            )
            return added.first() is not None

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
                owners = await conn.scalar(
                    select(func.count()).where(TeamMember.team_id == owners_team)
                )
                if owners == 1:
                    raise InvalidInput(
                        f"user {user!r} is the last owner of organization {org!r}; "
                        f"make someone else an owner first "
                        f"(imagegate org member add {org} USER --team {OWNERS_TEAM})"
                    )
            await conn.execute(
                delete(TeamMember).where(
                    TeamMember.user_id == the_user_id,
                    TeamMember.team_id.in_([t.id for t in teams]),
                )
            )
            return tuple(t.name for t in teams)

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
