"""Webhook delivery to real HTTP receivers, from a real database (both backends)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import delete, func, insert, select

from imagegate.audit.events import LOGIN, PULL, AuditEvent
from imagegate.audit.webhooks import (
    EVENTS_MEDIA_TYPE,
    WebhookDispatcher,
    deliverable,
    distribution_event,
    endpoint_key,
    envelope,
    redacted,
)
from imagegate.bootstrap import running_audit, running_gateway
from imagegate.config import load_settings
from imagegate.db import Database
from imagegate.db.models import AuditRecord, WebhookCursor
from tests.db.fixtures import database, database_url, empty_tables, postgres_url
from tests.support.polling import eventually
from tests.support.process import free_port

__all__ = ["database", "database_url"]

DIGEST = "sha256:" + "ab" * 32
FAST = {
    "poll_interval": 0.02,
    "backoff_initial": 0.02,
    "backoff_max": 0.2,
    "timeout": 2.0,
    "gap_grace": 0.2,
}


def pull(n: int, **changes: Any) -> AuditEvent:
    values: dict[str, Any] = {
        "actor": "bob",
        "account": "acme",
        "orgs": ("acme",),
        "repository": "library/alpine",
        "reference": f"3.{n}",
        "digest": DIGEST,
        "category": "official",
        "decision": "allowed",
        "reason": "official images are allowed",
        "client_ip": "10.1.2.3",
        "user_agent": "skopeo/1.15",
        "data": {"media_type": "application/vnd.oci.image.index.v1+json", "size": 512},
    }
    values.update(changes)
    return AuditEvent(PULL, **values)


# --- The envelope ------------------------------------------------------------------------


def test_a_pull_is_a_distribution_pull_with_our_decision_alongside() -> None:
    event = pull(1, id=7, timestamp=dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC))

    mapped = distribution_event(
        event, instance_id="i-1", source_addr="gw:5000", registry_url="https://gw.example"
    )

    assert mapped == {
        "id": "7",
        "timestamp": "2026-05-01T12:00:00Z",
        "action": "pull",
        "target": {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": DIGEST,
            "size": 512,
            "length": 512,
            "repository": "library/alpine",
            "url": f"https://gw.example/v2/library/alpine/manifests/{DIGEST}",
            "tag": "3.1",
        },
        "request": {"addr": "10.1.2.3", "host": "gw.example", "useragent": "skopeo/1.15"},
        "actor": {"name": "bob"},
        "source": {"addr": "gw:5000", "instanceID": "i-1"},
        "imagegate": {
            "action": "registry.pull",
            "account": "acme",
            "orgs": ["acme"],
            "reference": "3.1",
            "category": "official",
            "decision": "allowed",
            "reason": "official images are allowed",
            "media_type": "application/vnd.oci.image.index.v1+json",
            "size": 512,
        },
    }


def test_a_pull_by_digest_has_no_tag_and_an_anonymous_one_no_actor_name() -> None:
    event = pull(1, id=1, actor=None, reference=DIGEST, digest=None, decision="denied")

    mapped = distribution_event(event, instance_id="i")

    assert mapped["target"]["digest"] == DIGEST
    assert "tag" not in mapped["target"]
    assert mapped["actor"] == {}
    assert mapped["imagegate"]["decision"] == "denied"


def test_a_change_keeps_our_action_name_with_before_and_after() -> None:
    event = AuditEvent(
        "org.member.add",
        id=3,
        actor="alice",
        account="acme",
        name="bob",
        data={"before": None, "after": {"role": "member"}},
    )

    mapped = distribution_event(event, instance_id="i")

    assert mapped["action"] == "org.member.add"
    assert mapped["actor"] == {"name": "alice"}
    assert mapped["target"] == {}
    assert mapped["imagegate"] == {
        "action": "org.member.add",
        "account": "acme",
        "name": "bob",
        "before": None,
        "after": {"role": "member"},
    }


def test_a_failed_login_keeps_its_action_and_outcome() -> None:
    event = AuditEvent(LOGIN, id=4, actor="mallory", decision="denied", outcome="bad_password")

    mapped = distribution_event(event, instance_id="i")

    assert mapped["action"] == "auth.login"
    assert mapped["imagegate"]["outcome"] == "bad_password"


def test_the_envelope_holds_the_events_in_order() -> None:
    assert envelope([{"id": "1"}, {"id": "2"}]) == {"events": [{"id": "1"}, {"id": "2"}]}


def test_logged_urls_carry_no_credentials() -> None:
    assert redacted("https://u:secret@hooks.example:8443/in?token=x#f") == (
        "https://hooks.example:8443/in"
    )


def test_credentials_both_in_a_url_and_as_a_header_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="credentials"):
        WebhookDispatcher(None, ["https://u:p@hooks.example/"], "Bearer t")  # type: ignore[arg-type]


def _ids(events: Sequence[AuditEvent]) -> list[int | None]:
    return [event.id for event in events]


def test_events_after_a_gap_in_ids_wait_until_the_gap_is_accepted() -> None:
    events = [AuditEvent(PULL, id=i) for i in (5, 6, 8, 9)]

    assert _ids(deliverable(events, 4, accept_gap=False)) == [5, 6]
    assert _ids(deliverable(events[2:], 6, accept_gap=False)) == []
    assert _ids(deliverable(events[2:], 6, accept_gap=True)) == [8, 9]
    # Only the first gap is stepped over at a time.
    assert _ids(deliverable(events[1:], 4, accept_gap=True)) == [6]


# --- Delivery to real receivers -------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver that can refuse (500) or hang before it accepts."""

    url: str
    refuse: int = 0  # how many requests to answer 500 before accepting
    hang: bool = False
    attempts: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)  # envelopes
    headers: list[dict[str, str]] = field(default_factory=list)  # of accepted requests
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def event_ids(self) -> list[int]:
        return [int(event["id"]) for body in self.accepted for event in body["events"]]

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.hang:
            await self.release.wait()
            return web.Response(status=503)
        if self.refuse:
            self.refuse -= 1
            return web.Response(status=500, text="not now")
        self.accepted.append(json.loads(await request.read()))
        self.headers.append(dict(request.headers))
        return web.Response(status=202)


