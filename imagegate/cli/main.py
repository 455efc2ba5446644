"""The ``imagegate`` command: argument parsing, settings, and turning errors into exits.

Each subcommand is one thin function in ``commands``; this module only builds the parser,
reads settings (environment first, global flags override), opens the services around
the command, and maps failures to ``imagegate: error: <message>`` with exit status 2
(usage or configuration) or 1 (the request itself failed).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from imagegate import datadir
from imagegate.audit.context import set_actor
from imagegate.cli import audit, clients, commands, signin
from imagegate.cli.commands import Command, SettingsCommand, UsageError
from imagegate.config import ConfigError, Settings, load_settings
from imagegate.db import DatabaseError
from imagegate.services import ServiceError, running_services

PROG = "imagegate"
_STATUSES = ("verified_publisher", "sponsored_oss", "community")
_TOGGLE = ("allowed", "restricted")
_PERMISSIONS = ("read", "write", "admin")
_VISIBILITIES = ("public", "private")


def _global_options(*, suppress: bool) -> argparse.ArgumentParser:
    """Options accepted before and after the subcommand (``imagegate --data-dir D user add``)."""
    parent = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    parent.add_argument("--data-dir", default=default, help="data directory (IMAGEGATE_DATA_DIR)")
    parent.add_argument(
        "--database-url",
        default=default,
        help="sqlite:///PATH or postgresql://... (IMAGEGATE_DATABASE_URL)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Docker registry gateway enforcing Docker Hub's Image Access Management.",
        parents=[_global_options(suppress=False)],
    )
    shared = [_global_options(suppress=True)]
    groups = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def leaf(
        subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help_text: str,
        command: Command,
    ) -> argparse.ArgumentParser:
        sub = subparsers.add_parser(name, help=help_text, description=help_text, parents=shared)
        sub.set_defaults(command_function=command, settings_command=None)
        return sub

    def group(name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        sub = groups.add_parser(name, help=help_text, description=help_text)
        return sub.add_subparsers(dest="action", required=True, metavar="ACTION")

    serve = groups.add_parser("serve", help="run the gateway", parents=shared)
    serve.add_argument("--host", help="address to listen on (IMAGEGATE_HOST)")
    serve.add_argument("--port", help="port to listen on (IMAGEGATE_PORT)")
    serve.add_argument(
        "--workers",
        help="processes serving requests (IMAGEGATE_WORKERS; default: one per usable core)",
    )
    serve.set_defaults(command_function=None, settings_command=None)

    users = group("user", "manage users")
    add_user = leaf(users, "add", "create a user", commands.user_add)
    add_user.add_argument("name")
    add_user.add_argument("--email")
    add_user.add_argument(
        "--password-stdin", action="store_true", required=True, help="read the password from stdin"
    )
    add_user.add_argument(
        "--admin", action="store_true", help="a gateway admin (manages publisher overrides)"
    )
    admin_user = leaf(
        users, "admin", "make a user a gateway admin (or not, with --revoke)", commands.user_admin
    )
    admin_user.add_argument("name")
    admin_user.add_argument("--revoke", action="store_true", help="take admin rights away")

    tokens = group("token", "manage personal access tokens")
    create_token = leaf(
        tokens, "create", "create a personal access token (printed once)", commands.token_create
    )
    create_token.add_argument("user")
    create_token.add_argument("--description", default="")
    create_token.add_argument("--expires-in", type=int, metavar="DAYS", help="lifetime in days")

    orgs = group("org", "manage organizations")
    add_org = leaf(orgs, "add", "create an organization and its owners team", commands.org_add)
    add_org.add_argument("org")
    add_org.add_argument("--owner", required=True, metavar="USER")
    members = orgs.add_parser("member", help="manage members").add_subparsers(
        dest="member_action", required=True, metavar="ACTION"
    )
    add_member = leaf(members, "add", "add a user to a team", commands.member_add)
    add_member.add_argument("org")
    add_member.add_argument("user")
    add_member.add_argument("--team", default="members", help="team (default: members)")
    remove_member = leaf(members, "remove", "remove a user from every team", commands.member_remove)
    remove_member.add_argument("org")
    remove_member.add_argument("user")
    set_org = orgs.add_parser(
        "set",
        help="change an organization's settings",
        description="Change an organization's settings. Setting a quota counts what its "
        "repositories hold first.",
        parents=shared,
    )
    set_org.set_defaults(command_function=None, settings_command=commands.org_set)
    set_org.add_argument("org")
    set_org.add_argument(
        "--quota",
        metavar="SIZE",
        help="storage its hosted repositories may use, e.g. 20GiB or 500MB; none removes it",
    )
    mirror = set_org.add_mutually_exclusive_group()
    mirror.add_argument(
        "--upstream-namespace",
        metavar="NAME",
        help="mirror the upstream's NAME namespace, which must be the organization's own: "
        "ORG/x that is not hosted here is pulled from NAME/x",
    )
    mirror.add_argument(
        "--no-upstream-namespace",
        dest="upstream_namespace",
        action="store_const",
        const="",
        help="stop mirroring: the namespace serves hosted repositories only (the default)",
    )
    show_org = leaf(
        orgs,
        "show",
        "show an organization's repositories, storage used and quota",
        commands.org_show,
    )
    show_org.add_argument("org")
    org_teams = orgs.add_parser("team", help="manage teams").add_subparsers(
        dest="team_action", required=True, metavar="ACTION"
    )
    add_team = leaf(org_teams, "add", "create an empty team", commands.team_add)
    add_team.add_argument("org")
    add_team.add_argument("team")

    repos = group("repo", "manage an organization's hosted repositories")
    set_repo = leaf(
        repos,
        "set",
        "change a repository's visibility (creating it if it has not been pushed yet)",
        commands.repo_set,
    )
    set_repo.add_argument("repository", metavar="ORG/NAME")
    set_repo.add_argument("--visibility", required=True, choices=_VISIBILITIES)
    list_repos = leaf(repos, "list", "list an organization's repositories", commands.repo_list)
    list_repos.add_argument("org")

    teams = group("team", "team permissions on repositories")
    permissions = teams.add_parser("permission", help="manage permissions").add_subparsers(
        dest="permission_action", required=True, metavar="ACTION"
    )
    set_permission = leaf(
        permissions,
        "set",
        "give a team read, write or admin on a repository, or on every repository "
        "of the organization when REPO is omitted",
        commands.permission_set,
    )
    set_permission.add_argument("org")
    set_permission.add_argument("team")
    set_permission.add_argument(
        "repository", nargs="?", metavar="REPO", help="e.g. app or ORG/app (default: all)"
    )
    set_permission.add_argument("permission", choices=_PERMISSIONS)
    remove_permission = leaf(
        permissions,
        "remove",
        "take a team's permission on a repository (or the namespace-wide one) away",
        commands.permission_remove,
    )
    remove_permission.add_argument("org")
    remove_permission.add_argument("team")
    remove_permission.add_argument("repository", nargs="?", metavar="REPO")
    list_permissions = leaf(
        permissions,
        "list",
        "list the permissions of an organization's teams",
        commands.permission_list,
    )
    list_permissions.add_argument("org")

    collect = groups.add_parser(
        "gc",
        help="remove blobs no manifest references any more (safe while serving)",
        description="Remove blobs no manifest references any more; safe while the "
        "gateway serves pushes and pulls.",
        parents=shared,
    )
    collect.add_argument(
        "--grace-period",
        type=int,
        metavar="MINUTES",
        help="keep unreferenced blobs younger than this (default: 60)",
    )
    collect.add_argument("--dry-run", action="store_true", help="report, remove nothing")
    collect.set_defaults(command_function=None, settings_command=commands.gc)

    access = group("image-access", "Image Access Management settings")
    set_access = leaf(access, "set", "change an organization's settings", commands.access_set)
    set_access.add_argument("org")
    switch = set_access.add_mutually_exclusive_group()
    switch.add_argument("--enable", dest="enabled", action="store_const", const=True)
    switch.add_argument("--disable", dest="enabled", action="store_const", const=False)
    for option in ("--official", "--verified-publishers", "--community"):
        set_access.add_argument(option, choices=_TOGGLE)
    show_access = leaf(access, "show", "show an organization's settings", commands.access_show)
    show_access.add_argument("org")
    show_access.add_argument("--json", action="store_true", help="Docker Hub's JSON shape")
    allow = leaf(
        access,
        "allow",
        "allowlist a repository: every member may pull it, whatever its category",
        commands.access_allow,
    )
    allow.add_argument("org")
    allow.add_argument("repository", metavar="NAMESPACE/REPO")
    disallow = leaf(
        access, "disallow", "take a repository off the allowlist", commands.access_disallow
    )
    disallow.add_argument("org")
    disallow.add_argument("repository", metavar="NAMESPACE/REPO")

    publishers = group("publisher", "publisher status overrides")
    set_publisher = leaf(
        publishers, "set", "override a namespace's publisher status", commands.publisher_set
    )
    set_publisher.add_argument("namespace")
    set_publisher.add_argument("status", choices=_STATUSES)
    remove_publisher = leaf(publishers, "remove", "drop an override", commands.publisher_remove)
    remove_publisher.add_argument("namespace")
    leaf(publishers, "list", "list overrides", commands.publisher_list)

    signin.add_parsers(groups, shared)
    clients.add_parsers(groups, shared)
    audit.add_parsers(groups, shared)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"data_dir": args.data_dir, "database_url": args.database_url}
    if args.command == "serve":
        overrides.update(host=args.host, port=args.port, workers=args.workers)
    return load_settings(**overrides)


def cli_actor() -> str:
    """Who the audit trail names for an admin command: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry for the uid (some containers)
        return f"cli:uid-{os.getuid()}"


