"""One thin function per subcommand: arguments in, one service call, a line or two out.

Results go to stdout (a token create prints only the token, so scripts can capture it);
notes for the person go to stderr. Every command is one service call, hence one
transaction: it either happens completely or not at all. ``gc`` is the exception: it
works on the content store, not the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from imagegate.config import Settings
from imagegate.core.categories import Category, PublisherStatus
from imagegate.core.errors import NameInvalid
from imagegate.core.names import (
    RepositoryName,
    parse_repository,
    validate_account_name,
    validate_upstream_namespace,
)
from imagegate.core.permissions import Permission, Visibility
from imagegate.core.policy import ImageAccessSettings
from imagegate.core.quota import format_size, parse_size
from imagegate.services import Services, running_services
from imagegate.services.access import settings_document
from imagegate.services.allowlist import canonical_repository
from imagegate.services.errors import InvalidInput, NotFound

if TYPE_CHECKING:  # the storage machinery is imported only by the commands that use it
    from imagegate.hosted.usage import Held

Command = Callable[[argparse.Namespace, Services], Awaitable[None]]
# A command that needs no database, only the settings (``gc`` works on the store).
SettingsCommand = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, None]]


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
    user = await services.accounts.create_user(args.name, args.email, password, admin=args.admin)
    _out(f"created {'gateway admin' if user.is_admin else 'user'} {user.name}")


async def user_admin(args: argparse.Namespace, services: Services) -> None:
    await services.accounts.set_admin(args.name, not args.revoke)
    if args.revoke:
        _out(f"{args.name} is no longer a gateway admin")
    else:
        _out(f"{args.name} is a gateway admin")


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


async def org_set(args: argparse.Namespace, settings: Settings) -> None:
    """``imagegate org set ORG [--quota SIZE|none] [--upstream-namespace NAME|--no-...]``.

    Every value is checked before anything changes: a bad one changes nothing."""
    if args.quota is None and args.upstream_namespace is None:
        raise UsageError(
            "nothing to change: give --quota SIZE (e.g. 20GiB, or none to remove it), "
            "--upstream-namespace NAME or --no-upstream-namespace"
        )
    try:
        org = validate_account_name(args.org, "organization")  # it names a directory
        quota = _quota(args.quota) if args.quota is not None else None
        if args.upstream_namespace:
            validate_upstream_namespace(args.upstream_namespace)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    held = await _count_held(org, settings) if args.quota is not None else None
    async with running_services(settings) as services:
        if held is not None:
            # Counted first: usage pushed before this version (or missed) is counted
            # before a quota is enforced against it.
            await services.quotas.recount(org, held.by_org[org], held.looked_at)
            usage = await services.quotas.set_quota(org, quota)
            _out(f"{org}: {usage.describe()}")
        if args.upstream_namespace is not None:
            mirrored = await services.access.set_upstream_namespace(
                org, args.upstream_namespace or None
            )
            _out(describe_upstream_namespace(org, mirrored))


def _quota(size: str) -> int | None:
    return None if size.strip().lower() == "none" else parse_size(size)


async def _count_held(org: str, settings: Settings) -> Held:
    """What ``org``'s hosted repositories hold on disk, pushes held back for the count."""
    # Imported here: the other commands need none of the storage machinery.
    from imagegate.hosted.layout import hosted_layout
    from imagegate.hosted.usage import count_held
    from imagegate.storage.filesystem import open_filesystem_store

    store = await asyncio.to_thread(open_filesystem_store, settings.cache_dir)
    return await asyncio.to_thread(count_held, hosted_layout(store), [org])


def describe_upstream_namespace(org: str, mirrored: str | None) -> str:
    if mirrored is None:
        return f"{org} mirrors no upstream namespace: {org}/... serves its hosted repositories only"
    return (
        f"{org} mirrors the upstream namespace {mirrored}: {org}/NAME that is not hosted "
        f"here is pulled from {mirrored}/NAME"
    )


async def org_show(args: argparse.Namespace, services: Services) -> None:
    usage = await services.quotas.get(args.org)
    repositories = await services.repositories.list(args.org)
    mirrored = await services.access.upstream_namespace(args.org)
    _out(f"organization {args.org}")
    _out(f"  {'repositories':<14}{len(repositories)}")
    _out(f"  {'storage':<14}{usage.describe()}")
    _out(f"  {'upstream':<14}{mirrored or 'none (hosted repositories only)'}")


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
    allowlist = await services.allowlist.list(args.org)
    mirrored = await services.access.upstream_namespace(args.org)
    if args.json:
        document = {**settings_document(settings), "organization": args.org}
        document["allowlist"] = allowlist
        document["upstream_namespace"] = mirrored
        _out(json.dumps(document, indent=2))
    else:
        _out(describe_settings(args.org, settings))
        listed = ", ".join(allowlist) if allowlist else "(none)"
        _out(f"  {'Allowlisted repositories':<27}{listed}")
        _out(f"  {'Upstream namespace':<27}{mirrored or '(none: hosted repositories only)'}")


