"""Reading the audit trail: each filter, their combination, order, pages, charts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from sqlalchemy import insert

from imagegate.audit.events import AuditEvent
from imagegate.db import Database
from imagegate.db.models import AuditRecord
from imagegate.services.audit import ActivityBucket, AuditQuery, AuditService
from imagegate.services.errors import InvalidInput

T0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def pull(
    minutes: int,
    actor: str | None,
    repository: str,
    decision: str,
    *,
    orgs: tuple[str, ...] = (),
    account: str | None = None,
    request: str | None = "manifest",
) -> AuditEvent:
    return AuditEvent(
        "registry.pull",
        timestamp=at(minutes),
        actor=actor,
        account=account,
        orgs=orgs,
        repository=repository,
        reference="latest",
        decision=decision,
        reason=f"{decision} by the test",
        data={} if request is None else {"request": request},
    )


# Labels in ``reason`` name each event so failures read as a story.
SCENARIO = (
    pull(0, "bob", "library/nginx", "allowed", orgs=("acme",)),
    pull(10, None, "someone/tool", "denied", request=None),
    pull(20, "bob", "someone/tool", "denied", orgs=("acme",), account="acme"),
    pull(30, "gina", "globex/secret", "allowed", orgs=("globex", "acme"), account="globex"),
    pull(30, "bob", "library/nginx", "allowed", orgs=("acme",), request="blob"),
    AuditEvent("org.member.add", timestamp=at(40), actor="alice", account="acme", name="carol"),
    AuditEvent("org.team.create", timestamp=at(50), actor="alice", account="acme", name="qa"),
    AuditEvent("auth.login", timestamp=at(60), actor="dave", decision="denied", name="dave"),
    pull(70, "xa_b", "someone/tool", "denied", orgs=("xa-b",)),  # '_' is no wildcard
)


async def _record(database: Database, events: Sequence[AuditEvent]) -> None:
    async with database.write() as conn:
        await conn.execute(insert(AuditRecord).values([event.to_row() for event in events]))


@pytest.fixture
async def audit(database: Database) -> AuditService:
    await _record(database, SCENARIO)
    return AuditService(database)


def minutes(events: Sequence[AuditEvent]) -> list[int]:
    return [int((event.timestamp - T0).total_seconds() // 60) for event in events]


async def test_everything_oldest_first_and_round_trips(audit: AuditService) -> None:
    events = await audit.query(AuditQuery())
    assert minutes(events) == [0, 10, 20, 30, 30, 40, 50, 60, 70]
    ids = [event.id for event in events]
    assert ids == sorted(ids)  # equal timestamps in arrival order
    assert [(e.actor, e.repository) for e in events[3:5]] == [
        ("gina", "globex/secret"),
        ("bob", "library/nginx"),
    ]
    assert events[0] == AuditEvent(**{**SCENARIO[0].__dict__, "id": events[0].id})


async def test_newest_first_reverses_the_order(audit: AuditService) -> None:
    events = await audit.query(AuditQuery(), newest_first=True)
    assert minutes(events) == [70, 60, 50, 40, 30, 30, 20, 10, 0]
    assert [e.actor for e in events[4:6]] == ["bob", "gina"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (AuditQuery(user="bob"), [0, 20, 30]),
        (AuditQuery(repository="nginx"), [0, 30]),  # canonical: library/nginx
        (AuditQuery(repository="someone/tool"), [10, 20, 70]),
        (AuditQuery(decision="denied"), [10, 20, 60, 70]),
        (AuditQuery(decision="allowed"), [0, 30, 30]),
        (AuditQuery(action="registry.pull"), [0, 10, 20, 30, 30, 70]),
        (AuditQuery(action="org"), [40, 50]),
        (AuditQuery(action="org.team"), [50]),
        (AuditQuery(action="auth"), [60]),
        (AuditQuery(since=at(30)), [30, 30, 40, 50, 60, 70]),
        (AuditQuery(until=at(30)), [0, 10, 20]),  # until is exclusive
        (AuditQuery(since=at(20), until=at(41)), [20, 30, 30, 40]),
        (AuditQuery(name="carol"), [40]),
    ],
)
async def test_each_filter_alone(
    audit: AuditService, query: AuditQuery, expected: list[int]
) -> None:
    assert minutes(await audit.query(query)) == expected


async def test_org_matches_its_events_and_its_members_events(audit: AuditService) -> None:
    acme = await audit.query(AuditQuery(org="acme"))
    assert minutes(acme) == [0, 20, 30, 30, 40, 50]
    # own_only leaves out a member's event that belongs to another organization.
    own = await audit.query(AuditQuery(org="acme", own_only=True))
    assert minutes(own) == [0, 20, 30, 40, 50]
    assert "globex/secret" not in {e.repository for e in own}
    assert minutes(await audit.query(AuditQuery(org="globex"))) == [30]
    # Org names hold '_' and '-': neither is a LIKE wildcard here.
    assert minutes(await audit.query(AuditQuery(org="xa_b"))) == []
    assert minutes(await audit.query(AuditQuery(org="xa-b"))) == [70]
    assert minutes(await audit.query(AuditQuery(org="acm"))) == []


async def test_filters_combine(audit: AuditService) -> None:
    query = AuditQuery(org="acme", decision="denied", repository="someone/tool")
    assert [(e.actor, e.reason) for e in await audit.query(query)] == [
        ("bob", "denied by the test")
    ]
    query = AuditQuery(user="bob", action="registry.pull", since=at(1), until=at(31))
    assert minutes(await audit.query(query)) == [20, 30]
    assert await audit.query(AuditQuery(user="alice", decision="denied")) == []


async def test_pages(audit: AuditService) -> None:
    pages = [
        minutes(await audit.query(AuditQuery(limit=4, offset=offset), newest_first=True))
        for offset in (0, 4, 8, 12)
    ]
    assert pages == [[70, 60, 50, 40], [30, 30, 20, 10], [0], []]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"decision": "maybe"}, "decision must be allowed or denied"),
        ({"action": "registry.poll"}, "unknown action 'registry.poll'"),
        ({"action": "regis"}, "unknown action 'regis'"),
        ({"repository": "UPPER/case"}, "invalid repository name"),
        ({"since": dt.datetime(2024, 5, 1)}, "timezone-aware"),
        ({"limit": -1}, "must not be negative"),
    ],
)
def test_bad_queries_say_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        AuditQuery(**fields)  # type: ignore[arg-type]


async def test_pull_activity_counts_pull_decisions_per_bucket(audit: AuditService) -> None:
    buckets = await audit.pull_activity(AuditQuery(since=T0, until=at(80)), buckets=4)
    # The blob fetch at 30 is not a decision of its own; the refusal at 10 names no
    # request kind (refused before any manifest) and counts.
    assert buckets == [
        ActivityBucket(at(0), allowed=1, denied=1),
        ActivityBucket(at(20), allowed=1, denied=1),
        ActivityBucket(at(40), allowed=0, denied=0),
        ActivityBucket(at(60), allowed=0, denied=1),
    ]
    acme = await audit.pull_activity(AuditQuery(org="acme", since=T0, until=at(80)), buckets=2)
    assert acme == [ActivityBucket(at(0), 2, 1), ActivityBucket(at(40), 0, 0)]
    [whole] = await audit.pull_activity(AuditQuery(since=at(10), until=at(30)), buckets=1)
    assert whole == ActivityBucket(at(10), allowed=0, denied=2)


async def test_pull_activity_defaults_to_the_last_day(database: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    await _record(
        database,
        [
            pull(0, "bob", "library/nginx", "denied"),  # long ago: outside the window
            AuditEvent(
                "registry.pull",
                timestamp=now - dt.timedelta(minutes=5),
                repository="library/nginx",
                decision="allowed",
            ),
        ],
    )
    buckets = await AuditService(database).pull_activity(AuditQuery())
    assert len(buckets) == 24
    assert sum(b.allowed for b in buckets) == 1 and sum(b.denied for b in buckets) == 0
    assert buckets[-1].allowed == 1
    day_ago = now - dt.timedelta(hours=24)
    assert day_ago <= buckets[0].start < day_ago + dt.timedelta(seconds=5)


async def test_pull_activity_refuses_an_empty_window(audit: AuditService) -> None:
    with pytest.raises(InvalidInput, match="since must be before until"):
        await audit.pull_activity(AuditQuery(since=at(10), until=at(10)))
    with pytest.raises(InvalidInput, match="buckets must be from 1"):
        await audit.pull_activity(AuditQuery(), buckets=0)


async def test_most_denied_repositories(audit: AuditService, database: Database) -> None:
    assert await audit.most_denied(AuditQuery()) == [("someone/tool", 3)]
    await _record(
        database,
        [pull(75, "bob", "library/redis", "denied"), pull(76, "bob", "library/alpine", "denied")],
    )
    assert await audit.most_denied(AuditQuery()) == [
        ("someone/tool", 3),
        ("library/alpine", 1),  # ties by name
        ("library/redis", 1),
    ]
    assert await audit.most_denied(AuditQuery(), limit=1) == [("someone/tool", 3)]
    assert await audit.most_denied(AuditQuery(org="acme")) == [("someone/tool", 1)]
    assert await audit.most_denied(AuditQuery(since=at(71))) == [
        ("library/alpine", 1),
        ("library/redis", 1),
    ]