async def _run(command: Command, args: argparse.Namespace, settings: Settings) -> None:
    set_actor(cli_actor())
    async with running_services(settings) as services:
        await command(args, services)


async def _run_settings_command(
    command: SettingsCommand, args: argparse.Namespace, settings: Settings
) -> None:
    set_actor(cli_actor())  # what it changes in the database is the admin's doing
    await command(args, settings)


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (the console script exits with it).

    Whatever the command creates is private to its user (a 077 umask, restored on
    return for an in-process caller), the data directory 0700 included.
    """
    previous_umask = datadir.use_private_umask()
    try:
        return _main(argv)
    finally:
        os.umask(previous_umask)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        settings = _settings(args)
        if getattr(args, "uses_data_dir", True):
            datadir.create(settings.data_dir)
        settings_command: SettingsCommand | None = args.settings_command
        if settings_command is not None:
            asyncio.run(_run_settings_command(settings_command, args, settings))
        elif args.command_function is None:
            # Imported here: the admin commands need none of the server machinery.
            from imagegate.bootstrap import serve

            serve(settings)
            return 0
        else:
            asyncio.run(_run(args.command_function, args, settings))
    except (ConfigError, UsageError) as exc:
        _error(str(exc))
        return 2
    except ServiceError as exc:
        _error(exc.message)
        return 1
    except (DatabaseError, OSError) as exc:
        _error(str(exc))
        return 1
    except SQLAlchemyError as exc:
        _error(f"database error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
