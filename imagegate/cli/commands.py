"""One thin function per subcommand: arguments in, one service call, a line or two out.

Results go to stdout (a token create prints only the token, so scripts can capture it);
notes for the person go to stderr. Every command is one service call, hence one
transaction: it either happens completely or not at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from imagegate.core.categories import Category, PublisherStatus
from imagegate.core.policy import ImageAccessSettings
from imagegate.services import Services
from imagegate.services.errors import InvalidInput

Command = Callable[[argparse.Namespace, Services], Awaitable[None]]


class UsageError(Exception):
    """The command line is well-formed but asks for nothing sensible (exit status 2)."""


def _out(text: str) -> None:
    print(text, file=sys.stdout)


def _note(text: str) -> None:
    print(text, file=sys.stderr)


def _read_password() -> str:
    """The password from stdin, without the newline ``echo`` or a here-string adds."""
    password = sys.stdin.read()
    return password.removesuffix("\n").removesuffix("\r")


async def user_add(args: argparse.Namespace, services: Services) -> None:
    password = await asyncio.to_thread(_read_password)
    if not password:
        raise InvalidInput('no password on stdin; pipe one in, e.g. `echo "$PW" | imagegate ...`')
    user = await services.accounts.create_user(args.name, args.email, password)
    _out(f"created user {user.name}")


async def token_create(args: argparse.Namespace, services: Services) -> None:
    token, secret = await services.accounts.create_token(
        args.user, args.description, args.expires_in
    )
    _out(secret)
    expiry = f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "no expiry"
    _note(
        f"Access token {token.id} for {token.username} ({expiry}). "
        "Copy it now: it is not shown again. Use it as the password, "
        f"e.g. `docker login -u {token.username} --password-stdin`."
    )


async def org_add(args: argparse.Namespace, services: Services) -> None:
    org = await services.orgs.add_org(args.org, args.owner)
    _out(f"created organization {org.name} with owner {args.owner}")


async def member_add(args: argparse.Namespace, services: Services) -> None:
    added = await services.orgs.add_member(args.org, args.user, args.team)
    if added:
        _out(f"added {args.user} to team {args.team} of {args.org}")
    else:
        _out(f"{args.user} is already in team {args.team} of {args.org}")


async def member_remove(args: argparse.Namespace, services: Services) -> None:
    teams = await services.orgs.remove_member(args.org, args.user)
    _out(f"removed {args.user} from {args.org} (teams: {', '.join(teams)})")


def _allowed(value: str | None) -> bool | None:
    return None if value is None else value == "allowed"


async def access_set(args: argparse.Namespace, services: Services) -> None:
    changes = {
        "enabled": args.enabled,
        "allow_official": _allowed(args.official),
        "allow_verified_publishers": _allowed(args.verified_publishers),
        "allow_community": _allowed(args.community),
    }
    if all(value is None for value in changes.values()):
        raise UsageError(
            "nothing to change: give --enable or --disable, or one of --official, "
            "--verified-publishers, --community with allowed or restricted"
        )
    settings = await services.access.set_settings(args.org, **changes)
    _out(describe_settings(args.org, settings))


async def access_show(args: argparse.Namespace, services: Services) -> None:
    settings = await services.access.get_settings(args.org)
    if args.json:
        _out(json.dumps(settings_document(args.org, settings), indent=2))
    else:
        _out(describe_settings(args.org, settings))


def settings_document(org: str, settings: ImageAccessSettings) -> dict[str, Any]:
    """Docker Hub's ``/v2/orgs/{org}/settings`` shape, plus imagegate's additions.

    ``restricted_images`` is exactly Hub's object; ``allow_community_images`` (Hub has
    no community toggle in that API) and ``organization`` are added beside it.
    """
    return {
        "restricted_images": {
            "enabled": settings.enabled,
            "allow_official_images": settings.allow_official,
            "allow_verified_publishers": settings.allow_verified_publishers,
        },
        "allow_community_images": settings.allow_community,
        "organization": org,
    }


def describe_settings(org: str, settings: ImageAccessSettings) -> str:
    """The settings as a person reads them, one category per line.

    The toggles are shown even while the policy is disabled: they are what enabling it
    will enforce.
    """
    state = "enabled" if settings.enabled else "disabled (nothing is restricted)"
    rows = (
        (Category.ORGANIZATION, True, f"the {org} namespace, always"),
        (Category.OFFICIAL, settings.allow_official, ""),
        (Category.VERIFIED_PUBLISHER, settings.allow_verified_publishers, ""),
        (Category.COMMUNITY, settings.allow_community, "Sponsored OSS counts as community"),
    )
    lines = [f"Image Access Management for {org}: {state}"]
    for category, allowed, note in rows:
        label = category.label[0].upper() + category.label[1:]
        verdict = "Allowed" if allowed else "Restricted"
        lines.append(f"  {label:<27}{verdict}{f' ({note})' if note else ''}")
    return "\n".join(lines)


async def publisher_set(args: argparse.Namespace, services: Services) -> None:
    status = PublisherStatus(args.status)
    await services.publishers.set_override(args.namespace, status)
    _out(f"publisher status of {args.namespace}: {status.value} (override)")


async def publisher_remove(args: argparse.Namespace, services: Services) -> None:
    await services.publishers.remove_override(args.namespace)
    _out(f"removed the publisher override of {args.namespace}")


async def publisher_list(args: argparse.Namespace, services: Services) -> None:
    overrides = await services.publishers.list_overrides()
    if not overrides:
        _note("no publisher overrides")
    for override in overrides:
        _out(f"{override.namespace}\t{override.status.value}")
