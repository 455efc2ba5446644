"""The audit trail as a running gateway writes it: every pull decision and login, with
who, from where and why; the /metrics counters; a burst that loses nothing; and pulls
that go on while the audit table cannot be written."""

from __future__ import annotations

import asyncio
import sqlite3

import aiohttp
from sqlalchemy import select

from imagegate.audit.events import LOGIN, PULL, REDACTED_NAME, AuditEvent
from imagegate.db.models import AuditRecord
from tests.http.conftest import Gateway, Seeded, basic

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
AGENT = "docker/27.3.1 go/go1.22.7 os/linux arch/amd64"


async def pull(
    gateway: Gateway, path: str, token: str, accept: str = DOCKER_MANIFEST
) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"Bearer {token}", "Accept": accept, "User-Agent": AGENT}
    async with gateway.session.get(f"{gateway.url}{path}", headers=headers) as response:
        await response.read()
        return response


async def metrics(gateway: Gateway) -> dict[str, int]:
    async with gateway.session.get(f"{gateway.url}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    samples = (line.split() for line in text.splitlines() if not line.startswith("#"))
    return {name: int(float(value)) for name, value in samples}  # prometheus writes "3.0"


async def settled(gateway: Gateway) -> dict[str, int]:
    """The metrics once everything recorded so far is written."""
    async with asyncio.timeout(30):
        # The metrics are all a client can watch (ASYNC110: there is no event to await).
        while (now := await metrics(gateway))["imagegate_audit_events_buffered"]:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return now


async def recorded(gateway: Gateway, action: str) -> list[AuditEvent]:
    await settled(gateway)
    async with gateway.services.database.read() as conn:
        rows = await conn.execute(
            select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.id)
        )
        return [AuditEvent.from_row(dict(row)) for row in rows.mappings()]


async def test_allowed_and_denied_pulls_say_who_what_where_and_why(
    gateway: Gateway, seeded: Seeded
) -> None:
    await gateway.services.access.set_settings("acme", enabled=True)
    bob = ("bob", "bob-password")
    official = await gateway.token("repository:alpine:pull", bob)
    assert (await pull(gateway, "/v2/alpine/manifests/3", official)).status == 200
    community = await gateway.token("repository:someone/tool:pull", bob)
    assert (await pull(gateway, "/v2/someone/tool/manifests/1", community)).status == 403
    anonymous = await gateway.token("repository:alpine:pull")
    digest = seeded.official.digest
    assert (await pull(gateway, f"/v2/alpine/manifests/{digest}", anonymous)).status == 200

    allowed, denied, by_digest = await recorded(gateway, PULL)

    assert (allowed.actor, allowed.orgs, allowed.account) == ("bob", ("acme",), None)
    assert (allowed.repository, allowed.reference) == ("library/alpine", "3")
    assert allowed.digest == digest  # the tag, resolved by the response
    assert (allowed.category, allowed.decision, allowed.outcome) == (
        "official",
        "allowed",
        "allowed",
    )
    assert allowed.reason == "Docker Official Images are allowed by acme"
    assert (allowed.client_ip, allowed.user_agent) == ("127.0.0.1", AGENT)
    assert allowed.data["request"] == "manifest"
    assert allowed.data["method"] == "GET"
    assert allowed.data["status"] == 200
    assert allowed.data["media_type"] == DOCKER_MANIFEST
    assert allowed.data["size"] == len(seeded.official.manifest)

    assert (denied.actor, denied.orgs, denied.account) == ("bob", ("acme",), "acme")
    assert (denied.repository, denied.reference, denied.digest) == ("someone/tool", "1", None)
    assert (denied.category, denied.decision, denied.outcome) == (
        "community",
        "denied",
        "denied",
    )
    assert denied.reason == "community images are not allowed"
    assert (denied.client_ip, denied.user_agent) == ("127.0.0.1", AGENT)

    assert (by_digest.actor, by_digest.orgs, by_digest.decision) == (None, (), "allowed")
    assert (by_digest.reference, by_digest.digest) == (digest, digest)
    assert by_digest.reason == "anonymous pulls are bound by no organization's policy"


