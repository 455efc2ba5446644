"""Teams, hosted repositories, team permissions and garbage collection from the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import pytest

from imagegate.config import load_settings
from imagegate.core.names import parse_repository
from imagegate.core.permissions import Permission, Visibility
from imagegate.services import running_services
from tests.cli.conftest import Cli, Result


def ok(result: Result) -> Result:
    assert result.code == 0, result
    return result


@pytest.fixture
def acme(cli: Cli) -> Cli:
    """acme, owned by alice, with bob in its devs team."""
    for name in ("alice", "bob"):
        ok(cli("user", "add", name, "--password-stdin", stdin="pw"))
    ok(cli("org", "add", "acme", "--owner", "alice"))
    ok(cli("org", "team", "add", "acme", "devs"))
    ok(cli("org", "member", "add", "acme", "bob", "--team", "devs"))
    return cli


async def _gateway_view() -> tuple[Visibility | None, Permission, list[str]]:
    """What a gateway on the same database now sees."""
    async with running_services(load_settings()) as services:
        app = parse_repository("acme/app")
        return (
            await services.repositories.get(app),
            await services.repositories.permission("bob", app),
            await services.repositories.readable(None),
        )


def test_team_add(cli: Cli) -> None:
    ok(cli("user", "add", "alice", "--password-stdin", stdin="pw"))
    ok(cli("org", "add", "acme", "--owner", "alice"))
    result = ok(cli("org", "team", "add", "acme", "devs"))
    assert result.out == "created team devs in acme\n"
    assert "imagegate org member add acme USER --team devs" in result.err
    again = cli("org", "team", "add", "acme", "devs")
    assert again.code == 1 and again.out == ""
    assert again.err == ("imagegate: error: team 'devs' already exists in organization 'acme'\n")


def test_the_repository_and_permission_story(acme: Cli) -> None:
    assert ok(acme("repo", "list", "acme")).err == (
        "no repositories in acme yet: a member's first push creates one\n"
    )
    assert ok(acme("repo", "set", "acme/app", "--visibility", "public")).out == (
        "created repository acme/app (public); push to it to fill it\n"
    )
    assert ok(acme("repo", "set", "acme/app", "--visibility", "private")).out == (
        "repository acme/app is now private\n"
    )
    ok(acme("repo", "set", "acme/tools/ci", "--visibility", "public"))
    assert ok(acme("repo", "list", "acme")).out == "acme/app\tprivate\nacme/tools/ci\tpublic\n"

    assert ok(acme("team", "permission", "list", "acme")).err == (
        "no team permissions in acme (owners have admin on every repository)\n"
    )
    assert ok(acme("team", "permission", "set", "acme", "devs", "app", "read")).out == (
        "team devs of acme: read on acme/app\n"
    )
    assert ok(acme("team", "permission", "set", "acme", "devs", "acme/app", "write")).out == (
        "team devs of acme: write on acme/app (was read)\n"
    )
    assert ok(acme("team", "permission", "set", "acme", "devs", "app", "write")).out == (
        "team devs of acme: write on acme/app (unchanged)\n"
    )
    assert ok(acme("team", "permission", "set", "acme", "devs", "admin")).out == (
        "team devs of acme: admin on every repository of acme\n"
    )
    assert ok(acme("team", "permission", "list", "acme")).out == (
        "devs\tacme/*\tadmin\ndevs\tacme/app\twrite\n"
    )
    assert asyncio.run(_gateway_view()) == (Visibility.PRIVATE, Permission.ADMIN, ["acme/tools/ci"])

    assert ok(acme("team", "permission", "remove", "acme", "devs")).out == (
        "removed admin permission of team devs of acme on every repository of acme\n"
    )
    assert ok(acme("team", "permission", "remove", "acme", "devs", "acme/app")).out == (
        "removed write permission of team devs of acme on acme/app\n"
    )
    assert asyncio.run(_gateway_view())[1] is Permission.NONE


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("org", "team", "add", "nope", "devs"), 1, "organization 'nope' does not exist"),
        (("org", "team", "add", "acme", "Devs"), 1, "invalid team name 'Devs'"),
        (("org", "team", "add", "acme", "owners"), 1, "team 'owners' already exists"),
        (("repo", "set", "app", "--visibility", "public"), 1, "with its organization: ORG/app"),
        (("repo", "set", "acme/App", "--visibility", "public"), 1, "invalid repository name"),
        (("repo", "set", "nope/app", "--visibility", "public"), 1, "'nope' does not exist"),
        (("repo", "set", "alice/app", "--visibility", "public"), 1, "'alice' does not exist"),
        (("repo", "list", "nope"), 1, "organization 'nope' does not exist"),
        (("team", "permission", "set", "acme", "qa", "app", "read"), 1, "team 'qa' does not"),
        (("team", "permission", "set", "nope", "devs", "read"), 1, "'nope' does not exist"),
        (("team", "permission", "set", "acme", "owners", "read"), 1, "admin permission on"),
        (("team", "permission", "set", "acme", "devs", "A//b", "read"), 1, "invalid repository"),
        (("team", "permission", "remove", "acme", "devs", "app"), 1, "no permission on acme/app"),
        (("team", "permission", "remove", "acme", "devs"), 1, "every repository of acme"),
        (("team", "permission", "list", "nope"), 1, "organization 'nope' does not exist"),
    ],
)
def test_errors_are_clear_and_change_nothing(
    acme: Cli, args: tuple[str, ...], code: int, message: str
) -> None:
    before = [ok(acme(*show)).out for show in _SHOW]
    result = acme(*args)
    assert result.code == code and result.out == ""
    assert result.err.startswith("imagegate: error: ") and message in result.err, result.err
    assert [ok(acme(*show)).out for show in _SHOW] == before


_SHOW = (("repo", "list", "acme"), ("team", "permission", "list", "acme"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("repo", "set", "acme/app"), "--visibility"),
        (("repo", "set", "acme/app", "--visibility", "secret"), "invalid choice"),
        (("team", "permission", "set", "acme", "devs", "app", "own"), "invalid choice"),
        (("team", "permission", "set", "acme", "devs"), "required"),
        (("org", "team", "add", "acme"), "required"),
        (("gc", "--grace-period", "soon"), "invalid int value"),
        (("gc", "--grace-period", "-1"), "--grace-period must be 0 or more minutes"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.code == 2 and message in result.err, result.err


def _blob(cache: Path, content: bytes, age_seconds: float) -> Path:
    digest = hashlib.sha256(content).hexdigest()
    path = cache / "blobs" / "sha256" / digest[:2] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def test_gc_removes_unreferenced_blobs_after_the_grace_period(
    cli: Cli, environment: dict[str, str]
) -> None:
    cache = Path(environment["IMAGEGATE_DATA_DIR"]) / "cache"
    ok(cli("gc", "--dry-run"))  # creates the store
    old = _blob(cache, b"x" * 2048, age_seconds=2 * 3600)
    young = _blob(cache, b"young", age_seconds=60)

    dry = ok(cli("gc", "--dry-run"))
    assert dry.out.splitlines() == [
        "would remove 1 blobs (2.0 KiB)",
        "would remove 0 links to missing blobs",
        "kept 1 unreferenced blobs younger than the grace period",
        "0 manifests reference 0 blobs",
    ]
    assert dry.err == "dry run: nothing was removed\n"
    assert old.exists()

    assert ok(cli("gc")).out.startswith("removed 1 blobs (2.0 KiB)\n")
    assert not old.exists() and young.exists()
    assert ok(cli("gc", "--grace-period", "0")).out.startswith("removed 1 blobs (5 bytes)\n")
    assert not young.exists()
