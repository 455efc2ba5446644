"""Queries more than one part of the gateway needs, built once."""

from __future__ import annotations

from sqlalchemy import select

from imagegate.db.models import Organization, Team, TeamMember, User

# Each (user, organization) a user belongs to through a team; narrow it with ``where``.
MEMBER_ORGANIZATIONS = (
    select(User.name, Organization.name)
    .distinct()
    .select_from(TeamMember)
    .join(User, TeamMember.user_id == User.id)
    .join(Team, TeamMember.team_id == Team.id)
    .join(Organization, Team.org_id == Organization.id)
)
