"""``imagegate enforce-sign-in``: check the gateway's registry.json, and write what admins
deploy to Docker Desktop machines (registry.json, a macOS profile or desktop.plist, a
Windows .reg file).

The file writers need no database: they validate the organization names as Desktop
needs them (``validate_orgs``) and render with ``imagegate.deploy.desktop``. Output goes
to stdout (bytes exactly as they belong in the file) unless ``--output`` or ``--install``
says where to write it atomically.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from imagegate.cli.commands import SettingsCommand, UsageError
from imagegate.config import Settings
from imagegate.deploy import desktop
from imagegate.deploy.desktop import DESKTOP_OSES, REGISTRY_JSON_PATHS, DesktopOS
from imagegate.deploy.files import is_administrator, write_atomically
from imagegate.services import InvalidInput, running_services


def add_parsers(
    groups: argparse._SubParsersAction[argparse.ArgumentParser],
    shared: list[argparse.ArgumentParser],
) -> None:
    """Add ``enforce-sign-in`` and its actions to the ``imagegate`` parser."""
    description = (
        "Enforce sign-in: check the registry.json the gateway enforces, and write the "
        "files that make Docker Desktop machines require sign-in."
    )
    parser = groups.add_parser("enforce-sign-in", help="enforce sign-in", description=description)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(
        name: str,
        help_text: str,
        command: SettingsCommand,
        parents: list[argparse.ArgumentParser] | None = None,
    ) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text, parents=parents or [])
        # Only ``check`` (with the ``shared`` options) reads the gateway's data.
        sub.set_defaults(
            command_function=None, settings_command=command, uses_data_dir=bool(parents)
        )
        return sub

    check_parser = action(
        "check",
        "check a registry.json the way the gateway enforces it, organizations included",
        check,
        shared,  # the organizations are looked up in the gateway's database
    )
    check_parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        metavar="PATH",
        help="default: IMAGEGATE_REGISTRY_JSON, else DATA_DIR/registry.json",
    )

    json_parser = action(
        "registry-json",
        "write registry.json for Docker Desktop (or for the gateway: --output "
        "DATA_DIR/registry.json)",
        registry_json,
    )
    _org_option(json_parser)
    json_parser.add_argument(
        "--os",
        choices=DESKTOP_OSES,
        help="the Desktop machine's operating system (default: this machine's)",
    )
    where = json_parser.add_mutually_exclusive_group()
    _output_option(where)
    where.add_argument(
        "--install",
        action="store_true",
        help="write it where Docker Desktop reads it on this machine (as root)",
    )

    profile_parser = action(
        "mobileconfig",
        "write a macOS configuration profile (allowedOrgs as one ';'-separated string)",
        mobileconfig,
    )
    _org_option(profile_parser)
    profile_parser.add_argument(
        "--identifier",
        default=desktop.DEFAULT_PROFILE_IDENTIFIER,
        help="the profile's reverse-DNS PayloadIdentifier (default: %(default)s)",
    )
    _output_option(profile_parser)

    plist_parser = action(
        "plist",
        f"write macOS {desktop.DESKTOP_PLIST_PATH.name} (allowedOrgs as an array)",
        plist,
    )
    _org_option(plist_parser)
    _output_option(plist_parser)

    reg_parser = action(
        "reg",
        "write a Windows .reg file (allowedOrgs as a multi-string policy value)",
        reg,
    )
    _org_option(reg_parser)
    _output_option(reg_parser)


def _org_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--org",
        dest="orgs",
        action="append",
        required=True,
        metavar="ORG",
        help="an allowed organization, lowercase (repeat for several)",
    )


def _output_option(parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup) -> None:
    parser.add_argument(
        "--output",
        type=Path,
        metavar="PATH",
        help="write to PATH atomically, mode 0644 (root-owned as root); default: stdout",
    )


def machine_os() -> DesktopOS | None:
    """This machine's operating system, as ``--os`` names it."""
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    if sys.platform == "win32":
        return "windows"
    return None


# -- commands ---------------------------------------------------------------------------


async def check(args: argparse.Namespace, settings: Settings) -> None:
    path: Path = args.path or settings.registry_json_path
    optional = args.path is None and settings.registry_json_optional
    if optional and not await asyncio.to_thread(path.exists):
        raise UsageError(
            "no registry.json to check: give its PATH, set IMAGEGATE_REGISTRY_JSON, or "
            f"put it at {settings.data_dir / 'registry.json'}"
        )
    async with running_services(settings) as services:
        requirement = await services.signin.inspect(path)
    if requirement.problem is not None:
        raise InvalidInput(f"{requirement.source or path}: {requirement.problem}")
    print(f"OK: sign-in enforced for members of [{' '.join(requirement.allowed_orgs)}]")


async def registry_json(args: argparse.Namespace, settings: Settings) -> None:
    here = machine_os()
    target_os: DesktopOS | None = args.os or here
    if target_os is None:
        raise UsageError(f"say which Desktop this is for: --os {'|'.join(DESKTOP_OSES)}")
    data = _render(lambda: desktop.registry_json(args.orgs, target_os))
    if not args.install:
        _emit(data, args.output)
        return
    installed = REGISTRY_JSON_PATHS[target_os]
    if target_os != here:
        raise UsageError(
            f"--install writes this machine's file, and this is not {target_os}: use "
            f"--output PATH and deploy it to {installed} on the {target_os} machines"
        )
    if not is_administrator():
        # Desktop trusts the file because only an administrator can write it.
        raise PermissionError(
            f"--install writes {installed}, which only an administrator may write: "
            "run it as root (sudo), or elevated on Windows"
        )
    write_atomically(Path(installed), data, create_parents=True)
    _note(f"installed {installed}; restart Docker Desktop to apply it")


async def mobileconfig(args: argparse.Namespace, settings: Settings) -> None:
    _emit(_render(lambda: desktop.mobileconfig(args.orgs, args.identifier)), args.output)


async def plist(args: argparse.Namespace, settings: Settings) -> None:
    _emit(_render(lambda: desktop.desktop_plist(args.orgs)), args.output)


async def reg(args: argparse.Namespace, settings: Settings) -> None:
    _emit(_render(lambda: desktop.reg_file(args.orgs)), args.output)


def _render(render: Callable[[], bytes]) -> bytes:
    """The rendered file; a name Desktop could not use is a usage error, and nothing is
    written."""
    try:
        return render()
    except ValueError as exc:  # InvalidRegistryJson included
        raise UsageError(str(exc)) from None


def _emit(data: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)  # the file's exact bytes: `> FILE` gives the file
        sys.stdout.buffer.flush()
        return
    write_atomically(output, data)
    _note(f"wrote {output}")


def _note(text: str) -> None:
    print(text, file=sys.stderr)
