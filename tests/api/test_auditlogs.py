"""``/v2/auditlogs/{account}``: Hub's shape, filters, pages, and who may read.

Events are recorded directly, in 2024; every query asks for that year, so events the
gateway records itself while the test signs in (now) stay out of the answers.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import insert

from imagegate.audit.events import ACTIONS, GROUPS, AuditEvent
from imagegate.db.models import AuditRecord
from tests.api.conftest import Api

T0 = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
YEAR = {"from": "2024-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}
DIGEST = "sha256:" + "b" * 64


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


EVENTS = (
    AuditEvent(
        "registry.pull",
        timestamp=at(0),
        actor="bob",
        orgs=("acme",),
        name="library/nginx",
        repository="library/nginx",
        reference=DIGEST,
        digest=DIGEST,
        category="official",
        decision="allowed",
        outcome="allowed",
        reason="official images are allowed",
        client_ip="10.1.2.3",
        user_agent="docker/27.0",
        data={"request": "manifest", "method": "GET"},
    ),
    AuditEvent(
        "registry.pull",
        timestamp=at(10),
        actor="bob",
        account="acme",
        orgs=("acme",),
        name="someone/tool",
        repository="someone/tool",
        reference="1.0",
        decision="denied",
        reason="community images are not allowed in acme",
        data={"request": "manifest"},
    ),
    AuditEvent(
        "org.member.role.change",
        timestamp=at(20),
        actor="alice",
        account="acme",
        name="bob",
        data={"before": "member", "after": "owner", "team": "owners"},
    ),
    AuditEvent(
        "org.settings.update",
        timestamp=at(30),
        actor="alice",
        account="acme",
        name="acme",
        data={"before": {"enabled": False}, "after": {"enabled": True}},
    ),
    # bob is in acme, but this pull belongs to globex: acme's owners never see it.
    AuditEvent(
        "registry.pull",
        timestamp=at(40),
        actor="bob",
        account="globex",
        orgs=("acme", "globex"),
        name="globex/secret",
        repository="globex/secret",
        decision="denied",
        reason="not a member of globex",
    ),
    AuditEvent(
        "registry.pull",
        timestamp=at(50),
        account="acme",
        name="acme/app",
        repository="acme/app",
        reference="latest",
        decision="denied",
        reason="sign in required",
    ),
)


@pytest.fixture
async def recorded(api: Api) -> None:
    async with api.services.database.write() as conn:
        await conn.execute(insert(AuditRecord).values([event.to_row() for event in EVENTS]))


async def logs(api: Api, user: str = "alice", account: str = "acme", **params: str) -> Any:
    reply = await api.call("GET", f"/v2/auditlogs/{account}", user, params={**YEAR, **params})
    assert reply.status == 200, reply.body
    assert set(reply.body) == {"logs"}
    return reply.body["logs"]


def names(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["name"] for entry in entries]


async def test_logs_in_hubs_shape_newest_first(api: Api, recorded: None) -> None:
    entries = await logs(api)
    assert names(entries) == ["acme/app", "acme", "bob", "someone/tool", "library/nginx"]
    anonymous, settings, role, denied, pulled = entries
    assert pulled == {
        "account": "acme",  # a member's pull of an official image, shown under acme
        "action": "registry.pull",
        "name": "library/nginx",
        "actor": "bob",
        "data": {
            "request": "manifest",
            "method": "GET",
            "decision": "allowed",
            "reason": "official images are allowed",
            "repository": "library/nginx",
            "reference": DIGEST,
            "digest": DIGEST,
            "category": "official",
            "outcome": "allowed",
            "client_ip": "10.1.2.3",
            "user_agent": "docker/27.0",
        },
        "timestamp": "2024-05-01T12:00:00Z",
        "action_description": "pulled from a repository: library/nginx (allowed)",
    }
    assert denied["data"]["reason"] == "community images are not allowed in acme"
    assert anonymous["actor"] == ""
    assert anonymous["data"]["decision"] == "denied"
    # A change's before and after are JSON text; other strings stay as they are.
    assert role["data"] == {"before": '"member"', "after": '"owner"', "team": "owners"}
    assert json.loads(settings["data"]["after"]) == {"enabled": True}
    assert settings["action_description"] == "changed image access settings: acme"
    assert all(isinstance(v, str) for entry in entries for v in entry["data"].values())


async def test_another_organizations_events_stay_with_it(api: Api, recorded: None) -> None:
    assert "globex/secret" not in names(await logs(api))
    [entry] = await logs(api, "gina", "globex")
    assert (entry["account"], entry["actor"], entry["name"]) == ("globex", "bob", "globex/secret")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "registry.pull"}, ["acme/app", "someone/tool", "library/nginx"]),
        ({"action": "org"}, ["acme", "bob"]),
        ({"action": "org.member.role.change"}, ["bob"]),
        ({"actor": "alice"}, ["acme", "bob"]),
        ({"name": "someone/tool"}, ["someone/tool"]),
        ({"from": "2024-05-01T12:10:00Z", "to": "2024-05-01T12:30:00Z"}, ["bob", "someone/tool"]),
        ({"from": "2024-05-01T14:10:00+02:00"}, ["acme/app", "acme", "bob", "someone/tool"]),
        ({"actor": "bob", "action": "registry"}, ["someone/tool", "library/nginx"]),
    ],
)
async def test_filters(
    api: Api, recorded: None, params: dict[str, str], expected: list[str]
) -> None:
    assert names(await logs(api, **params)) == expected


async def test_pages_of_page_size(api: Api, recorded: None) -> None:
    pages = [names(await logs(api, page=str(n), page_size="2")) for n in (1, 2, 3, 4)]
    assert pages == [["acme/app", "acme"], ["bob", "someone/tool"], ["library/nginx"], []]
    # Without page parameters: Hub's default of 25 per page.
    many = [
        AuditEvent("org.team.create", timestamp=at(100 + n), account="acme", name=f"t{n}")
        for n in range(30)
    ]
    async with api.services.database.write() as conn:
        await conn.execute(insert(AuditRecord).values([event.to_row() for event in many]))
    first = await logs(api)
    assert len(first) == 25 and first[0]["name"] == "t29"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"action": "registry.poll"}, "unknown action 'registry.poll'"),
        ({"from": "yesterday"}, "from: 'yesterday' is not a date-time"),
        ({"to": "2024-05-01"}, "to: '2024-05-01' is not a date-time"),
        ({"page_size": "1000"}, "page_size must be a whole number from 1 to 100"),
        ({"page": "0"}, "page must be a whole number"),
    ],
)
async def test_bad_parameters_are_400_with_a_message(
    api: Api, params: dict[str, str], message: str
) -> None:
    reply = await api.call("GET", "/v2/auditlogs/acme", "alice", params=params)
    assert reply.status == 400
    assert message in reply.body["message"]


@pytest.mark.parametrize("path", ["/v2/auditlogs/acme", "/v2/auditlogs/acme/actions"])
async def test_only_owners_read(api: Api, recorded: None, path: str) -> None:
    expected = {None: 401, "dave": 403, "bob": 403, "gina": 403, "alice": 200}
    statuses = {user: (await api.call("GET", path, user)).status for user in expected}
    assert statuses == expected
    refused = await api.call("GET", path, "bob")
    assert "only owners of organization acme" in refused.body["message"]
    missing = await api.call("GET", path.replace("acme", "nowhere"), "dave")
    assert missing.status == 404 and "not found" in missing.body["message"]
    assert (await api.call("GET", f"{path}/", "alice")).status == 200  # trailing slash


async def test_an_owner_with_a_read_only_token_may_read(api: Api, recorded: None) -> None:
    _, secret = await api.services.accounts.create_token("alice", "ro", scopes=["repo:read"])
    login = await api.call("POST", "/v2/auth/token", json={"identifier": "alice", "secret": secret})
    assert login.status == 200, login.body
    api.jwts["alice-ro"] = login.body["access_token"]
    reply = await api.call("GET", "/v2/auditlogs/acme", "alice-ro", params=YEAR)
    assert reply.status == 200 and len(reply.body["logs"]) == 5


async def test_actions_catalog(api: Api) -> None:
    reply = await api.call("GET", "/v2/auditlogs/acme/actions", "alice")
    assert reply.status == 200
    catalog = reply.body["actions"]
    assert list(catalog) == list(GROUPS)
    assert catalog["org"]["label"] == "Organization"
    assert {"name": "member.add", "label": "Member Added", "description": "added a member"} in (
        catalog["org"]["actions"]
    )
    assert catalog["registry"]["actions"][0]["name"] == "pull"
    listed = {f"{group}.{a['name']}" for group, body in catalog.items() for a in body["actions"]}
    assert listed == set(ACTIONS)