async def test_a_member_pulling_an_org_image_is_the_orgs_event(
    gateway: Gateway, seeded: Seeded
) -> None:
    await gateway.services.access.set_upstream_namespace("acme", "acme")  # it is theirs
    token = await gateway.token("repository:acme/app:pull", ("bob", "bob-password"))
    assert (await pull(gateway, "/v2/acme/app/manifests/1", token, OCI_MANIFEST)).status == 200
    [event] = await recorded(gateway, PULL)
    assert (event.account, event.category, event.digest) == (
        "acme",
        "organization",
        seeded.acme.digest,
    )


async def test_logins_succeeded_and_failed_are_recorded(gateway: Gateway) -> None:
    await gateway.token(None, ("alice", "alice-password"))
    headers = {"Authorization": basic("alice", "wrong"), "User-Agent": AGENT}
    async with gateway.session.get(f"{gateway.url}/token", headers=headers) as response:
        assert response.status == 401
    await gateway.token("repository:alpine:pull")  # anonymous: no login

    success, failure = await recorded(gateway, LOGIN)
    assert (success.actor, success.decision, success.client_ip) == ("alice", "allowed", "127.0.0.1")
    assert success.orgs == ("acme",)  # so acme's trail shows its members signing in
    assert failure.orgs == ()  # nobody is known from a wrong password
    assert (failure.actor, failure.decision, failure.user_agent) == ("alice", "denied", AGENT)
    assert failure.reason == "incorrect username or password"


async def test_a_token_typed_as_the_username_is_not_kept(gateway: Gateway) -> None:
    secret = "igt_pat_" + "s3cr3t" * 6
    headers = {"Authorization": basic(secret, "anything")}
    async with gateway.session.get(f"{gateway.url}/token", headers=headers) as response:
        assert response.status == 401

    *_, attempt = await recorded(gateway, LOGIN)
    assert (attempt.actor, attempt.decision) == (REDACTED_NAME, "denied")
    async with gateway.services.database.read() as conn:
        rows = (await conn.execute(select(AuditRecord))).all()
    assert secret not in repr(rows)


async def test_sign_ins_to_the_management_api_are_logins_too(gateway: Gateway) -> None:
    for password, status in (("alice-password", 200), ("wrong", 401)):
        body = {"username": "alice", "password": password}
        async with gateway.session.post(f"{gateway.url}/v2/users/login", json=body) as response:
            assert response.status == status

    logins = [event for event in await recorded(gateway, LOGIN) if event.data["via"] == "api"]
    assert [(event.actor, event.decision, event.reason) for event in logins] == [
        ("alice", "allowed", ""),
        ("alice", "denied", "incorrect username or password"),
    ]


async def test_metrics_count_what_was_written(gateway: Gateway) -> None:
    before = await settled(gateway)
    token = await gateway.token("repository:alpine:pull")
    for _ in range(3):
        assert (await pull(gateway, "/v2/alpine/manifests/3", token)).status == 200
    after = await settled(gateway)
    written = "imagegate_audit_events_written_total"
    assert after[written] - before[written] == 3
    assert after["imagegate_audit_events_dropped_total"] == 0
    assert after["imagegate_audit_write_failures_total"] == 0


async def test_a_burst_of_a_thousand_pulls_loses_none(gateway: Gateway, seeded: Seeded) -> None:
    token = await gateway.token("repository:alpine:pull")
    path = f"/v2/alpine/manifests/{seeded.official.digest}"
    statuses = await asyncio.gather(*(pull(gateway, path, token) for _ in range(1000)))
    assert {response.status for response in statuses} == {200}
    events = await recorded(gateway, PULL)
    assert len(events) == 1000
    assert all(e.digest == seeded.official.digest for e in events)
    assert (await metrics(gateway))["imagegate_audit_events_dropped_total"] == 0


async def test_pulls_go_on_while_the_audit_table_cannot_be_written(
    gateway: Gateway, seeded: Seeded
) -> None:
    token = await gateway.token("repository:alpine:pull")
    before = await settled(gateway)
    path = gateway.settings.effective_database_url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the write lock: no audit batch can commit
        for _ in range(5):
            assert (await pull(gateway, "/v2/alpine/manifests/3", token)).status == 200
        now = await metrics(gateway)
        assert now["imagegate_audit_events_buffered"] == 5
        assert (
            now["imagegate_audit_events_written_total"]
            == before["imagegate_audit_events_written_total"]
        )
    finally:
        blocker.rollback()
        blocker.close()
    assert len(await recorded(gateway, PULL)) == 5
