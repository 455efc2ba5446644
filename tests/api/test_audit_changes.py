"""Changes made through the API are in the audit trail under the signed-in user's name."""

from __future__ import annotations

from sqlalchemy import select

from imagegate.audit.events import AuditEvent
from imagegate.db.models import AuditRecord
from tests.api.conftest import Api

STRICT = {
    "restricted_images": {
        "enabled": True,
        "allow_official_images": False,
        "allow_verified_publishers": True,
    }
}


CHANGES = ("org", "repo", "user", "publisher")  # the groups of changes, not sign-ins or pulls


async def _since(api: Api, last: int) -> list[AuditEvent]:
    """The changes recorded after event ``last``, oldest first."""
    async with api.services.database.read() as conn:
        rows = await conn.execute(
            select(AuditRecord).where(AuditRecord.id > last).order_by(AuditRecord.id)
        )
        events = [AuditEvent.from_row(dict(row._mapping)) for row in rows]
    return [e for e in events if e.action.partition(".")[0] in CHANGES]


async def _last_id(api: Api) -> int:
    events = await _since(api, 0)
    return events[-1].id or 0 if events else 0


async def test_changes_name_the_user_and_where_they_came_from(api: Api) -> None:
    last = await _last_id(api)  # the world's setup
    refused = await api.call("PUT", "/v2/orgs/acme/settings", "bob", json=STRICT)
    assert refused.status == 403, refused.body
    reply = await api.call("PUT", "/v2/orgs/acme/settings", "alice", json=STRICT)
    assert reply.status == 200, reply.body
    reply = await api.call("POST", "/v2/orgs/globex/members", "gina", json={"member": "dave"})
    assert reply.status in (200, 201), reply.body
    events = await _since(api, last)
    assert [(e.action, e.actor, e.account, e.name) for e in events] == [
        ("org.settings.update", "alice", "acme", "acme"),
        ("org.team.create", "gina", "globex", "members"),
        ("org.member.add", "gina", "globex", "dave"),
    ]
    settings = events[0]
    assert settings.data["before"]["enabled"] is False
    assert settings.data["after"] == {
        **settings.data["before"],
        "enabled": True,
        "allow_official": False,
    }
    assert settings.client_ip == "127.0.0.1"
    assert "aiohttp" in (settings.user_agent or "")  # aiohttp's default User-Agent


async def test_a_token_made_through_the_api_is_recorded_without_its_secret(api: Api) -> None:
    last = await _last_id(api)
    body = {"token_label": "ci", "scopes": ["repo:read"]}
    created = await api.call("POST", "/v2/access-tokens", "bob", json=body)
    assert created.status == 201, created.body
    token_uuid, secret = created.body["uuid"], created.body["token"]
    deleted = await api.call("DELETE", f"/v2/access-tokens/{token_uuid}", "bob")
    assert deleted.status == 204, deleted.body
    events = await _since(api, last)
    assert [(e.action, e.actor, e.name, e.data["before"], e.data["after"]) for e in events] == [
        (
            "user.access_token.create",
            "bob",
            "bob",
            None,
            {
                "uuid": token_uuid,
                "label": "ci",
                "scopes": ["repo:read"],
                "active": True,
                "expires_at": None,
            },
        ),
        (
            "user.access_token.delete",
            "bob",
            "bob",
            events[0].data["after"],
            None,
        ),
    ]
    async with api.services.database.read() as conn:
        stored = [tuple(row) for row in await conn.execute(select(AuditRecord))]
    assert secret not in repr(stored)
