"""Reading the audit trail: filtered queries, the pull-activity chart, the most denied.

Every reader (``imagegate audit``, Hub's ``/v2/auditlogs``, the console's Activity page)
filters through one ``AuditQuery``, so a filter means the same thing everywhere.

An organization's events are those whose ``account`` is the organization and those of
its members (the requester's organizations recorded at decision time), so an owner sees
what the members pulled. With ``own_only`` a member's event is left out when it belongs
to another organization, so one organization's owners never read another's repositories.

Pull charts count *pull decisions*: ``registry.pull`` events that are manifest requests
(``data.request == "manifest"``) or that name no request kind (a refusal at the token
endpoint). Blob fetches would otherwise multiply every allowed pull by its layer count
while a refusal counts once. ``data`` is JSON text written by ``AuditEvent.to_row`` with
sorted keys and default separators, so the match is a ``LIKE`` on that fixed form rather
than a JSON function, which SQLite and PostgreSQL spell differently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, not_, or_, select

from imagegate.audit.events import ACTIONS, ALLOWED, DENIED, PULL, AuditEvent, utcnow
from imagegate.core.errors import NameInvalid
from imagegate.core.names import parse_repository
from imagegate.db import Database
from imagegate.db.models import AuditRecord
from imagegate.services.errors import InvalidInput

DECISIONS = (ALLOWED, DENIED)
DEFAULT_WINDOW = dt.timedelta(hours=24)
MAX_BUCKETS = 1000


@dataclass(frozen=True)
class AuditQuery:
    """Which events to read; every filter left ``None`` matches everything.

    ``action`` is a full name (``registry.pull``) or a prefix of names (``org``,
    ``org.member``); ``since`` is inclusive and ``until`` exclusive; ``name`` is Hub's
    audit-log name (a repository, an organization or a username).
    """

    org: str | None = None
    user: str | None = None
    repository: str | None = None
    decision: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int | None = None
    offset: int = 0
    name: str | None = None
    own_only: bool = False

    def __post_init__(self) -> None:
        if self.repository is not None:
            try:
                canonical = parse_repository(self.repository).full
            except NameInvalid as exc:
                raise InvalidInput(exc.message) from None
            object.__setattr__(self, "repository", canonical)
        if self.decision is not None and self.decision not in DECISIONS:
            raise InvalidInput(f"decision must be allowed or denied, not {self.decision!r}")
        if self.action is not None and not _known_action(self.action):
            raise InvalidInput(
                f"unknown action {self.action!r}: use a name such as registry.pull or "
                "org.member.add, or a group such as registry, auth or org"
            )
        for bound in (self.since, self.until):
            if bound is not None and bound.tzinfo is None:
                raise InvalidInput("since and until must be timezone-aware")
        if (self.limit is not None and self.limit < 0) or self.offset < 0:
            raise InvalidInput("limit and offset must not be negative")


@dataclass(frozen=True)
class ActivityBucket:
    """Pull decisions from ``start`` (inclusive) to the next bucket's start."""

    start: dt.datetime
    allowed: int
    denied: int


def _known_action(action: str) -> bool:
    return any(full == action or full.startswith(f"{action}.") for full in ACTIONS)


def _conditions(q: AuditQuery) -> list[ColumnElement[bool]]:
    record = AuditRecord
    where: list[ColumnElement[bool]] = []
    if q.org is not None:
        member = record.orgs.contains(f",{q.org},", autoescape=True)
        if q.own_only:
            member = and_(member, or_(record.account.is_(None), record.account == q.org))
        where.append(or_(record.account == q.org, member))
    if q.user is not None:
        where.append(record.actor == q.user)
    if q.repository is not None:
        where.append(record.repository == q.repository)
    if q.decision is not None:
        where.append(record.decision == q.decision)
    if q.action is not None:
        where.append(
            or_(
                record.action == q.action, record.action.startswith(f"{q.action}.", autoescape=True)
            )
        )
    if q.since is not None:
        where.append(record.timestamp >= q.since)
    if q.until is not None:
        where.append(record.timestamp < q.until)
    if q.name is not None:
        where.append(record.name == q.name)
    return where


