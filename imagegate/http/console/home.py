"""The console's front pages: your organizations, and one organization's home."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.core.authorization import ANYONE, Who, reads
from imagegate.core.policy import ImageAccessSettings
from imagegate.http.console.pages import Console, Org, Visit
from imagegate.services.orgs import OWNERS_TEAM


@dataclass(frozen=True)
class Action:
    """Something an owner should look at, and where to fix it."""

    text: str
    href: str
    link: str


def pending_actions(org: Org, settings: ImageAccessSettings) -> list[Action]:
    """What an owner of ``org`` should do next; members see the same list, read-only."""
    access = f"/console/orgs/{org.name}/image-access"
    people = f"/console/orgs/{org.name}/members"
    actions = []
    if not settings.enabled:
        actions.append(
            Action(
                "Image access is disabled: members can pull any image, including community images.",
                access,
                "Review image access",
            )
        )
    elif settings.allow_community:
        actions.append(
            Action(
                "Community images are allowed: members can pull images from any publisher.",
                access,
                "Review image access",
            )
        )
    owners = [m for m in org.members if m.is_owner]
    if len(owners) == 1:
        actions.append(
            Action(
                f"{owners[0].username} is the only owner: add a second owner so the "
                "organization is never left without one.",
                people,
                "Manage members",
            )
        )
    in_team = {team for m in org.members for team in m.teams}
    for team in org.teams:
        if team not in in_team and team != OWNERS_TEAM:
            actions.append(Action(f"Team {team} has no members.", people, "Manage teams"))
    return actions


class Home:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def root(self, visit: Visit) -> Response:
        return self.console.redirect("/console/")

    async def dashboard(self, visit: Visit) -> Response:
        requester = await self.console.services.access.requester(visit.username)
        return self.console.render(visit, "dashboard.html", memberships=requester.memberships)

    async def org_home(self, visit: Visit) -> Response:
        org = visit.org
        settings = await self.console.services.access.get_settings(org.name)
        team_members = {
            team: [m.username for m in org.members if team in m.teams] for team in org.teams
        }
        return self.console.render(
            visit,
            "org_home.html",
            tab="home",
            settings=settings,
            team_members=team_members,
            actions=pending_actions(org, settings),
        )

    def routes(self) -> list[BaseRoute]:
        page = self.console.page
        return [
            Route("/", page(self.root, ANYONE), methods=["GET"]),
            Route("/console", page(self.root, ANYONE), methods=["GET"]),
            Route("/console/", page(self.dashboard, reads(Who.USER)), methods=["GET"]),
            Route("/console/orgs/{org}", page(self.org_home, reads(Who.MEMBER)), methods=["GET"]),
        ]
