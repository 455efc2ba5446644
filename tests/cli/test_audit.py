"""``imagegate audit``: the table, JSON lines on stdout and in a file, and bad input."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import insert

from imagegate.audit.events import AuditEvent
from imagegate.db import Database
from imagegate.db.models import AuditRecord
from tests.cli.conftest import Cli

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
EVENTS = (
    AuditEvent(
        "registry.pull",
        timestamp=NOW - dt.timedelta(days=3),
        actor="bob",
        account="acme",
        orgs=("acme",),
        repository="library/nginx",
        reference="latest",
        decision="allowed",
        reason="official image",
        client_ip="10.0.0.7",
        data={"request": "manifest"},
    ),
    AuditEvent(
        "registry.pull",
        timestamp=NOW - dt.timedelta(hours=2),
        repository="someone/tool",
        reference="sha256:" + "a" * 64,
        decision="denied",
        reason="sign in required:\nanonymous pulls are refused",
    ),
    AuditEvent(
        "org.member.add",
        timestamp=NOW - dt.timedelta(hours=1),
        actor="alice",
        account="acme",
        name="carol",
        data={"before": None, "after": {"team": "members"}},
    ),
)


def _insert(url: str, events: Sequence[AuditEvent]) -> None:
    async def run() -> None:
        database = Database(url)
        try:
            async with database.write() as conn:
                await conn.execute(insert(AuditRecord).values([e.to_row() for e in events]))
        finally:
            await database.dispose()

    asyncio.run(run())


@pytest.fixture
def recorded(environment: dict[str, str]) -> None:
    _insert(environment["IMAGEGATE_DATABASE_URL"], EVENTS)


def _parsed(lines: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines.splitlines()]


def test_table_lists_events_oldest_first_with_readable_columns(cli: Cli, recorded: None) -> None:
    result = cli("audit")
    assert result.code == 0, result.err
    heading, *rows = result.out.splitlines()
    assert heading.split() == ["TIME", "ACTOR", "ACTION", "DECISION", "WHAT", "REASON"]
    assert len(rows) == 3
    assert rows[0].split()[2:6] == ["bob", "registry.pull", "allowed", "library/nginx:latest"]
    assert "official image" in rows[0]
    # An anonymous client is named so, a digest reference is written with @, and a
    # multi-line reason stays on its row.
    assert rows[1].split()[2:6] == [
        "anonymous",
        "registry.pull",
        "denied",
        f"someone/tool@sha256:{'a' * 64}",
    ]
    assert rows[1].endswith("sign in required: anonymous pulls are refused")
    assert rows[2].split()[2:6] == ["alice", "org.member.add", "-", "carol"]


def test_filters_narrow_the_table(cli: Cli, recorded: None) -> None:
    denied = cli("audit", "--decision", "denied")
    assert [line.split()[2] for line in denied.out.splitlines()[1:]] == ["anonymous"]
    recent = cli("audit", "--since", "90m")
    assert [line.split()[3] for line in recent.out.splitlines()[1:]] == ["org.member.add"]
    nginx = cli("audit", "--org", "acme", "--repository", "nginx")
    assert [line.split()[5] for line in nginx.out.splitlines()[1:]] == ["library/nginx:latest"]
    nothing = cli("audit", "--user", "nobody")
    assert (nothing.code, nothing.out) == (0, "")
    assert "no audit events match" in nothing.err


def test_json_lines_parse_back_to_the_recorded_events(cli: Cli, recorded: None) -> None:
    result = cli("audit", "--json")
    assert result.code == 0, result.err
    lines = _parsed(result.out)
    ids = [line["id"] for line in lines]
    assert ids == sorted(ids) and len(ids) == 3
    expected = [
        AuditEvent(**{**event.__dict__, "id": id_}).to_json()
        for event, id_ in zip(EVENTS, ids, strict=True)
    ]
    assert lines == expected
    assert lines[2]["data"] == {"before": None, "after": {"team": "members"}}


def test_output_writes_the_json_lines_to_a_file(cli: Cli, recorded: None, tmp_path: Path) -> None:
    target = tmp_path / "export.jsonl"
    target.write_text("stale\n")
    result = cli("audit", "--user", "bob", "--output", str(target))
    assert result.code == 0, result.err
    assert result.out == ""
    assert "wrote 1 events" in result.err
    [line] = _parsed(target.read_text())
    assert (line["actor"], line["repository"], line["client_ip"]) == (
        "bob",
        "library/nginx",
        "10.0.0.7",
    )
    assert [p.name for p in tmp_path.iterdir() if p.name != "data"] == ["export.jsonl"]


def test_output_is_private_to_its_owner(cli: Cli, recorded: None, tmp_path: Path) -> None:
    target = tmp_path / "export.jsonl"
    assert cli("audit", "--output", str(target)).code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # who pulled what, from where


def test_output_into_a_missing_directory_names_it(cli: Cli, recorded: None, tmp_path: Path) -> None:
    target = tmp_path / "exports" / "audit.jsonl"
    result = cli("audit", "--output", str(target))
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        f"imagegate: error: cannot write {target}: the directory {target.parent} does not "
        f"exist; create it first (mkdir -p {target.parent})\n"
    )


def test_limit_keeps_the_newest_and_says_so(cli: Cli, recorded: None) -> None:
    result = cli("audit", "--json", "--limit", "2")
    assert [line["action"] for line in _parsed(result.out)] == ["registry.pull", "org.member.add"]
    assert "showing the newest 2 matching events only" in result.err
    assert "showing" not in cli("audit", "--limit", "3").err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "'yesterday' is not a time such as 30m, 24h, 7d"),
        (("--until", "5y"), "'5y' is not a time"),
        (("--limit", "0"), "'0' is not a whole number of at least 1"),
        (("--decision", "maybe"), "invalid choice: 'maybe'"),
        (("--action", "registry.poll"), "unknown action 'registry.poll'"),
        (("--repository", "Bad/Name"), "invalid repository name 'Bad/Name'"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = cli("audit", *args)
    assert result.code == 2
    assert message in result.err
    assert result.out == ""