MakeReceiver = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def receiver() -> AsyncIterator[MakeReceiver]:
    runners: list[tuple[web.AppRunner, Receiver]] = []

    async def make(**options: Any) -> Receiver:
        port = free_port()
        target = Receiver(f"http://127.0.0.1:{port}/events", **options)
        app = web.Application()
        app.router.add_post("/events", target.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append((runner, target))
        return target

    yield make
    for runner, target in runners:
        target.release.set()
        await runner.cleanup()


MakeDispatcher = Callable[..., Awaitable[WebhookDispatcher]]


@pytest.fixture
async def dispatcher() -> AsyncIterator[MakeDispatcher]:
    started: list[WebhookDispatcher] = []

    async def make(db: Database, urls: Sequence[str], **options: Any) -> WebhookDispatcher:
        """A started dispatcher whose receivers all have their cursor row."""
        made = WebhookDispatcher(db, urls, **{**FAST, **options})
        await made.start()
        started.append(made)
        await eventually(lambda: _cursors_exist(db, urls))
        return made

    yield make
    for made in started:
        await made.close()


async def _cursors_exist(db: Database, urls: Sequence[str]) -> bool:
    async with db.read() as conn:
        found = await conn.scalars(
            select(WebhookCursor.endpoint).where(
                WebhookCursor.endpoint.in_([endpoint_key(url) for url in urls])
            )
        )
        return len(found.all()) == len(set(urls))


async def record(db: Database, *events: AuditEvent) -> list[int]:
    """Store events as the recorder does (one transaction); their ids."""
    async with db.write() as conn:
        await conn.execute(insert(AuditRecord).values([event.to_row() for event in events]))
        ids = await conn.scalars(
            select(AuditRecord.id).order_by(AuditRecord.id.desc()).limit(len(events))
        )
        return sorted(ids)


async def test_a_receiver_failing_twice_gets_the_event_on_the_third_try_once(
    database: Database, receiver: MakeReceiver, dispatcher: MakeDispatcher
) -> None:
    hooks = await receiver(refuse=2)
    sender = await dispatcher(database, [hooks.url], authorization="Bearer hook-secret")

    [first] = await record(database, pull(1))
    await eventually(lambda: hooks.event_ids == [first])
    # A later event arriving after it proves the first is not sent again.
    [second] = await record(database, pull(2))
    await eventually(lambda: len(hooks.event_ids) >= 2)

    assert hooks.event_ids == [first, second]
    assert hooks.attempts == 4  # 500, 500, 202, then 202 for the second
    assert sender.failures == 2
    headers = hooks.headers[0]
    assert headers["Content-Type"] == EVENTS_MEDIA_TYPE
    assert headers["Authorization"] == "Bearer hook-secret"
    [sent] = hooks.accepted[0]["events"]
    assert sent["action"] == "pull"
    assert sent["target"]["repository"] == "library/alpine"
    assert sent["target"]["tag"] == "3.1"
    assert sent["target"]["digest"] == DIGEST
    assert sent["request"] == {"addr": "10.1.2.3", "useragent": "skopeo/1.15"}
    assert sent["actor"] == {"name": "bob"}
    assert sent["source"]["instanceID"] == sender.instance_id
    assert sent["imagegate"]["decision"] == "allowed"


async def test_events_arrive_in_id_order_across_batches_and_retries(
    database: Database, receiver: MakeReceiver, dispatcher: MakeDispatcher
) -> None:
    hooks = await receiver(refuse=1)
    await dispatcher(database, [hooks.url], batch=3)

    ids = await record(database, *(pull(n) for n in range(5)))
    ids += await record(database, pull(5))
    ids += await record(database, *(pull(n) for n in range(6, 10)))
    await eventually(lambda: len(hooks.event_ids) >= len(ids))

    assert hooks.event_ids == ids
    assert all(len(body["events"]) <= 3 for body in hooks.accepted)


async def test_an_event_that_never_appears_is_skipped_loudly(
    database: Database,
    receiver: MakeReceiver,
    dispatcher: MakeDispatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = await receiver()
    sender = await dispatcher(database, [hooks.url])
    # Delivered first, so any hole before it (ids a sequence gave out to events of
    # earlier tests, since removed) is behind us.
    [first] = await record(database, pull(0))
    await eventually(lambda: hooks.event_ids == [first])
    skipped_before = sender.stats[0].skipped
    async with database.write() as conn:  # a hole in the ids: as a rolled-back insert leaves
        await conn.execute(insert(AuditRecord).values([pull(1).to_row()]))
        await conn.execute(insert(AuditRecord).values([pull(2).to_row()]))
        gone = await conn.scalar(
            select(func.max(AuditRecord.id)).where(AuditRecord.reference == "3.1")
        )
        await conn.execute(delete(AuditRecord).where(AuditRecord.id == gone))

    await eventually(lambda: len(hooks.event_ids) == 2)
    assert hooks.event_ids == [first, gone + 1]
    assert sender.stats[0].skipped - skipped_before == 1
    assert f"skipping events {gone} to {gone}" in caplog.text


async def test_a_new_receiver_starts_at_the_newest_event(
    database: Database, receiver: MakeReceiver, dispatcher: MakeDispatcher
) -> None:
    await record(database, pull(1), pull(2))
    hooks = await receiver()
    await dispatcher(database, [hooks.url])

    new = await record(database, pull(3))
    await eventually(lambda: hooks.event_ids == new)


async def test_the_cursor_survives_a_restart(
    database: Database, receiver: MakeReceiver, dispatcher: MakeDispatcher
) -> None:
    hooks = await receiver()
    first = await dispatcher(database, [hooks.url])
    before = await record(database, pull(1))
    await eventually(lambda: hooks.event_ids == before)
    await first.close()

    during = await record(database, pull(2), pull(3))  # while no gateway runs
    await dispatcher(database, [hooks.url])
    await eventually(lambda: len(hooks.event_ids) >= 3)

    assert hooks.event_ids == before + during


async def test_a_dead_receiver_does_not_hold_up_another(
    database: Database, receiver: MakeReceiver, dispatcher: MakeDispatcher
) -> None:
    hanging = await receiver(hang=True)
    refused = f"http://127.0.0.1:{free_port()}/events"  # nothing listens there
    healthy = await receiver()
    sender = await dispatcher(database, [hanging.url, refused, healthy.url], timeout=5.0)

    ids = await record(database, pull(1), pull(2))
    await eventually(lambda: healthy.event_ids == ids)
    more = await record(database, pull(3))
    await eventually(lambda: healthy.event_ids == ids + more)

    assert hanging.accepted == []
    assert hanging.attempts >= 1
    refused_stats = next(s for s in sender.stats if s.url == refused)
    await eventually(lambda: refused_stats.failures >= 1)
    assert refused_stats.delivered == 0


async def test_two_gateways_on_one_postgresql_database_deliver_each_event_once(
    request: pytest.FixtureRequest, receiver: MakeReceiver, dispatcher: MakeDispatcher
) -> None:
    url = postgres_url(request.config)
    one, two = Database(url), Database(url)  # two engines, as two processes have
    gateways: list[WebhookDispatcher] = []
    try:
        await one.migrate()
        await empty_tables(one)
        hooks = await receiver()
        gateways += [
            await dispatcher(one, [hooks.url], batch=4),
            await dispatcher(two, [hooks.url], batch=4),
        ]

        ids: list[int] = []
        for n in range(12):
            ids += await record(one if n % 2 else two, pull(n))
        await eventually(lambda: len(hooks.event_ids) >= len(ids))
        # The one delivering stops; the other takes over from the cursor.
        async with one.read() as conn:
            holder = await conn.scalar(select(WebhookCursor.leased_by))
        await next(g for g in gateways if g.instance_id == holder).close()
        for n in range(12, 20):
            ids += await record(one, pull(n))
        await eventually(lambda: len(hooks.event_ids) >= len(ids))

        assert hooks.event_ids == ids
        senders = {body["events"][0]["source"]["instanceID"] for body in hooks.accepted}
        assert senders == {g.instance_id for g in gateways}
    finally:
        for gateway in gateways:
            await gateway.close()
        await one.dispose()
        await two.dispose()


async def test_the_gateway_delivers_to_the_configured_receivers(
    tmp_path: Path, receiver: MakeReceiver
) -> None:
    hooks = await receiver()
    settings = load_settings(
        {
            "IMAGEGATE_DATA_DIR": str(tmp_path / "data"),
            "IMAGEGATE_HUB_API_URL": "",
            "IMAGEGATE_AUDIT_WEBHOOK_URLS": f"{hooks.url}, ",
            "IMAGEGATE_AUDIT_WEBHOOK_AUTHORIZATION": "Bearer from-settings",
        }
    )
    db = Database(settings.effective_database_url)
    try:
        async with running_gateway(settings):
            await eventually(lambda: _cursors_exist(db, [hooks.url]))
            ids = await record(db, pull(1))
            await eventually(lambda: hooks.event_ids == ids)
        assert hooks.headers[0]["Authorization"] == "Bearer from-settings"
    finally:
        await db.dispose()


async def test_webhook_counters_are_among_the_gateway_metrics(
    tmp_path: Path, receiver: MakeReceiver
) -> None:
    hooks = await receiver(refuse=1)
    settings = load_settings(
        {"IMAGEGATE_DATA_DIR": str(tmp_path), "IMAGEGATE_AUDIT_WEBHOOK_URLS": hooks.url}
    )
    db = Database(settings.effective_database_url)
    await db.migrate()
    try:
        async with running_audit(settings, db) as pipeline:

            def metric(name: str) -> float | None:
                return pipeline.metrics.registry.get_sample_value(name)

            await eventually(lambda: _cursors_exist(db, [hooks.url]))
            await record(db, pull(1))
            await eventually(lambda: metric("imagegate_audit_webhook_events_delivered_total") == 1)
            assert metric("imagegate_audit_webhook_failures_total") == 1
    finally:
        await db.dispose()
