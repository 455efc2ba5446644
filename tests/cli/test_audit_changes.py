"""Admin commands are in the audit trail as ``cli:<os user>``, a refused one not at all."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from imagegate.audit.events import AuditEvent
from imagegate.cli.main import cli_actor
from imagegate.config import load_settings
from imagegate.db import Database
from imagegate.db.models import AuditRecord
from tests.cli.conftest import Cli, Result


def ok(result: Result) -> Result:
    assert result.code == 0, result
    return result


async def _events() -> list[AuditEvent]:
    database = Database(load_settings().effective_database_url)
    try:
        async with database.read() as conn:
            rows = await conn.execute(select(AuditRecord).order_by(AuditRecord.id))
            return [AuditEvent.from_row(dict(row._mapping)) for row in rows]
    finally:
        await database.dispose()


def test_admin_commands_are_recorded_as_the_os_user(cli: Cli) -> None:
    ok(cli("user", "add", "alice", "--password-stdin", stdin="alice-pw"))
    ok(cli("org", "add", "acme", "--owner", "alice"))
    secret = ok(cli("token", "create", "alice", "--description", "ci")).out.strip()
    ok(cli("image-access", "set", "acme", "--enable"))
    ok(cli("org", "set", "acme", "--upstream-namespace", "acme-inc"))
    ok(cli("org", "set", "acme", "--upstream-namespace", "acme-inc"))  # no change, no record
    assert cli("org", "member", "add", "nowhere", "alice").code == 1  # no such organization
    events = asyncio.run(_events())
    actor = cli_actor()
    assert [(e.action, e.actor, e.account, e.name) for e in events] == [
        ("user.create", actor, None, "alice"),
        ("org.create", actor, "acme", "acme"),
        ("user.access_token.create", actor, None, "alice"),
        ("org.settings.update", actor, "acme", "acme"),
        ("org.upstream_namespace.update", actor, "acme", "acme"),
    ]
    assert events[3].data["before"]["enabled"] is False
    assert events[3].data["after"]["enabled"] is True
    assert events[4].data["before"] == {"upstream_namespace": None}
    assert events[4].data["after"] == {"upstream_namespace": "acme-inc"}
    assert secret not in repr([e.to_json() for e in events])
    assert "alice-pw" not in repr([e.to_json() for e in events])
