"""Members and teams: everyone in the organization sees them; owners change them."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.core.authorization import Who, reads, writes
from imagegate.http.console.pages import Console, Visit
from imagegate.services import AlreadyExists, InvalidInput, NotFound, ServiceError
from imagegate.services.orgs import MEMBERS_TEAM

_MAX_NAME = 64

_NOTICES = {
    "member-added": "Member added.",
    "member-present": "That user was already in that team.",
    "member-removed": "Member removed from the organization.",
    "team-added": "Team created.",
    "team-member-added": "Added to the team.",
    "team-member-removed": "Removed from the team.",
}


def _sentence(exc: ServiceError) -> str:
    text = str(exc)
    if isinstance(exc, NotFound) and text.startswith("user "):
        text = f"unknown user: {text}"
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


class Members:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.orgs = console.services.orgs

    def _url(self, visit: Visit, done: str) -> str:
        return f"/console/orgs/{visit.org.name}/members?done={done}"

    async def show(self, visit: Visit, *, status: int = 200, **context: Any) -> Response:
        org = visit.org
        context.setdefault("notice", _NOTICES.get(visit.query("done")))
        team_members = {
            team: [m.username for m in org.members if team in m.teams] for team in org.teams
        }
        return self.console.render(
            visit,
            "members.html",
            status=status,
            tab="members",
            team_members=team_members,
            default_team=MEMBERS_TEAM,
            **context,
        )

    async def page(self, visit: Visit) -> Response:
        return await self.show(visit)

    async def _change(self, visit: Visit, done: str, change: Any) -> Response:
        """Run one service call; a refusal re-renders the page with its message."""
        try:
            result = await change
        except (AlreadyExists, InvalidInput, NotFound) as exc:
            return await self.show(visit, status=400, error=_sentence(exc))
        if result is False and done == "member-added":
            done = "member-present"
        return self.console.redirect(self._url(visit, done))

    async def add_member(self, visit: Visit) -> Response:
        user = visit.field("username").lower()
        team = visit.field("team") or MEMBERS_TEAM
        if not user or len(user) > _MAX_NAME:
            return await self.show(
                visit, status=400, error="Enter the username of an existing user."
            )
        if team not in visit.org.teams and team != MEMBERS_TEAM:
            return await self.show(
                visit, status=400, error=f"There is no team {team[:_MAX_NAME]!r}."
            )
        return await self._change(
            visit, "member-added", self.orgs.add_member(visit.org.name, user, team)
        )

    async def remove_member(self, visit: Visit) -> Response:
        user = visit.field("username")
        response = await self._change(
            visit, "member-removed", self.orgs.remove_member(visit.org.name, user)
        )
        if user == visit.username and response.status_code == 303:
            return self.console.redirect("/console/")  # you left: the page is no longer yours
        return response

    async def add_team(self, visit: Visit) -> Response:
        team = visit.field("team")
        if not team or len(team) > _MAX_NAME:
            return await self.show(visit, status=400, error="Enter a team name.")
        return await self._change(visit, "team-added", self.orgs.add_team(visit.org.name, team))

    async def add_team_member(self, visit: Visit) -> Response:
        team = str(visit.request.path_params["team"])
        user = visit.field("username").lower()
        if team not in visit.org.teams:
            return await self.show(visit, status=404, error=f"There is no team {team!r}.")
        if not user or len(user) > _MAX_NAME:
            return await self.show(
                visit, status=400, error="Enter the username of an existing user."
            )
        return await self._change(
            visit, "team-member-added", self.orgs.add_member(visit.org.name, user, team)
        )

    async def remove_team_member(self, visit: Visit) -> Response:
        team = str(visit.request.path_params["team"])
        user = visit.field("username")
        member = next((m for m in visit.org.members if m.username == user), None)
        if member is None or team not in member.teams:
            return await self.show(
                visit, status=400, error=f"{user[:_MAX_NAME]!r} is not in team {team!r}."
            )
        return await self._change(
            visit,
            "team-member-removed",
            self.orgs.remove_team_member(visit.org.name, team, user),
        )

    def routes(self) -> list[BaseRoute]:
        page = self.console.page
        base = "/console/orgs/{org}"
        return [
            Route(f"{base}/members", page(self.page, reads(Who.MEMBER)), methods=["GET"]),
            Route(
                f"{base}/members/add", page(self.add_member, writes(Who.OWNER)), methods=["POST"]
            ),
            Route(
                f"{base}/members/remove",
                page(self.remove_member, writes(Who.OWNER)),
                methods=["POST"],
            ),
            Route(f"{base}/teams/add", page(self.add_team, writes(Who.OWNER)), methods=["POST"]),
            Route(
                f"{base}/teams/{{team}}/members/add",
                page(self.add_team_member, writes(Who.OWNER)),
                methods=["POST"],
            ),
            Route(
                f"{base}/teams/{{team}}/members/remove",
                page(self.remove_team_member, writes(Who.OWNER)),
                methods=["POST"],
            ),
        ]