async def access_allow(args: argparse.Namespace, services: Services) -> None:
    repository = canonical_repository(args.repository)
    if await services.allowlist.add(args.org, repository):
        _out(f"allowlisted {repository} in {args.org}: every member may pull it")
    else:
        _out(f"{repository} is already on the allowlist of {args.org}")


async def access_disallow(args: argparse.Namespace, services: Services) -> None:
    repository = canonical_repository(args.repository)
    if not await services.allowlist.remove(args.org, repository):
        raise NotFound(f"{repository} is not on the allowlist of {args.org}")
    _out(f"removed {repository} from the allowlist of {args.org}")


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


async def team_add(args: argparse.Namespace, services: Services) -> None:
    await services.orgs.add_team(args.org, args.team)
    _out(f"created team {args.team} in {args.org}")
    _note(
        f"Add members with `imagegate org member add {args.org} USER --team {args.team}`, "
        f"permissions with `imagegate team permission set {args.org} {args.team} [REPO] "
        "read|write|admin`."
    )


def _hosted_name(value: str) -> RepositoryName:
    """``ORG/NAME`` as given on the command line: the namespace must be spelled out."""
    try:
        name = parse_repository(value)
    except NameInvalid as exc:
        raise InvalidInput(exc.message) from None
    if "/" not in value:
        raise InvalidInput(f"give the repository with its organization: ORG/{value}")
    return name


async def repo_set(args: argparse.Namespace, services: Services) -> None:
    repository = _hosted_name(args.repository)
    visibility = Visibility(args.visibility)
    created = await services.repositories.set_visibility(repository, visibility)
    if created:
        _out(f"created repository {repository} ({visibility.value}); push to it to fill it")
    else:
        _out(f"repository {repository} is now {visibility.value}")


async def repo_list(args: argparse.Namespace, services: Services) -> None:
    repositories = await services.repositories.list(args.org)
    if not repositories:
        _note(f"no repositories in {args.org} yet: a member's first push creates one")
    for repository in repositories:
        _out(f"{repository.name}\t{repository.visibility.value}")


def _path_in(org: str, value: str | None) -> str | None:
    """REPO as given: ``app`` or ``ORG/app`` (``None``: the whole namespace)."""
    if value is None:
        return None
    return value.removeprefix(f"{org}/")


def _scope(org: str, path: str | None) -> str:
    return f"every repository of {org}" if path is None else f"{org}/{path}"


async def permission_set(args: argparse.Namespace, services: Services) -> None:
    path = _path_in(args.org, args.repository)
    permission = Permission.parse(args.permission)
    before = await services.repositories.grant(args.org, args.team, path, permission)
    was = "" if before is Permission.NONE else f" (was {before.label})"
    if before is permission:
        was = " (unchanged)"
    _out(f"team {args.team} of {args.org}: {permission.label} on {_scope(args.org, path)}{was}")


async def permission_remove(args: argparse.Namespace, services: Services) -> None:
    path = _path_in(args.org, args.repository)
    removed = await services.repositories.revoke(args.org, args.team, path)
    _out(
        f"removed {removed.label} permission of team {args.team} of {args.org} "
        f"on {_scope(args.org, path)}"
    )


async def permission_list(args: argparse.Namespace, services: Services) -> None:
    grants = await services.repositories.list_grants(args.org)
    if not grants:
        _note(f"no team permissions in {args.org} (owners have admin on every repository)")
    for grant in grants:
        where = f"{args.org}/*" if grant.repository is None else f"{args.org}/{grant.repository}"
        _out(f"{grant.team}\t{where}\t{grant.permission.label}")


async def gc(args: argparse.Namespace, settings: Settings) -> None:
    """Remove blobs no manifest references any more (``imagegate gc``), then count what
    each organization's repositories hold (its storage usage) anew."""
    # Imported here: the other commands need none of the storage machinery.
    from imagegate.hosted.gc import collect_garbage
    from imagegate.storage.filesystem import open_filesystem_store

    options: dict[str, Any] = {"dry_run": args.dry_run}
    if args.grace_period is not None:
        if args.grace_period < 0:
            raise UsageError("--grace-period must be 0 or more minutes")
        options["grace_seconds"] = args.grace_period * 60
    store = await asyncio.to_thread(open_filesystem_store, settings.cache_dir)
    report = await collect_garbage(store, **options)
    verb = "would remove" if report.dry_run else "removed"
    _out(f"{verb} {report.blobs_removed} blobs ({format_size(report.bytes_removed)})")
    _out(f"{verb} {report.links_removed} links to missing blobs")
    _out(f"kept {report.blobs_young} unreferenced blobs younger than the grace period")
    _out(f"{report.manifests} manifests reference {report.blobs_referenced} blobs")
    if report.dry_run:
        _note("dry run: nothing was removed")
    if report.held is not None:
        async with running_services(settings) as services:
            counted = await services.quotas.recount_all(report.held.by_org, report.held.looked_at)
        _out(f"counted the storage of {len(counted)} organizations")
