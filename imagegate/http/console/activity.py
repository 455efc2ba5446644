"""The Activity page: an organization's audit trail, filtered, with pictures of its pulls.

Owners only, as Docker Hub shows activity only to owners: the trail names members'
pulls and the organization's changes. Filters are GET parameters, so a filtered view is
a link to share. The charts follow the user, repository and time filters but not the
decision and action ones: they are about pulls, and show both decisions side by side.
Everything reads one window, the chart's aligned buckets (``charts.Timeline``), so the
oldest bar's events are in the table too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.audit.events import ACTIONS, ALLOWED, DENIED, GROUPS, AuditEvent, utcnow
from imagegate.core.authorization import Who, reads
from imagegate.core.inputs import whole_number
from imagegate.http.console.charts import (
    DEFAULT_TIMELINE,
    TIMELINES,
    pull_chart,
    ranking_chart,
)
from imagegate.http.console.pages import Console, Visit
from imagegate.services import InvalidInput
from imagegate.services.audit import AuditQuery

PAGE_SIZE = 50
MAX_PAGE = 10_000
MOST_DENIED = 10
MAX_FIELD = 255
DECISIONS = {ALLOWED: "Allowed", DENIED: "Denied"}


@dataclass(frozen=True)
class Filters:
    """The page's GET parameters, checked; empty strings are "any"."""

    user: str = ""
    repository: str = ""
    decision: str = ""
    action: str = ""
    since: str = DEFAULT_TIMELINE
    page: int = 1

    @classmethod
    def parse(cls, visit: Visit) -> tuple[Filters, str | None]:
        """The filters in the URL, and what was wrong with them (ignored, then)."""
        problems = []
        decision = visit.query("decision")
        if decision and decision not in DECISIONS:
            problems.append("Decision is allowed or denied.")
            decision = ""
        action = visit.query("action")
        if action and action not in GROUPS:
            problems.append("Choose an action group from the list.")
            action = ""
        since = visit.query("since") or DEFAULT_TIMELINE
        if since not in TIMELINES:
            problems.append("Choose a time window from the list.")
            since = DEFAULT_TIMELINE
        number = whole_number(visit.query("page"), 5) or 1
        filters = cls(
            user=visit.query("user")[:MAX_FIELD],
            repository=visit.query("repository")[:MAX_FIELD],
            decision=decision,
            action=action,
            since=since,
            page=min(max(number, 1), MAX_PAGE),
        )
        return filters, " ".join(problems) or None

    def url(self, org: str, **changes: str | int) -> str:
        """This view's address with ``changes``, leaving out filters that are "any"."""
        values = {**self.__dict__, **changes}
        params = {key: value for key, value in values.items() if value not in ("", 1)}
        return f"/console/orgs/{org}/activity" + (f"?{urlencode(params)}" if params else "")

    def query(self, org: str, now: dt.datetime) -> AuditQuery:
        """The audit query of these filters; ``InvalidInput`` for a bad repository name."""
        since, until = TIMELINES[self.since].bounds(now)
        return AuditQuery(
            org=org,
            own_only=True,  # a member's pulls for another organization are not ours to show
            user=self.user or None,
            repository=self.repository or None,
            decision=self.decision or None,
            action=self.action or None,
            since=since,
            until=until,
        )


@dataclass(frozen=True)
class Row:
    """One event as the table shows it."""

    when: str
    iso: str
    who: str
    action: str
    decision: str | None
    target: str
    reason: str
    client_ip: str


def row(event: AuditEvent) -> Row:
    action = ACTIONS.get(event.action)
    return Row(
        when=f"{event.timestamp.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}",
        iso=event.timestamp.astimezone(dt.UTC).isoformat(),
        who=event.actor or "anonymous",
        action=action.label if action is not None else event.action,
        decision=event.decision if event.decision in DECISIONS else None,
        target=event.subject,
        reason=event.reason or "",
        client_ip=event.client_ip or "",
    )


class Activity:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def page(self, visit: Visit) -> Response:
        org = visit.org
        filters, error = Filters.parse(visit)
        timeline = TIMELINES[filters.since]
        now = utcnow()
        audit = self.console.services.audit
        try:
            query = filters.query(org.name, now)
        except InvalidInput as exc:
            filters = replace(filters, repository="")
            query = filters.query(org.name, now)
            error = " ".join(filter(None, (error, f"Bad repository name: {exc}.")))
        events = await audit.query(
            replace(query, limit=PAGE_SIZE + 1, offset=(filters.page - 1) * PAGE_SIZE),
            newest_first=True,
        )
        pulls = replace(query, decision=None, action=None)
        buckets = await audit.pull_activity(pulls, buckets=timeline.count)
        ranked = await audit.most_denied(pulls, limit=MOST_DENIED)
        since, until = timeline.bounds(now)
        return self.console.render(
            visit,
            "activity.html",
            status=400 if error else 200,
            error=error,
            tab="activity",
            filters=filters,
            timelines=TIMELINES.values(),
            groups=GROUPS,
            decisions=DECISIONS,
            window=f"{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC",
            pulls=pull_chart(timeline, buckets),
            ranking=ranking_chart(ranked),
            ranking_links=[
                filters.url(org.name, repository=name, decision=DENIED, page=1)
                for name, _ in ranked
            ],
            rows=[row(event) for event in events[:PAGE_SIZE]],
            first=(filters.page - 1) * PAGE_SIZE + 1,
            newer=filters.url(org.name, page=filters.page - 1) if filters.page > 1 else None,
            older=filters.url(org.name, page=filters.page + 1) if len(events) > PAGE_SIZE else None,
        )

    def routes(self) -> list[BaseRoute]:
        return [
            Route(
                "/console/orgs/{org}/activity",
                self.console.page(self.page, reads(Who.OWNER)),
                methods=["GET"],
            )
        ]