def _pull_decisions() -> list[ColumnElement[bool]]:
    """Manifest pulls and request-less refusals; see the module docstring for why."""
    data = AuditRecord.data
    return [
        AuditRecord.action == PULL,
        or_(data.contains('"request": "manifest"'), not_(data.contains('"request":'))),
    ]


def _window(q: AuditQuery) -> tuple[dt.datetime, dt.datetime]:
    until = q.until or utcnow()
    since = q.since or until - DEFAULT_WINDOW
    if since >= until:
        raise InvalidInput("since must be before until")
    return since, until


class AuditService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def query(self, q: AuditQuery, *, newest_first: bool = False) -> list[AuditEvent]:
        """The matching events ordered by (timestamp, id), oldest first unless asked."""
        order = [AuditRecord.timestamp, AuditRecord.id]
        statement: Select[AuditRecord] = (
            select(AuditRecord)
            .where(*_conditions(q))
            .order_by(*(column.desc() for column in order) if newest_first else order)
            .offset(q.offset)
        )
        if q.limit is not None:
            statement = statement.limit(q.limit)
        async with self._db.read() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [AuditEvent.from_row(dict(row)) for row in rows]

    async def pull_activity(self, q: AuditQuery, buckets: int = 24) -> list[ActivityBucket]:
        """Allowed and denied pull decisions in ``buckets`` equal slices of [since, until).

        A missing ``until`` is now and a missing ``since`` a day before it; the other
        filters apply as in ``query`` (a ``decision`` filter empties the other column).
        """
        if not 1 <= buckets <= MAX_BUCKETS:
            raise InvalidInput(f"buckets must be from 1 to {MAX_BUCKETS}")
        since, until = _window(q)
        width = (until - since) / buckets
        starts = [since + width * index for index in range(buckets)]
        # The bucket number computed in SQL with one CASE over the boundaries: portable
        # across SQLite and PostgreSQL, and the database returns counts, not rows.
        bounds = [(AuditRecord.timestamp < start, index) for index, start in enumerate(starts[1:])]
        bucket = case(*bounds, else_=buckets - 1) if bounds else literal(0)
        windowed = replace(q, since=since, until=until)
        decisions = (
            select(bucket.label("bucket"), AuditRecord.decision)
            .where(*_conditions(windowed), *_pull_decisions())
            .subquery()
        )
        # Grouped outside: PostgreSQL does not see the CASE in GROUP BY as the selected
        # one, since each carries its own bound parameters.
        statement = select(decisions.c.bucket, decisions.c.decision, func.count()).group_by(
            decisions.c.bucket, decisions.c.decision
        )
        counts = {(index, decision): 0 for index in range(buckets) for decision in DECISIONS}
        async with self._db.read() as conn:
            for index, decision, count in await conn.execute(statement):
                if (index, decision) in counts:
                    counts[index, decision] = count
        return [
            ActivityBucket(start, counts[index, ALLOWED], counts[index, DENIED])
            for index, start in enumerate(starts)
        ]

    async def most_denied(self, q: AuditQuery, limit: int = 10) -> list[tuple[str, int]]:
        """Repositories by denied pull decisions, most first (ties by name)."""
        count = func.count().label("denied")
        statement = (
            select(AuditRecord.repository, count)
            .where(
                *_conditions(q),
                *_pull_decisions(),
                AuditRecord.decision == DENIED,
                AuditRecord.repository.is_not(None),
            )
            .group_by(AuditRecord.repository)
            .order_by(count.desc(), AuditRecord.repository)
            .limit(limit)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(statement)).all()
        return [(str(repository), int(denied)) for repository, denied in rows]
