"""``imagegate audit``: read the audit trail as a table, or export it as JSON lines.

The table is for a person at a terminal (one line per event, oldest first); ``--json``
prints one ``AuditEvent.to_json()`` object per line for tools, and ``--output FILE``
writes those lines to a file that appears complete or not at all. When more events match
than ``--limit``, the newest ones are kept (what someone investigating wants) and a note
on stderr says so.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from imagegate.audit.events import ALLOWED, DENIED, AuditEvent
from imagegate.audit.timespan import TimespanError, parse_instant
from imagegate.cli.commands import UsageError
from imagegate.deploy.files import write_atomically
from imagegate.services import Services
from imagegate.services.audit import AuditQuery
from imagegate.services.errors import InvalidInput

DEFAULT_LIMIT = 1000
REASON_WIDTH = 80
_HEADINGS = ("TIME", "ACTOR", "ACTION", "DECISION", "WHAT", "REASON")


def add_parsers(
    groups: argparse._SubParsersAction[argparse.ArgumentParser],
    shared: list[argparse.ArgumentParser],
) -> None:
    """Add this module's subcommands to the ``imagegate`` parser."""
    help_text = "read the audit trail: pull and login decisions, and every change"
    parser = groups.add_parser("audit", help=help_text, description=help_text, parents=shared)
    parser.add_argument("--org", help="events of this organization and of its members")
    parser.add_argument("--user", help="events this user caused")
    parser.add_argument("--repository", help="events on this repository (nginx = library/nginx)")
    parser.add_argument("--decision", choices=(ALLOWED, DENIED))
    parser.add_argument(
        "--action", help="an action (registry.pull, org.member.add) or a group (registry, org)"
    )
    now = dt.datetime.now(dt.UTC)
    parser.add_argument(
        "--since",
        type=_instant(now),
        metavar="TIME",
        help="from this time: 30m, 24h, 7d, 2w ago, or a date / ISO date-time (UTC if no offset)",
    )
    parser.add_argument("--until", type=_instant(now), metavar="TIME", help="up to this time")
    parser.add_argument(
        "--limit",
        type=_positive,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N events, the newest (default {DEFAULT_LIMIT})",
    )
    parser.add_argument("--json", action="store_true", help="JSON lines, one event per line")
    parser.add_argument(
        "--output", type=Path, metavar="FILE", help="write the JSON lines to FILE (implies --json)"
    )
    parser.set_defaults(command_function=audit, settings_command=None)


def _instant(now: dt.datetime) -> Callable[[str], dt.datetime]:
    def parse(text: str) -> dt.datetime:
        try:
            return parse_instant(text, now)
        except TimespanError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _query(args: argparse.Namespace) -> AuditQuery:
    try:
        return AuditQuery(
            org=args.org,
            user=args.user,
            repository=args.repository,
            decision=args.decision,
            action=args.action,
            since=args.since,
            until=args.until,
            limit=args.limit + 1,  # one more than shown tells whether more match
        )
    except InvalidInput as exc:
        raise UsageError(exc.message) from None


async def audit(args: argparse.Namespace, services: Services) -> None:
    newest = await services.audit.query(_query(args), newest_first=True)
    events = list(reversed(newest[: args.limit]))
    if args.output is not None:
        await asyncio.to_thread(write_atomically, args.output, _lines(events), private=True)
        _note(f"wrote {len(events)} events to {args.output}")
    elif args.json:
        sys.stdout.write(_lines(events).decode())
    elif events:
        sys.stdout.write(table(events))
    else:
        _note("no audit events match")
    if len(newest) > args.limit:
        _note(
            f"showing the newest {args.limit} matching events only; narrow the window "
            "with --since/--until or raise --limit"
        )


def _note(text: str) -> None:
    print(text, file=sys.stderr)


def _lines(events: Sequence[AuditEvent]) -> bytes:
    return "".join(json.dumps(event.to_json()) + "\n" for event in events).encode()


def _row(event: AuditEvent) -> tuple[str, ...]:
    reason = " ".join((event.reason or "").split())  # one line, whatever was recorded
    if len(reason) > REASON_WIDTH:
        reason = reason[: REASON_WIDTH - 1] + "…"
    return (
        event.timestamp.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        event.actor or "anonymous",
        event.action,
        event.decision or "-",
        event.subject or "-",
        reason,
    )


def table(events: Sequence[AuditEvent]) -> str:
    """Aligned columns with a heading; the last column (the reason) is not padded."""
    rows = [_HEADINGS, *(_row(event) for event in events)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_HEADINGS) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"
